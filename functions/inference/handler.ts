/**
 * Lambda function URL handler for one model: parse the event (function-url.ts, routes.ts), call the
 * InferenceService, map its result or typed error to the answer (function-url.ts). Logs and metrics
 * come from telemetry-startup.ts. Clients, runtime and model live in module scope and are reused by
 * warm invocations; a warm predict is answered with no promise or microtask hop of its own.
 */
import type { Context } from 'aws-lambda';
import { RegistryReader } from '../shared/registry/registry.js';
import { S3ObjectReader } from '../shared/registry/s3-reader.js';
import type { ObjectReader } from '../shared/registry/store.js';
import { loadRuntimeModule } from '../shared/runtime/load.js';
import type { TfRuntime } from '../shared/runtime/types.js';
import { configFromEnv, type InferenceConfig, recheckLimitMs, s3ClientSettings } from './config.js';
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
import { lastRouteMemo } from './routes.js';
import { InferenceService } from './service.js';
import { LazyTelemetry, type TelemetryDeps } from './telemetry-startup.js';

export { errorResponse, type FunctionUrlEvent, type FunctionUrlResult } from './function-url.js';

export interface HandlerDeps extends TelemetryDeps {
  /** The registry's objects. @default an S3ObjectReader with the config's endpoint and timeouts */
  readonly store?: ObjectReader;
  readonly runtime?: () => Promise<TfRuntime>;
}

export type Handler = (event: FunctionUrlEvent, context?: Partial<Context>) => Promise<FunctionUrlResult>;

/**
 * Builds a handler for one model. Lambda uses the env-configured `handler` below; the local stack
 * and tests build one per model with explicit config.
 */
export function createHandler(config: InferenceConfig, deps: HandlerDeps = {}): Handler {
  const telemetry = new LazyTelemetry(config.model, deps);
  const routeOf = lastRouteMemo(config.model);
  let service: InferenceService | undefined;

  return async (event) => {
    const method = methodOf(event);
    const started = telemetry.begin();
    let response: FunctionUrlResult;
    let predicted: number | undefined;
    let failedStatus: number | undefined;
    try {
      const target = routeOf(method, pathOf(event));
      const body = bodyOf(event, target, config.limits);
      service ??= createService(config, deps, telemetry.log);
      let result = service.handle(target, body);
      if (result instanceof Promise) {
        telemetry.startWhileWaiting();
        result = await result;
      }
      response = answered(result);
      if (target.kind === 'predict') predicted = result.version;
    } catch (error) {
      response = errorResponse(error, telemetry.log, event.requestContext?.requestId);
      failedStatus = response.statusCode;
    }
    const ending = telemetry.finish(started, predicted, failedStatus);
    if (ending) await ending;
    return forMethod(method, response);
  };
}

/** The model's service: nothing is read from S3, and tfjs is not imported, until a request needs it. */
function createService(config: InferenceConfig, deps: HandlerDeps, log: Log): InferenceService {
  // Every alias check asks for the runtime: resolve and import it once (again only after a failure).
  let runtime: Promise<TfRuntime> | undefined;
  const loadRuntimeOnce = () => {
    runtime ??= loadRuntimeModule().catch((error) => {
      runtime = undefined;
      throw error;
    });
    return runtime;
  };
  return new InferenceService({
    model: config.model,
    alias: config.alias,
    aliasCheckMs: config.aliasCheckSeconds * 1000,
    recheckLimitMs: recheckLimitMs(config),
    limits: config.limits,
    // A reader, not the AWS SDK: the function only reads, and the SDK's import is a large part of a
    // cold start (docs/benchmarks.md).
    registry: new RegistryReader(
      deps.store ??
        new S3ObjectReader({
          bucket: config.bucket,
          ...(config.endpoint ? { endpoint: config.endpoint } : {}),
          ...s3ClientSettings(config),
        }),
    ),
    runtime: deps.runtime ?? loadRuntimeOnce,
    fastPath: config.fastPath ?? 'auto',
    log,
  });
}

let envHandler: Handler | undefined;

/** The Lambda entry point, configured from the environment on first invocation. */
export const handler: Handler = async (event, context) => {
  try {
    envHandler ??= createHandler(configFromEnv());
  } catch (error) {
    return errorResponse(error, console, context?.awsRequestId);
  }
  return envHandler(event, context);
};
