/**
 * Scoring the alias's current version on the new validation rows, so the gate compares candidate
 * and baseline on the same data. A version that cannot be scored is reported with the reason, not
 * thrown; only registry outages are thrown.
 */
import type { io } from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { RegistryUnavailableError } from '../errors.js';
import type { ModelDefinition } from '../manifest.js';
import { filesToArtifacts } from '../model/artifacts.js';
import type { ModelRegistry } from '../registry/registry.js';
import type { TfRuntime } from '../runtime/types.js';
import type { Examples } from './dataset.js';
import { compileModel, evaluateModel } from './train.js';

/** How the live (alias) version scored on the new validation set. */
export type BaselineScore =
  | { readonly version: number; readonly metrics: Readonly<Record<string, number>> }
  | { readonly version: number; readonly error: string };

/**
 * Scores the alias's version on the validation set. A version that cannot be scored (another
 * format, other inputs, corrupt) is reported with the reason rather than thrown: the gate then
 * refuses, since "better than something we could not measure" is unknown. Registry outages are
 * thrown: retrying later is the right answer to those.
 */
export async function scoreBaseline(
  registry: ModelRegistry,
  runtime: TfRuntime,
  model: string,
  version: number,
  definition: ModelDefinition,
  validation: Examples,
): Promise<BaselineScore> {
  let loaded: LayersModel | undefined;
  try {
    const { metadata, files } = await registry.readVersion(model, version);
    if (metadata.format !== 'layers-model') {
      return {
        version,
        error: `v${version} is a ${metadata.format}, which cannot be scored as a Keras model`,
      };
    }
    const artifacts: io.ModelArtifacts = filesToArtifacts(files);
    loaded = await runtime.layers.loadLayersModel(runtime.tf.io.fromMemory(artifacts));
    const inputs = loaded.inputs[0]?.shape;
    if (loaded.inputs.length !== 1 || inputs?.length !== 2 || inputs[1] !== definition.features.length) {
      return {
        version,
        error: `v${version} takes inputs ${JSON.stringify(loaded.inputs.map((t) => t.shape))}, not ${definition.features.length} features`,
      };
    }
    compileModel(runtime, loaded, definition);
    return { version, metrics: await evaluateModel(runtime, loaded, definition, validation, 'val_') };
  } catch (error) {
    if (error instanceof RegistryUnavailableError) throw error;
    return { version, error: `v${version} could not be scored: ${(error as Error).message}` };
  } finally {
    loaded?.dispose();
  }
}
