/**
 * The rollout function: invoked by its EventBridge Scheduler schedule (or by hand), it looks once
 * at the rollout of the one model and alias it was deployed for (shared/rollout/tick.ts): with a
 * canary running, it reads the live and canary figures from CloudWatch and steps, promotes or
 * aborts the canary; otherwise it does nothing. It logs what it decided and why as one JSON line.
 * Clients live in module scope for warm invocations.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import type { S3Client } from '@aws-sdk/client-s3';
import {
  AIAAS_ALIAS,
  AIAAS_BUCKET,
  AIAAS_MODEL,
  AIAAS_MODEL_SPEC,
  AIAAS_S3_ENDPOINT,
  type Environment,
  readString,
  requireString,
} from '../shared/env.js';
import { AiaasError, ConfigurationError, ValidationError } from '../shared/errors.js';
import { type ModelSpec, parseModelSpec, type RolloutPlan } from '../shared/manifest.js';
import { ModelRegistry } from '../shared/registry/registry.js';
import { createS3Client, S3ObjectStore } from '../shared/registry/store.js';
import { CloudWatchFigures, type MetricDataClient } from '../shared/rollout/cloudwatch.js';
import { type RolloutTick, rolloutTick, routedVersions } from '../shared/rollout/tick.js';

export interface RolloutConfig {
  readonly bucket: string;
  readonly model: string;
  readonly alias: string;
  readonly spec: ModelSpec & { readonly rollout: RolloutPlan };
  readonly endpoint?: string;
}

/** A direct invocation or a schedule's delivery: only `model` is read, and must be this one's. */
export interface RolloutEvent {
  readonly model?: string;
}

/**
 * The rollout function's variables (see shared/env.ts): AIAAS_MODEL_SPEC is the manifest entry of
 * AIAAS_MODEL and must hold a rollout plan; AIAAS_ALIAS defaults to the entry's alias.
 */
export function configFromEnv(env: Environment = process.env): RolloutConfig {
  const bucket = requireString(env, AIAAS_BUCKET);
  const model = requireString(env, AIAAS_MODEL);
  const spec = parseModelSpec(requireString(env, AIAAS_MODEL_SPEC), AIAAS_MODEL_SPEC);
  if (spec.name !== model) {
    throw new ConfigurationError(
      `${AIAAS_MODEL_SPEC} describes "${spec.name}", but ${AIAAS_MODEL} is "${model}"`,
    );
  }
  if (!spec.rollout)
    throw new ConfigurationError(`${AIAAS_MODEL_SPEC}: model "${model}" has no "rollout" plan`);
  const endpoint = readString(env, AIAAS_S3_ENDPOINT);
  return {
    bucket,
    model,
    alias: readString(env, AIAAS_ALIAS) ?? spec.alias,
    spec: { ...spec, rollout: spec.rollout },
    ...(endpoint ? { endpoint } : {}),
  };
}

export interface RolloutHandlerDeps {
  readonly s3?: S3Client;
  /** The registry over another store (tests). @default the S3 bucket of `config` */
  readonly registry?: ModelRegistry;
  readonly cloudwatch?: MetricDataClient;
  readonly logger?: Logger;
  readonly now?: () => Date;
}

export type RolloutHandler = (event: RolloutEvent | null | undefined) => Promise<RolloutTick>;

/** Builds the handler for one model; Lambda uses `handler` below, tests pass config and deps. */
export function createRolloutHandler(config: RolloutConfig, deps: RolloutHandlerDeps = {}): RolloutHandler {
  const logger =
    deps.logger ??
    new Logger({
      serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? `aiaas-rollout-${config.model}`,
      persistentKeys: { model: config.model, alias: config.alias },
    });
  const registry =
    deps.registry ??
    new ModelRegistry(
      new S3ObjectStore(
        deps.s3 ?? createS3Client({ endpoint: config.endpoint }),
        config.bucket,
        config.endpoint,
      ),
      { actor: 'aiaas-rollout' },
    );
  const figures = new CloudWatchFigures({
    client: deps.cloudwatch ?? new CloudWatchClient({}),
    routes: async (model) => routedVersions(await registry.getAlias(model, config.alias)),
  });
  return async (event) => {
    if (event?.model !== undefined && event.model !== config.model) {
      throw new ValidationError(`This function rolls out "${config.model}", not "${String(event.model)}"`);
    }
    try {
      const tick = await rolloutTick({
        registry,
        model: config.model,
        alias: config.alias,
        plan: config.spec.rollout,
        figures,
        ...(deps.now ? { now: deps.now } : {}),
      });
      logger.info(`rollout ${tick.action}`, { ...tick });
      return tick;
    } catch (error) {
      // Failing the invocation lets the schedule's retries, DLQ and Errors alarm see it.
      if (error instanceof AiaasError)
        logger.error(`rollout failed: ${error.message}`, { error: error.name });
      else logger.error('rollout failed unexpectedly', error as Error);
      throw error;
    }
  };
}

let envHandler: RolloutHandler | undefined;

/** The Lambda entry point, configured from the environment on first invocation. */
export const handler: RolloutHandler = async (event) => {
  envHandler ??= createRolloutHandler(configFromEnv());
  return envHandler(event);
};
