/**
 * Keras → TensorFlow.js LayersModel conversion without Python: reads Keras 2.x HDF5 files
 * (`model.save('x.h5')`) and Keras 3 `.keras` archives, and returns in-memory artifacts that
 * `tf.loadLayersModel(io.fromMemory(...))` accepts, like `tensorflowjs_converter` would write.
 * This module reads the two containers and assembles the result; the config mapping is in
 * config.ts, the weight mapping in weights.ts, HDF5 access in hdf5.ts.
 *
 * The files are untrusted: a `.keras` archive is read through `archive.ts` (declared sizes capped
 * before anything is inflated, only the entries a model needs), weights are read only up to
 * `KerasLimits.maxBytes` in all, and a file HDF5 cannot read is refused naming the file and what
 * HDF5 found wrong, never with h5wasm's own words alone.
 */
import type { io } from '@tensorflow/tfjs-core';
import { strFromU8 } from 'fflate';
import { AIAAS_KERAS_MAX_BYTES } from '../env.js';
import { ValidationError } from '../errors.js';
import { readZipEntries } from './archive.js';
import { normalizeModel } from './config.js';
import { KerasFormatError } from './errors.js';
import { type Budget, stringAttr, withHdf5 } from './hdf5.js';
import { asObject, type JsonObject, parseJson } from './json.js';
import type { NormalizedModel } from './layer-catalog.js';
import { DEFAULT_KERAS_LIMITS, type KerasLimits } from './limits.js';
import { h5Weights, kerasV3Weights, type NamedWeight } from './weights.js';

export { KerasFormatError, KerasWeightsError, UnsupportedKerasLayerError } from './errors.js';

export interface ConvertOptions {
  readonly limits?: Partial<KerasLimits>;
}

/** What {@link convertKeras} returns. */
export interface KerasConversion {
  /** A `layers-model` with float32 weights, ready for `io.fromMemory`. */
  artifacts: io.ModelArtifacts;
  /** What was dropped or changed on the way, e.g. optimizer state. Never fatal. */
  warnings: string[];
  source: { kind: 'keras-h5' | 'keras-v3'; kerasVersion?: string; backend?: string; file: string };
}

const HDF5_MAGIC = [0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a];
const ZIP_MAGIC = [0x50, 0x4b, 0x03, 0x04];

const OPTIMIZER_WARNING = 'optimizer state ignored: not needed for serving';
const TRAINING_CONFIG_WARNING =
  'training configuration (loss, metrics, optimizer) ignored: not needed for serving';

/**
 * Converts a Keras model file to TF.js LayersModel artifacts. The format is told by the file's
 * magic bytes (HDF5 or zip), not by `fileName`, which is only used in messages and `source.file`.
 *
 * @throws KerasFormatError when the bytes are not a full Keras model (config and weights).
 * @throws UnsupportedKerasLayerError naming the layer and its class when TF.js cannot run it.
 * @throws KerasWeightsError when the stored weights do not fit the config.
 */
export async function convertKeras(
  bytes: Uint8Array,
  fileName: string,
  options: ConvertOptions = {},
): Promise<KerasConversion> {
  const limits = { ...DEFAULT_KERAS_LIMITS, ...options.limits };
  if (bytes.length === 0) throw new KerasFormatError(`${fileName} is empty (0 bytes): not a Keras model`);
  try {
    if (startsWith(bytes, HDF5_MAGIC)) return await convertH5(bytes, fileName, limits);
    if (startsWith(bytes, ZIP_MAGIC)) return await convertKerasV3(bytes, fileName, limits);
  } catch (error) {
    // Every refusal names the file; the config checks deep inside do not know it.
    if (error instanceof ValidationError && !error.message.startsWith(fileName)) {
      error.message = `${fileName}: ${error.message}`;
    }
    throw error;
  }
  throw new KerasFormatError(
    `${fileName} is not a Keras model: expected an HDF5 file (.h5, Keras 2 model.save) or a .keras archive (Keras 3)`,
  );
}

// ---- Keras 2 HDF5 ----------------------------------------------------------------------------

async function convertH5(bytes: Uint8Array, file: string, limits: KerasLimits): Promise<KerasConversion> {
  const budget: Budget = { left: limits.maxBytes, limit: limits.maxBytes };
  return withHdf5(bytes, file, (h5) => {
    const warnings: string[] = [];
    const rawConfig = stringAttr(h5, 'model_config');
    if (rawConfig === undefined) {
      throw new KerasFormatError(
        `${file} has no model_config: it holds weights only (save_weights); save the whole model with model.save()`,
      );
    }
    const kerasVersion = stringAttr(h5, 'keras_version');
    const backend = stringAttr(h5, 'backend');
    if (kerasVersion?.startsWith('1.')) {
      throw new KerasFormatError(
        `${file} was saved by Keras ${kerasVersion}; only Keras 2 and 3 files are read`,
      );
    }
    if (stringAttr(h5, 'training_config') !== undefined) warnings.push(TRAINING_CONFIG_WARNING);
    if (h5.keys().includes('optimizer_weights')) warnings.push(OPTIMIZER_WARNING);

    const model = normalizeModel(parseJson(rawConfig, `${file}: model_config`), warnings, kerasVersion);
    const root = h5.keys().includes('model_weights') ? 'model_weights' : '';
    const weights = h5Weights(h5, root, model.layers, file, budget);
    return finish(model, weights.flat(), warnings, {
      kind: 'keras-h5',
      ...(kerasVersion ? { kerasVersion } : {}),
      ...(backend ? { backend } : {}),
      file,
    });
  });
}

// ---- Keras 3 .keras --------------------------------------------------------------------------

async function convertKerasV3(
  bytes: Uint8Array,
  file: string,
  limits: KerasLimits,
): Promise<KerasConversion> {
  // Only what a Keras 3 archive needs is inflated; assets and anything else are never read.
  const { files: entries, names } = readZipEntries(
    bytes,
    file,
    {
      'config.json': limits.maxJsonBytes,
      'metadata.json': limits.maxJsonBytes,
      'model.weights.h5': limits.maxBytes,
    },
    { maxTotalBytes: limits.maxBytes, maxRatio: limits.maxRatio, setting: AIAAS_KERAS_MAX_BYTES },
  );
  const configBytes = entries['config.json'];
  const weightBytes = entries['model.weights.h5'];
  if (!configBytes || !weightBytes) {
    const found = names.length > 20 ? [...names.slice(0, 20), `and ${names.length - 20} more`] : names;
    throw new KerasFormatError(
      `${file} is a zip file but not a Keras 3 archive (needs config.json and model.weights.h5; found ${found.join(', ') || 'nothing'})`,
    );
  }
  const metadata = entries['metadata.json']
    ? asObject(parseJson(strFromU8(entries['metadata.json']), `${file}: metadata.json`))
    : {};
  const kerasVersion = typeof metadata?.keras_version === 'string' ? metadata.keras_version : undefined;
  const backend = typeof metadata?.backend === 'string' ? metadata.backend : undefined;
  const warnings: string[] = [];
  const config = parseJson(strFromU8(configBytes), `${file}: config.json`);
  if (asObject(config)?.compile_config) warnings.push(TRAINING_CONFIG_WARNING);
  // An archive without a version is taken as Keras 3, which is what writes .keras files today.
  const model = normalizeModel(config, warnings, kerasVersion ?? '3');

  const budget: Budget = { left: limits.maxBytes, limit: limits.maxBytes };
  return withHdf5(weightBytes, `${file}: model.weights.h5`, (h5) => {
    if (h5.keys().includes('optimizer')) warnings.push(OPTIMIZER_WARNING);
    // Keras 3 numbers its weight groups by class, not by layer name (see weights.ts).
    const weights = kerasV3Weights(h5, model.layers, file, budget);
    return finish(model, weights.flat(), warnings, {
      kind: 'keras-v3',
      ...(kerasVersion ? { kerasVersion } : {}),
      ...(backend ? { backend } : {}),
      file,
    });
  });
}

// ---- artifacts -------------------------------------------------------------------------------

function finish(
  model: NormalizedModel,
  weights: NamedWeight[],
  warnings: string[],
  source: KerasConversion['source'],
): KerasConversion {
  const total = weights.reduce((sum, w) => sum + w.data.byteLength, 0);
  const weightData = new ArrayBuffer(total);
  const view = new Uint8Array(weightData);
  let offset = 0;
  for (const w of weights) {
    view.set(new Uint8Array(w.data.buffer, w.data.byteOffset, w.data.byteLength), offset);
    offset += w.data.byteLength;
  }
  const modelTopology: JsonObject = {
    class_name: model.className,
    config: model.config,
    keras_version: source.kerasVersion ?? null,
    ...(source.backend ? { backend: source.backend } : {}),
  };
  return {
    artifacts: {
      format: 'layers-model',
      generatedBy: source.kerasVersion ? `keras v${source.kerasVersion}` : 'keras',
      convertedBy: 'aiaas keras import',
      modelTopology,
      weightSpecs: weights.map((w) => ({ name: w.name, shape: w.shape, dtype: 'float32' })),
      weightData,
    },
    warnings,
    source,
  };
}

// ---- small helpers ---------------------------------------------------------------------------

function startsWith(bytes: Uint8Array, magic: number[]): boolean {
  return bytes.length >= magic.length && magic.every((b, i) => bytes[i] === b);
}
