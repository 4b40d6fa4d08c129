/**
 * Lambda function URL handler for one model: parse the event (function-url.ts, routes.ts), call the
 * InferenceService, map its result or typed error to the answer (function-url.ts). Logs and metrics
 * come from telemetry-startup.ts. Clients, runtime and model live in module scope and are reused by
 * warm invocations; a warm predict is answered with no promise or microtask hop of its own.
 */
import type { Context } from 'aws-lambda';
import { monotonicMs } from '../shared/clock.js';
import type { ObjectReader } from '../shared/registry/store.js';
import type { VersionRole } from '../shared/rollout/figures.js';
import type { TfRuntime } from '../shared/runtime/types.js';
import { handleBatchEvent, isBatchEvent } from './batch.js';
import { configFromEnv, type InferenceConfig, recheckLimitMs } from './config.js';
import {
  answered,
  bodyOf,
  errorResponse,
  type FunctionUrlEvent,
  type FunctionUrlResult,
  forMethod,
  methodOf,
  pathOf,
} from './function-url.js';
import type { Log } from './log.js';
import { registryReader, runtimeOnce } from './registry-access.js';
import { lastRouteMemo } from './routes.js';
import { ROUTE_KEY_HEADER } from './routing.js';
import { choiceOf } from './served.js';
import { InferenceService } from './service.js';
import type { ShadowOutcome } from './shadow.js';
import { LazyTelemetry, type TelemetryDeps } from './telemetry-startup.js';
import type { InvocationCounters } from './version-counters.js';

export { createBatchHandler } from './batch.js';
export { errorResponse, type FunctionUrlEvent, type FunctionUrlResult } from './function-url.js';

export interface HandlerDeps extends TelemetryDeps {
  /** The registry's objects. @default an S3ObjectReader with the config's endpoint and timeouts */
  readonly store?: ObjectReader;
  readonly runtime?: () => Promise<TfRuntime>;
  /** Per-version counters of the predict requests (the local stack's; version-counters.ts). @default none */
  readonly counters?: InvocationCounters;
  /** Uniform in [0, 1): routes un-keyed requests to a canary, samples the shadow. @default Math.random */
  readonly random?: () => number;
}

export type Handler = (event: FunctionUrlEvent, context?: Partial<Context>) => Promise<FunctionUrlResult>;

/**
 * Builds a handler for one model. Lambda uses the env-configured `handler` below; the local stack
 * and tests build one per model with explicit config.
 */
export function createHandler(config: InferenceConfig, deps: HandlerDeps = {}): Handler {
  const telemetry = new LazyTelemetry(config.model, deps);
  const routeOf = lastRouteMemo(config.model);
  const { counters } = deps;
  let service: InferenceService | undefined;

  return async (event) => {
    const method = methodOf(event);
    const started = telemetry.begin();
    const counted = counters ? (started ?? monotonicMs()) : undefined;
    let response: FunctionUrlResult;
    let version: number | undefined;
    let role: VersionRole | undefined;
    let shadow: ShadowOutcome | undefined;
    let failedStatus: number | undefined;
    try {
      const target = routeOf(method, pathOf(event));
      const body = bodyOf(event, target, config.limits);
      service ??= createService(config, deps, telemetry.log);
      let result = service.handle(target, body, event.headers?.[ROUTE_KEY_HEADER]);
      if (result instanceof Promise) {
        telemetry.startWhileWaiting();
        result = await result;
      }
      response = answered(result);
      if (target.kind === 'predict') {
        version = result.version;
        role = result.role;
        shadow = result.shadow;
      }
    } catch (error) {
      const choice = choiceOf(error);
      response = errorResponse(error, telemetry.log, event.requestContext?.requestId, choice?.version);
      failedStatus = response.statusCode;
      if (choice) {
        version = choice.version;
        role = choice.role;
      }
    }
    if (counted !== undefined && version !== undefined) {
      counters!.record({
        version,
        role: role ?? 'live',
        status: response.statusCode,
        latencyMs: monotonicMs() - counted - (shadow !== undefined && shadow.kind !== 'slow' ? shadow.ms : 0),
        shadow,
      });
    }
    const ending = telemetry.finish(started, version, failedStatus, role, shadow);
    if (ending) await ending;
    return forMethod(method, response);
  };
}

/** The model's service: nothing is read from S3, and tfjs is not imported, until a request needs it. */
function createService(config: InferenceConfig, deps: HandlerDeps, log: Log): InferenceService {
  return new InferenceService({
    model: config.model,
    alias: config.alias,
    aliasCheckMs: config.aliasCheckSeconds * 1000,
    recheckLimitMs: recheckLimitMs(config),
    limits: config.limits,
    registry: registryReader(config, deps.store),
    runtime: deps.runtime ?? runtimeOnce(),
    fastPath: config.fastPath ?? 'auto',
    log,
    ...(deps.random ? { random: deps.random } : {}),
    ...(config.memoryMiB !== undefined ? { memoryMiB: config.memoryMiB } : {}),
  });
}

let envHandler: Handler | undefined;

/** The Lambda entry point, configured from the environment on first invocation. */
export const handler: Handler = async (event, context) => {
  // A batch job's Distributed Map sends batches of rows to the same function (batch.ts, H4).
  if (isBatchEvent(event)) return (await handleBatchEvent(event)) as unknown as FunctionUrlResult;
  try {
    envHandler ??= createHandler(configFromEnv());
  } catch (error) {
    return errorResponse(error, console, context?.awsRequestId);
  }
  return envHandler(event, context);
};
