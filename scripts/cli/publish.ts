import { readFile } from 'node:fs/promises';
import { basename, resolve } from 'node:path';
import type { io } from '@tensorflow/tfjs-core';
import { ValidationError } from '../../functions/shared/errors.js';
import {
  artifactsToFiles,
  disposeModel,
  loadModel,
  readModelFromDisk,
} from '../../functions/shared/model/artifacts.js';
import type { ModelRegistry } from '../../functions/shared/registry/registry.js';
import type { AliasEvent, VersionMetadata, VersionSource } from '../../functions/shared/registry/types.js';
import type { TfRuntime } from '../../functions/shared/runtime/types.js';

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

/** Reads a model from disk: a TF.js folder or model.json, or a Keras .h5 / .keras file. */
export async function readArtifacts(
  path: string,
): Promise<{ artifacts: io.ModelArtifacts; source: VersionSource; warnings: string[] }> {
  const absolute = resolve(path);
  if (/\.(h5|hdf5|keras)$/i.test(path)) {
    const { convertKeras } = await import('../../functions/shared/keras/convert.js');
    const bytes = await readFile(absolute).catch((cause) => {
      throw new ValidationError(`Cannot read ${path}: ${(cause as NodeJS.ErrnoException).code ?? 'error'}`, {
        cause,
      });
    });
    const converted = await convertKeras(bytes, basename(path));
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
