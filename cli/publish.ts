import { readFile, stat } from 'node:fs/promises';
import { basename, resolve } from 'node:path';
import type { io } from '@tensorflow/tfjs-core';
import { tfjsExecutor, warmUp } from '../functions/inference/executor.js';
import { AIAAS_KERAS_MAX_BYTES } from '../functions/shared/env.js';
import { ValidationError } from '../functions/shared/errors.js';
import type { KerasLimits } from '../functions/shared/keras/limits.js';
import { artifactsToFiles, disposeModel, loadModel } from '../functions/shared/model/artifacts.js';
import { readModelFromDisk } from '../functions/shared/model/folder.js';
import type { ModelRegistry } from '../functions/shared/registry/registry.js';
import type { AliasEvent, VersionMetadata, VersionSource } from '../functions/shared/registry/types.js';
import type { TfRuntime } from '../functions/shared/runtime/types.js';

export interface PublishOptions {
  readonly model: string;
  /** Move this alias to the new version. */
  readonly promote?: boolean;
  readonly alias?: string;
  readonly why?: string;
  /** Upload progress in bytes. */
  readonly onProgress?: (done: number, total: number) => void;
  readonly warn?: (message: string) => void;
}

/** The Keras limits the CLI runs with: the defaults, or AIAAS_KERAS_MAX_BYTES for the weights. */
export function kerasLimits(env: NodeJS.ProcessEnv = process.env): Partial<KerasLimits> {
  const raw = env[AIAAS_KERAS_MAX_BYTES];
  if (raw === undefined || raw === '') return {};
  const maxBytes = Number(raw);
  if (!Number.isSafeInteger(maxBytes) || maxBytes <= 0) {
    throw new ValidationError(`${AIAAS_KERAS_MAX_BYTES} must be a whole number of bytes, not "${raw}"`);
  }
  return { maxBytes };
}

/** Reads a model from disk: a TF.js folder or model.json, or a Keras .h5 / .keras file. */
export async function readArtifacts(
  path: string,
): Promise<{ artifacts: io.ModelArtifacts; source: VersionSource; warnings: string[] }> {
  const absolute = resolve(path);
  if (/\.(h5|hdf5|keras)$/i.test(path)) {
    const { convertKeras } = await import('../functions/shared/keras/convert.js');
    const bytes = await readRegularFile(absolute, path);
    const converted = await convertKeras(bytes, basename(path), { limits: kerasLimits() });
    return {
      artifacts: converted.artifacts,
      source: { ...converted.source, file: basename(path) },
      warnings: converted.warnings,
    };
  }
  const artifacts = await readModelFromDisk(absolute);
  return {
    artifacts,
    source: {
      kind: 'publish',
      file: basename(absolute),
      ...(artifacts.generatedBy ? { generatedBy: artifacts.generatedBy } : {}),
      ...(artifacts.convertedBy ? { convertedBy: artifacts.convertedBy } : {}),
    },
    warnings: [],
  };
}

/** A file's bytes, refusing what is not a regular file (a FIFO would never end, a device never stop). */
async function readRegularFile(absolute: string, path: string): Promise<Uint8Array> {
  const fail = (cause: unknown): never => {
    throw new ValidationError(`Cannot read ${path}: ${(cause as NodeJS.ErrnoException).code ?? 'error'}`, {
      cause,
    });
  };
  const info = await stat(absolute).catch(fail);
  if (!info.isFile()) throw new ValidationError(`Cannot read ${path}: not a regular file`);
  return readFile(absolute).catch(fail);
}

/**
 * Publishes a model file or folder as a new version: loads it in tfjs first (a model that does not
 * load is refused before anything is written), records its signature, uploads, optionally promotes.
 */
export async function publishFromDisk(
  registry: ModelRegistry,
  runtime: TfRuntime,
  path: string,
  options: PublishOptions,
): Promise<{ metadata: VersionMetadata; event?: AliasEvent }> {
  const { artifacts, source, warnings } = await readArtifacts(path);
  for (const w of warnings) options.warn?.(w);
  let signature: VersionMetadata['signature'];
  try {
    const loaded = await loadModel(runtime, { load: async () => artifacts });
    signature = loaded.signature;
    // A model that fails on every request is refused now (warmUp throws, freeing it), not served.
    warmUp(tfjsExecutor(runtime, loaded, () => undefined));
    disposeModel(loaded);
  } catch (cause) {
    if (cause instanceof ValidationError) throw cause;
    throw new ValidationError(`${path} does not load as a TensorFlow.js model: ${(cause as Error).message}`, {
      cause,
    });
  }
  const files = artifactsToFiles(artifacts);
  const alias = options.alias ?? 'live';
  const current = await registry.getAlias(options.model, alias);
  const metadata = await registry.publish(
    options.model,
    files,
    {
      format: artifacts.format === 'graph-model' ? 'graph-model' : 'layers-model',
      signature,
      metrics: {},
      source,
      parent: current?.version ?? null,
    },
    { ...(options.onProgress ? { onProgress: options.onProgress } : {}) },
  );
  if (!options.promote) return { metadata };
  const event = await registry.setAlias(options.model, alias, metadata.version, {
    why: options.why ?? `published from ${basename(path)}`,
  });
  return { metadata, event };
}
