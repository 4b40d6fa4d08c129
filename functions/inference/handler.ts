/**
 * Lambda function URL adapter (payload format 2.0) for one model. It parses the event, hands it to
 * the InferenceService and maps typed errors to HTTP answers; clients, runtime and model live in
 * module scope and are reused by warm invocations.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { Context } from 'aws-lambda';
import { monotonicMs } from '../shared/clock.js';
import { AiaasError, MethodNotAllowedError } from '../shared/errors.js';
import { ModelRegistry } from '../shared/registry/registry.js';
import { S3ObjectReader } from '../shared/registry/s3-reader.js';
import type { ObjectStore } from '../shared/registry/store.js';
import { loadRuntimeModule } from '../shared/runtime/load.js';
import type { TfRuntime } from '../shared/runtime/types.js';
import { sourceMappedStack } from '../shared/stack.js';
import { decodeBody, type Route, route } from './api.js';
import { configFromEnv, type InferenceConfig } from './config.js';
import { InferenceService, type Log, type ServiceResult } from './service.js';

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
    body: JSON.stringify(result.body),
  };
}

/**
 * Builds a handler for one model. Lambda uses the env-configured `handler` below; the local stack
 * and tests build one per model with explicit config.
 */
export function createHandler(config: InferenceConfig, deps: HandlerDeps = {}): Handler {
  // Logging and metrics are set up on first use, or while a cold start waits on S3: Powertools
  // opens stdout and stderr as it starts (~3 ms of a cold start, profiled), and nothing needs them
  // before the first request to S3 is on its way.
  let telemetry: Telemetry | undefined;
  const telemetryNow = (): Telemetry => {
    telemetry ??= createTelemetry(config.model, deps);
    return telemetry;
  };
  const log: Log = {
    info: (message, extra) => telemetryNow().logger.info(message, extra),
    warn: (message, extra) => telemetryNow().logger.warn(message, extra),
    error: (message, extra) => telemetryNow().logger.error(message, extra),
  };
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
      limits: config.limits,
      // A reader, not the AWS SDK: the function only reads, and the SDK's import was a third of a
      // cold start (profiled: docs/benchmarks.md).
      registry: new ModelRegistry(
        deps.store ??
          new S3ObjectReader({
            bucket: config.bucket,
            ...(config.endpoint ? { endpoint: config.endpoint } : {}),
            requestTimeoutMs: config.s3TimeoutMs ?? 3_000,
            maxAttempts: 2,
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
    const started = telemetry && !telemetry.metrics ? 0 : monotonicMs();
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
        if (!telemetry) setImmediate(telemetryNow);
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
    const { metrics } = telemetryNow();
    if (metrics) {
      if (predicted) {
        metrics.addDimension('version', String(predicted.version));
        metrics.addMetric('Predictions', MetricUnit.Count, 1);
        metrics.addMetric('PredictLatency', MetricUnit.Milliseconds, monotonicMs() - started);
      } else if (failed) {
        metrics.addMetric(response.statusCode >= 500 ? 'Faults' : 'ClientErrors', MetricUnit.Count, 1);
      }
      if (coldStart) metrics.addMetric('ColdStart', MetricUnit.Count, 1);
      if (predicted || failed || coldStart) metrics.publishStoredMetrics();
    }
    coldStart = false;
    if (method === 'HEAD') response.body = '';
    return response;
  };
}

/** The function's logger, and its metrics when they are published at all. */
interface Telemetry {
  readonly logger: Log;
  readonly metrics: Metrics | undefined;
}

function createTelemetry(model: string, deps: HandlerDeps): Telemetry {
  try {
    const logger = deps.log ?? powertoolsLog(model);
    const own = deps.metrics
      ? undefined
      : new FunctionMetrics({
          namespace: process.env.POWERTOOLS_METRICS_NAMESPACE ?? 'aiaas',
          serviceName: `aiaas-${model}`,
        });
    const metrics = deps.metrics ?? own!;
    metrics.setDefaultDimensions({ model });
    return { logger, metrics: !own || own.publishing ? metrics : undefined };
  } catch (error) {
    // Logging or metrics that cannot start must not take predictions down with them: plain
    // console logs, no metrics, and one line that says why.
    const logger = deps.log ?? consoleLog(model);
    logger.error('logging or metrics could not start; using console logs without metrics', {
      error: error instanceof Error ? error.message : String(error),
    });
    return { logger, metrics: undefined };
  }
}

const LEVELS = ['DEBUG', 'INFO', 'WARN', 'ERROR', 'SILENT'];

/** JSON lines on the console, at the level Powertools would have used (Lambda's setting first). */
function consoleLog(model: string): Log {
  const configured = (
    process.env.AWS_LAMBDA_LOG_LEVEL ??
    process.env.POWERTOOLS_LOG_LEVEL ??
    process.env.LOG_LEVEL ??
    'INFO'
  ).toUpperCase();
  const threshold = Math.max(0, LEVELS.indexOf(configured));
  const write =
    (level: string, print: (line: string) => void) => (message: string, extra?: Record<string, unknown>) => {
      if (LEVELS.indexOf(level) >= threshold) print(JSON.stringify({ level, message, model, ...extra }));
    };
  return {
    info: write('INFO', console.info),
    warn: write('WARN', console.warn),
    error: write('ERROR', console.error),
  };
}

/** Powertools Metrics that tells whether it publishes, by its own rule (POWERTOOLS_METRICS_DISABLED, POWERTOOLS_DEV). */
class FunctionMetrics extends Metrics {
  get publishing(): boolean {
    return !this.isDisabled();
  }
}

function powertoolsLog(model: string): Log {
  const logger = new Logger({
    serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? `aiaas-${model}`,
    persistentKeys: { model },
  });
  return {
    info: (message, extra) => logger.info(message, (extra ?? {}) as never),
    warn: (message, extra) => logger.warn(message, (extra ?? {}) as never),
    error: (message, extra) => logger.error(message, (extra ?? {}) as never),
  };
}

/** Typed errors become their status with a one-line message; anything else is a 500 that names no internals. */
export function errorResponse(error: unknown, log: Log, requestId?: string): FunctionUrlResult {
  if (error instanceof AiaasError) {
    const headers: Record<string, string> = {};
    if (error instanceof MethodNotAllowedError) headers.allow = error.allow.join(', ');
    if (error.status === 503) headers['retry-after'] = '2';
    // 503s were logged with their cause where they happened (once per failed load, not per request).
    if (error.status >= 500 && error.status !== 503) {
      log.error(error.message, { error: error.name, cause: String((error as Error).cause ?? '') });
    }
    return json(error.status, { error: error.message }, headers);
  }
  log.error('unexpected error', {
    error: error instanceof Error && error.stack ? sourceMappedStack(error.stack) : String(error),
  });
  return json(500, {
    error: `Internal error${requestId ? ` (request ${requestId})` : ''}; see the function's logs`,
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
