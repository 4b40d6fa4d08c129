import { DEFAULT_LIMITS } from '../../functions/inference/api.js';
import type { InferenceConfig } from '../../functions/inference/config.js';
import type { HandlerDeps } from '../../functions/inference/handler.js';
import type { Log } from '../../functions/inference/service.js';
import { S3ObjectReader } from '../../functions/shared/registry/s3-reader.js';
import { createRuntime } from '../../layers/tfjs-runtime/runtime.js';
import { LOCAL_CREDENTIALS, type LocalS3 } from '../../scripts/local/s3.js';

/**
 * `createHandler`'s arguments for `model` (alias live) on a local S3: the cpu runtime, one attempt
 * per S3 request and a 500 ms connection timeout, so a registry that is down answers quickly.
 */
export function localHandlerArgs(
  s3: LocalS3,
  model: string,
  options: { readonly endpoint?: string; readonly secretAccessKey?: string; readonly log?: Log } = {},
): [InferenceConfig, HandlerDeps] {
  const endpoint = options.endpoint ?? s3.endpoint;
  return [
    { bucket: s3.bucket, model, alias: 'live', endpoint, aliasCheckSeconds: 60, limits: DEFAULT_LIMITS },
    {
      store: new S3ObjectReader({
        bucket: s3.bucket,
        endpoint,
        region: 'us-east-1',
        credentials: {
          accessKeyId: LOCAL_CREDENTIALS.accessKeyId,
          secretAccessKey: options.secretAccessKey ?? LOCAL_CREDENTIALS.secretAccessKey,
        },
        connectionTimeoutMs: 500,
        maxAttempts: 1,
      }),
      runtime: () => createRuntime('cpu'),
      ...(options.log ? { log: options.log } : {}),
    },
  ];
}
