/**
 * The retraining function: invoked by its EventBridge schedule or by hand (`{model?, force?}`),
 * it runs `retrain()` for the one model it was deployed for and logs each step as structured JSON.
 * The S3 client and registry live in module scope for warm invocations; tfjs loads on first use.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import type { S3Client } from '@aws-sdk/client-s3';
import type { Context } from 'aws-lambda';
import {
  AIAAS_BUCKET,
  AIAAS_MODEL,
  AIAAS_MODEL_SPEC,
  AIAAS_S3_ENDPOINT,
  type Environment,
  readString,
  requireString,
} from '../shared/env.js';
import { AiaasError, ConfigurationError, ValidationError } from '../shared/errors.js';
import { type ModelSpec, parseManifest } from '../shared/manifest.js';
import { ModelRegistry } from '../shared/registry/registry.js';
import { createS3Client, S3ObjectStore } from '../shared/registry/store.js';
import { loadRuntimeModule } from '../shared/runtime/load.js';
import type { TfRuntime } from '../shared/runtime/types.js';
import { type RetrainResult, retrain } from '../shared/training/retrain.js';

/** A direct invocation, or what EventBridge Scheduler delivers (its input, or a scheduled-event envelope). */
export interface RetrainEvent {
  readonly model?: string;
  readonly force?: boolean;
  readonly 'detail-type'?: string;
  readonly source?: string;
}

export interface RetrainConfig {
  readonly bucket: string;
  readonly model: string;
  readonly spec: ModelSpec;
  readonly endpoint?: string;
}

/** What the invocation returns (and logs last). */
export type RetrainSummary =
  | {
      readonly status: 'unchanged';
      readonly model: string;
      readonly version: number;
      readonly reason: string;
    }
  | {
      readonly status: 'promoted' | 'published';
      readonly model: string;
      readonly version: number;
      readonly parent: number | null;
      readonly promoted: boolean;
      readonly reason: string;
      readonly metrics: Readonly<Record<string, number>>;
      readonly baselineVersion: number | null;
      readonly rows: number;
      readonly rejectedRows: number;
      readonly reportKey: string;
      readonly durationMs: number;
    };

/**
 * The retraining function's variables (see shared/env.ts): AIAAS_MODEL_SPEC must be the manifest
 * entry of AIAAS_MODEL; a missing or unusable one is a ConfigurationError naming it.
 */
export function configFromEnv(env: Environment = process.env): RetrainConfig {
  const bucket = requireString(env, AIAAS_BUCKET);
  const model = requireString(env, AIAAS_MODEL);
  const rawSpec = requireString(env, AIAAS_MODEL_SPEC);
  let json: unknown;
  try {
    json = JSON.parse(rawSpec);
  } catch (cause) {
    throw new ConfigurationError(`${AIAAS_MODEL_SPEC} is not valid JSON: ${(cause as Error).message}`, {
      cause,
    });
  }
  const spec = parseManifest({ models: [json] }, AIAAS_MODEL_SPEC).models[0]!;
  if (spec.name !== model) {
    throw new ConfigurationError(
      `${AIAAS_MODEL_SPEC} describes "${spec.name}", but ${AIAAS_MODEL} is "${model}"`,
    );
  }
  const endpoint = readString(env, AIAAS_S3_ENDPOINT);
  return { bucket, model, spec, ...(endpoint ? { endpoint } : {}) };
}

export function summarize(result: RetrainResult): RetrainSummary {
  if (result.status === 'unchanged') {
    return { status: 'unchanged', model: result.model, version: result.version, reason: result.reason };
  }
  return {
    status: result.status,
    model: result.model,
    version: result.version,
    parent: result.parent,
    promoted: result.decision.promoted,
    reason: result.decision.reason,
    metrics: result.metrics,
    baselineVersion: result.baseline?.version ?? null,
    rows: result.rows,
    rejectedRows: result.rejectedRows,
    reportKey: result.reportKey,
    durationMs: result.durationMs,
  };
}

export interface RetrainHandlerDeps {
  readonly s3?: S3Client;
  readonly runtime?: () => Promise<TfRuntime>;
  readonly logger?: Logger;
}

export type RetrainHandler = (
  event: RetrainEvent | null | undefined,
  context?: Partial<Context>,
) => Promise<RetrainSummary>;

/** Time kept back from Lambda's remaining time for publishing after training stops. */
const PUBLISH_RESERVE_MS = 60_000;

/** Builds the handler for one model; Lambda uses `handler` below, tests pass config and deps. */
export function createRetrainHandler(config: RetrainConfig, deps: RetrainHandlerDeps = {}): RetrainHandler {
  const logger =
    deps.logger ??
    new Logger({
      serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? `aiaas-retrain-${config.model}`,
      persistentKeys: { model: config.model },
    });
  const registry = new ModelRegistry(
    new S3ObjectStore(
      deps.s3 ?? createS3Client({ endpoint: config.endpoint }),
      config.bucket,
      config.endpoint,
    ),
  );
  let runtime: Promise<TfRuntime> | undefined;

  return async (event, context) => {
    const request = event ?? {};
    if (request.model !== undefined && request.model !== config.model) {
      throw new ValidationError(`This function retrains "${config.model}", not "${request.model}"`);
    }
    // The CDK schedule sends {source: 'aiaas.schedule'}; EventBridge envelopes carry detail-type.
    const scheduled =
      request.source === 'aiaas.schedule' || request.source === 'aws.scheduler' || !!request['detail-type'];
    const trigger = scheduled ? 'schedule' : 'invoke';
    const remaining = context?.getRemainingTimeInMillis?.();
    try {
      runtime ??= (deps.runtime ?? (() => loadRuntimeModule()))();
      const tf = await runtime;
      const epochs = config.spec.definition?.fit.epochs ?? 0;
      // About 50 progress lines a run, whatever the epoch count, plus the last epoch.
      const every = Math.max(1, Math.ceil(epochs / 50));
      const result = await retrain({
        registry,
        spec: config.spec,
        runtime: tf,
        force: request.force === true,
        trigger,
        who: `retrain-function${context?.functionName ? `:${context.functionName}` : ''}`,
        ...(remaining !== undefined ? { deadline: Date.now() + remaining - PUBLISH_RESERVE_MS } : {}),
        log: (e) => logger.info(`retrain ${e.event}`, { ...e }),
        onEpoch: ({ epoch, epochs: total, logs }) => {
          if (epoch % every === 0 || epoch === total)
            logger.info('retrain epoch', { epoch, epochs: total, ...logs });
        },
      });
      const summary = summarize(result);
      logger.info(`retrain ${summary.status}`, { ...summary, runtime: tf.kind });
      return summary;
    } catch (error) {
      // Failing the invocation lets the schedule's retry policy, DLQ and Errors alarm see it.
      if (error instanceof AiaasError) {
        logger.error(`retrain failed: ${error.message}`, { error: error.name, status: error.status });
      } else {
        runtime = undefined; // a runtime that failed to start may start next time
        logger.error('retrain failed unexpectedly', error as Error);
      }
      throw error;
    }
  };
}

let envHandler: RetrainHandler | undefined;

/** The Lambda entry point, configured from the environment on first invocation. */
export const handler: RetrainHandler = async (event, context) => {
  envHandler ??= createRetrainHandler(configFromEnv());
  return envHandler(event, context);
};
