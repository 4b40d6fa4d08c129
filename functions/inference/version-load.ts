/**
 * Reads and verifies one version from the registry, then compiles it for the fast path or loads it
 * in tfjs, warmed up. tfjs is imported only for a version that needs it, and then as soon as
 * model.json says so, so its start overlaps the download of the weights, which then arrive straight
 * into its tensors. Throws RegistryUnavailableError when the registry cannot be read, another typed
 * error when the version itself is bad (it does not verify or load).
 */
import { AiaasError, IntegrityError } from '../shared/errors.js';
import { parseModelJson } from '../shared/model/artifacts.js';
import { compileFastPath, fastPathReason } from '../shared/model/fast-path.js';
import { loadReceived, receiveVersion } from '../shared/model/receive.js';
import type { RegistryReader } from '../shared/registry/registry.js';
import type { AliasPointer, VersionMetadata } from '../shared/registry/types.js';
import type { TfRuntime } from '../shared/runtime/types.js';
import { type Executor, fastPathExecutor, tfjsExecutor, warmUp } from './executor.js';
import type { Log } from './log.js';
import type { Served } from './served.js';

/** Where a version is read from and what it runs on. */
export interface VersionSource {
  readonly registry: RegistryReader;
  readonly model: string;
  /** Loads tfjs; called only for a version that needs it. */
  readonly runtime: () => Promise<TfRuntime>;
  /** `off`: every version on tfjs. */
  readonly fastPath: 'auto' | 'off';
  readonly log: Log;
}

/** Loads the version `pointer` names: see the module comment. */
export async function loadVersion(
  pointer: AliasPointer & { readonly etag: string },
  source: VersionSource,
): Promise<Served> {
  const { registry, model, log, fastPath } = source;
  const { version, etag } = pointer;
  let runtime: Promise<TfRuntime> | undefined;
  const startRuntime = () => {
    if (!runtime) {
      runtime = source.runtime();
      runtime.catch(() => undefined); // awaited below, where its failure is handled
    }
    return runtime;
  };
  if (fastPath === 'off') startRuntime();
  let modelJson: ReturnType<typeof parseModelJson> | undefined;
  // A version for tfjs has its weights received straight into tensors once the runtime is up.
  const received = await receiveVersion(registry, model, version, {
    ...(pointer.files ? { files: pointer.files } : {}),
    ...(pointer.inline ? { inline: pointer.inline } : {}),
    runtimeFor: (json) => {
      modelJson = json;
      return fastPath === 'off' || fastPathReason(json) !== undefined ? startRuntime() : undefined;
    },
  });
  const { metadata, files } = received;
  let why = 'the fast path is off';
  if (fastPath === 'auto' && !received.weights) {
    const compiled = compileFastPath(
      modelJson ?? parseModelJson(files.get('model.json') ?? new Uint8Array()),
      files,
      metadata.signature,
    );
    if ('model' in compiled) return ready(version, etag, metadata, fastPathExecutor(compiled.model), log);
    why = compiled.reason;
  } else if (fastPath === 'auto' && modelJson) {
    why = fastPathReason(modelJson) ?? why;
  }
  const tf = await startRuntime();
  if (tf.requested !== 'auto' && tf.requested !== tf.kind) {
    // Serving, but not on the configured backend (e.g. a `native` image whose tfjs-node fails).
    log.error('configured tfjs runtime did not load', {
      requested: tf.requested,
      runtime: tf.kind,
      notes: tf.notes,
    });
  }
  let executor: Executor;
  try {
    const loaded = await loadReceived(tf, received);
    executor = tfjsExecutor(tf, loaded, (leaked) => log.warn('tensors leaked by a prediction', { leaked }));
  } catch (error) {
    if (error instanceof AiaasError) throw error;
    throw new IntegrityError(`version ${version} does not load in tfjs: ${(error as Error).message}`, {
      cause: error,
    });
  }
  log.info('running on tfjs', { version, runtime: tf.kind, notes: tf.notes, fastPath: why });
  return ready(version, etag, metadata, executor, log);
}

function ready(
  version: number,
  etag: string,
  metadata: VersionMetadata,
  executor: Executor,
  log: Log,
): Served {
  const failed = warmUp(executor);
  if (failed) log.warn('warm-up prediction failed', { version, reason: failed });
  return { version, etag, executor, metadata };
}
