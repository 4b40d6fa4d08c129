/**
 * Lambda function URL adapter (payload format 2.0) for one model. It parses the event, hands it to
 * the InferenceService and maps typed errors to HTTP answers; clients, runtime and model live in
 * module scope and are reused by warm invocations.
 */
import type { Metrics } from '@aws-lambda-powertools/metrics';
import type { Context } from 'aws-lambda';
import { monotonicMs } from '../shared/clock.js';
import { AiaasError, errorAnswer } from '../shared/errors.js';
import { ModelRegistry } from '../shared/registry/registry.js';
import { S3ObjectReader } from '../shared/registry/s3-reader.js';
import type { ObjectStore } from '../shared/registry/store.js';
import { loadRuntimeModule } from '../shared/runtime/load.js';
import type { TfRuntime } from '../shared/runtime/types.js';
import { sourceMappedStack } from '../shared/stack.js';
import { decodeBody, jsonText, type Route, route } from './api.js';
import { configFromEnv, type InferenceConfig, recheckLimitMs, s3ClientSettings } from './config.js';
import { InferenceService, type Log, type ServiceResult } from './service.js';
import type { Telemetry } from './telemetry.js';
import { fallbackTelemetry, type LineLevel, mayLog, mayPublishMetrics } from './telemetry-settings.js';

/** The subset of a function URL event (payload 2.0) that we read. */
export interface FunctionUrlEvent {
  readonly rawPath?: string;
  readonly rawQueryString?: string;
  readonly headers?: Record<string, string | undefined>;
  readonly body?: string;
  readonly isBase64Encoded?: boolean;
  readonly requestContext?: { readonly http?: { readonly method?: string }; readonly requestId?: string };
}

export interface FunctionUrlResult {
  statusCode: number;
  headers: Record<string, string>;
  body: string;
}

export interface HandlerDeps {
  /** The registry's objects. @default an S3ObjectReader with the config's endpoint and timeouts */
  readonly store?: ObjectStore;
  readonly runtime?: () => Promise<TfRuntime>;
  readonly log?: Log;
  readonly metrics?: Metrics;
}

export type Handler = (event: FunctionUrlEvent, context?: Partial<Context>) => Promise<FunctionUrlResult>;

function json(statusCode: number, body: unknown, extra?: Record<string, string>): FunctionUrlResult {
  const headers: Record<string, string> = { 'content-type': 'application/json', 'cache-control': 'no-store' };
  if (extra) Object.assign(headers, extra);
  return { statusCode, headers, body: JSON.stringify(body) };
}

/** A model's answer: every one names the version that gave it. */
function answered(result: ServiceResult): FunctionUrlResult {
  if (result.version === undefined) return json(result.status, result.body);
  // One literal, so every answer has the same headers shape (monomorphic for the caller).
  return {
    statusCode: result.status,
    headers: {
      'content-type': 'application/json',
      'cache-control': 'no-store',
      'x-aiaas-model-version': String(result.version),
    },
    body: jsonText(result.body),
  };
}

let telemetryModule: Promise<typeof import('./telemetry.js')> | undefined;

/** Imports (evaluates) Powertools, once per process. */
function importTelemetry(): Promise<typeof import('./telemetry.js')> {
  telemetryModule ??= import('./telemetry.js');
  return telemetryModule;
}

// A function that will log or publish metrics on its cold start evaluates Powertools as it is
// imported, as a static import would: in Lambda's init phase, before the first request to S3.
if (mayPublishMetrics() || mayLog('info')) importTelemetry().catch(() => undefined);

/**
 * Builds a handler for one model. Lambda uses the env-configured `handler` below; the local stack
 * and tests build one per model with explicit config.
 */
export function createHandler(config: InferenceConfig, deps: HandlerDeps = {}): Handler {
  // Powertools (logs and metrics) is loaded only when a line could be printed or metrics published
  // (telemetry-settings.ts): loading and starting it was 4.5–6.5 ms of a cold start on a slow day
  // (paired runs, docs/benchmarks.md). A cold start that will need it starts it while the first
  // request to S3 is on its way: it opens stdout and stderr as it starts, and nothing needs it
  // before then.
  const publishing = deps.metrics !== undefined || mayPublishMetrics();
  const early = publishing || (deps.log === undefined && mayLog('info'));
  let telemetry: Telemetry | undefined;
  let starting: Promise<Telemetry> | undefined;
  // Lines logged before Powertools is up: written, in order, once it is (within the invocation).
  const waiting: [LineLevel, string, Record<string, unknown> | undefined][] = [];
  const startTelemetry = (): Promise<Telemetry> => {
    starting ??= importTelemetry()
      .then(
        (module) => module.createTelemetry(config.model, deps),
        (error: unknown) => fallbackTelemetry(config.model, deps, error),
      )
      .then((started) => {
        telemetry = started;
        for (const [level, message, extra] of waiting.splice(0)) {
          try {
            started.logger[level](message, extra);
          } catch {
            // Nothing to tell it to; the answer must not fail for a log line.
          }
        }
        return started;
      });
    return starting;
  };
  const line =
    (level: LineLevel) =>
    (message: string, extra?: Record<string, unknown>): void => {
      if (telemetry) telemetry.logger[level](message, extra);
      else if (deps.log) deps.log[level](message, extra);
      else if (mayLog(level)) {
        waiting.push([level, message, extra]);
        void startTelemetry();
      }
    };
  const log: Log = { info: line('info'), warn: line('warn'), error: line('error') };
  let service: InferenceService | undefined;
  // Every alias check asks for the runtime: resolve and import it once (again only after a failure).
  let runtime: Promise<TfRuntime> | undefined;
  const loadRuntimeOnce = () => {
    runtime ??= loadRuntimeModule().catch((error) => {
      runtime = undefined;
      throw error;
    });
    return runtime;
  };
  let coldStart = true;
  // A warm function sees the same method and path again and again: route each pair once in a row.
  let routed: { readonly method: string; readonly path: string; readonly target: Route } | undefined;
  const routeOf = (method: string, path: string): Route => {
    if (routed?.path === path && routed.method === method) return routed.target;
    const target = route(method, path, config.model);
    routed = { method, path, target };
    return target;
  };

  const getService = () => {
    service ??= new InferenceService({
      model: config.model,
      alias: config.alias,
      aliasCheckMs: config.aliasCheckSeconds * 1000,
      recheckLimitMs: recheckLimitMs(config),
      limits: config.limits,
      // A reader, not the AWS SDK: the function only reads, and the SDK's import was a third of a
      // cold start (profiled: docs/benchmarks.md).
      registry: new ModelRegistry(
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
    return service;
  };

  return async (event) => {
    const method = (event.requestContext?.http?.method ?? 'GET').toUpperCase();
    const path = event.rawPath ?? '/';
    // Powertools does the bookkeeping of every call even when publishing is off (the local stack):
    // ~10 µs a request, a third of a warm request's budget (profiled), so the calls are skipped.
    const timed = telemetry ? telemetry.record !== undefined : publishing;
    const started = timed ? monotonicMs() : 0;
    let response: FunctionUrlResult;
    let predicted: ServiceResult | undefined;
    let failed = false;
    try {
      const target = routeOf(method, path);
      const body =
        target.kind === 'predict' ? decodeBody(event.body, event.isBase64Encoded, config.limits) : '';
      const answer = getService().handle(target, body);
      let result: ServiceResult;
      if (answer instanceof Promise) {
        if (early && !starting) setImmediate(startTelemetry);
        result = await answer;
      } else {
        result = answer;
      }
      response = answered(result);
      if (target.kind === 'predict') predicted = result;
    } catch (error) {
      response = errorResponse(error, log, event.requestContext?.requestId);
      failed = true;
    }
    if (timed) {
      const { record } = telemetry ?? (await startTelemetry());
      record?.({
        ...(predicted ? { predicted: predicted.version } : {}),
        ...(failed ? { failedStatus: response.statusCode } : {}),
        coldStart,
        latencyMs: monotonicMs() - started,
      });
    } else if (starting && !telemetry) {
      await starting;
    }
    coldStart = false;
    if (method === 'HEAD') response.body = '';
    return response;
  };
}

/**
 * Typed errors become their status (errorAnswer): a 4xx names the problem, a 5xx gives a generic
 * reason and the request id. Every 5xx is logged with that request id and its details (the
 * registry's, the cause), so a caller's id leads to what went wrong.
 */
export function errorResponse(error: unknown, log: Log, requestId?: string): FunctionUrlResult {
  const answer = errorAnswer(error, requestId);
  if (answer.status >= 500) {
    if (error instanceof AiaasError) {
      log.error('request failed', {
        ...(requestId ? { requestId } : {}),
        status: answer.status,
        error: error.name,
        reason: error.message,
        ...(error.cause ? { cause: describeError(error.cause) } : {}),
      });
    } else {
      log.error('unexpected error', {
        ...(requestId ? { requestId } : {}),
        error: error instanceof Error && error.stack ? sourceMappedStack(error.stack) : String(error),
      });
    }
  }
  return json(answer.status, { error: answer.message }, answer.headers);
}

/** An error's name, code and message, then its causes' (a few levels): for the log only. */
function describeError(error: unknown, depth = 0): string {
  const e = error as { name?: string; code?: string; message?: string; cause?: unknown };
  const own = [e?.name, e?.code, e?.message].filter(Boolean).join(': ') || String(error);
  return e?.cause && depth < 3 ? `${own}; cause ${describeError(e.cause, depth + 1)}` : own;
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
