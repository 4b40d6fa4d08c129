/**
 * What every entry of the inference bundle reads the registry and loads tfjs with: a read-only
 * registry over the function's own SigV4 reader (or an injected store), and the tfjs runtime
 * module imported once, on first need, and again only after a failed import. The function URL
 * handler and the batch entry share them so both read and load alike.
 */
import { RegistryReader } from '../shared/registry/registry.js';
import { S3ObjectReader } from '../shared/registry/s3-reader.js';
import type { ObjectReader } from '../shared/registry/store.js';
import { loadRuntimeModule } from '../shared/runtime/load.js';
import type { TfRuntime } from '../shared/runtime/types.js';
import { type InferenceConfig, s3ClientSettings } from './config.js';

/**
 * The registry the config names. A reader, not the AWS SDK: the function only reads, and the SDK's
 * import is a large part of a cold start (docs/benchmarks.md).
 */
export function registryReader(config: InferenceConfig, store?: ObjectReader): RegistryReader {
  return new RegistryReader(
    store ??
      new S3ObjectReader({
        bucket: config.bucket,
        ...(config.endpoint ? { endpoint: config.endpoint } : {}),
        ...s3ClientSettings(config),
      }),
  );
}

/** Loads the tfjs runtime module once (again only after a failure): every alias check asks for it. */
export function runtimeOnce(): () => Promise<TfRuntime> {
  let runtime: Promise<TfRuntime> | undefined;
  return () => {
    runtime ??= loadRuntimeModule().catch((error) => {
      runtime = undefined;
      throw error;
    });
    return runtime;
  };
}
