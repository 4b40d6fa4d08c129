/**
 * The batch job's final step (a Lambda function the state machine runs after the Distributed Map):
 * adapts the event to finishJob (finish.ts) and answers its BatchSummary; typed errors are thrown
 * for the state machine to record. The S3 client lives in module scope for warm invocations.
 */

import type { BatchSummary } from '../shared/batch/events.js';
import {
  AIAAS_BUCKET,
  AIAAS_MODEL,
  AIAAS_S3_ENDPOINT,
  type Environment,
  readString,
  requireString,
} from '../shared/env.js';
import { assertModelName } from '../shared/registry/layout.js';
import { createS3Client, type ObjectStore, S3ObjectStore } from '../shared/registry/store.js';
import { type FinishOptions, finishJob } from './finish.js';

/** The bucket, endpoint and (deployed per model) model, from the function's environment. */
export function finishOptionsFromEnv(env: Environment = process.env, store?: ObjectStore): FinishOptions {
  const bucket = requireString(env, AIAAS_BUCKET);
  const endpoint = readString(env, AIAAS_S3_ENDPOINT);
  const model = readString(env, AIAAS_MODEL);
  return {
    bucket,
    store:
      store ?? new S3ObjectStore(createS3Client({ ...(endpoint ? { endpoint } : {}) }), bucket, endpoint),
    ...(model ? { model: assertModelName(model) } : {}),
  };
}

export type AssembleHandler = (event: unknown) => Promise<BatchSummary>;

/**
 * A final step with explicit settings (the local executor builds one for the local S3; credentials
 * from the environment, as Lambda gives them).
 */
export function createAssembleHandler(config: {
  readonly bucket: string;
  readonly endpoint?: string;
  readonly model?: string;
  readonly store?: ObjectStore;
}): AssembleHandler {
  const options: FinishOptions = {
    bucket: config.bucket,
    store:
      config.store ??
      new S3ObjectStore(
        createS3Client({ ...(config.endpoint ? { endpoint: config.endpoint } : {}) }),
        config.bucket,
        config.endpoint,
      ),
    ...(config.model ? { model: assertModelName(config.model) } : {}),
  };
  return async (event) => {
    const summary = await finishJob(event, options);
    console.log(JSON.stringify({ level: 'INFO', message: 'batch job finished', ...summary }));
    return summary;
  };
}

let envHandler: AssembleHandler | undefined;

/** The Lambda entry point, configured from the environment on first invocation. */
export async function handler(event: unknown): Promise<BatchSummary> {
  envHandler ??= createAssembleHandler(finishOptionsFromEnv());
  return envHandler(event);
}
