/**
 * Keras → TensorFlow.js LayersModel conversion without Python: reads Keras 2.x HDF5 files
 * (`model.save('x.h5')`) and Keras 3 `.keras` archives, and returns in-memory artifacts that
 * `tf.loadLayersModel(io.fromMemory(...))` accepts, like `tensorflowjs_converter` would write.
 *
 * The files are untrusted: a `.keras` archive is read through `archive.ts` (declared sizes capped
 * before anything is inflated, only the entries a model needs), weights are read only up to
 * `KerasLimits.maxBytes` in all, and a file HDF5 cannot read is refused naming the file and what
 * HDF5 found wrong, never with h5wasm's own words alone.
 */
import fs from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { io } from '@tensorflow/tfjs-core';
import { strFromU8 } from 'fflate';
import h5wasm, { type File as H5File, type Group as H5Group } from 'h5wasm/node';
import { ValidationError } from '../errors.js';
import { readZipEntries } from './archive.js';
import { DEFAULT_KERAS_LIMITS, KERAS_MAX_BYTES_SETTING, type KerasLimits } from './limits.js';

export { DEFAULT_KERAS_LIMITS, KERAS_MAX_BYTES_SETTING, type KerasLimits } from './limits.js';

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

/** The bytes are not a Keras model file this importer can read (wrong format, corrupt, weights only). */
export class KerasFormatError extends ValidationError {
  override readonly name: string = 'KerasFormatError';
}

/** The model uses a layer, model class, option or custom object that TF.js cannot run as Keras did. */
export class UnsupportedKerasLayerError extends ValidationError {
  override readonly name: string = 'UnsupportedKerasLayerError';
  constructor(
    readonly layerName: string,
    readonly className: string,
    reason: string,
  ) {
    super(`Keras layer '${layerName}' (class ${className}) is not supported: ${reason}`);
  }
}

/** The weights stored in the file do not fit the layers in its config. */
export class KerasWeightsError extends ValidationError {
  override readonly name: string = 'KerasWeightsError';
}

type Json = null | boolean | number | string | Json[] | JsonObject;
type JsonObject = { [key: string]: Json };

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

/** What the weights read so far may still take (KerasLimits.maxBytes, shared by every dataset read). */
interface Budget {
  left: number;
  readonly limit: number;
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
    const weights = model.layers.map((layer) => {
      const expected = expectedWeights(layer);
      if (expected.length === 0) return [];
      const groupPath = root ? `${root}/${layer.name}` : layer.name;
      const group = h5.get(groupPath);
      if (!(group instanceof h5wasm.Group)) {
        throw new KerasWeightsError(`${file}: no weights stored for layer '${layer.name}' (${groupPath})`);
      }
      const stored = stringListAttr(group, 'weight_names');
      if (stored.length !== expected.length) {
        throw new KerasWeightsError(
          `${file}: layer '${layer.name}' (${layer.className}) has ${stored.length} stored weights, expected ${expected.length} (${expected.join(', ')})`,
        );
      }
      // Keras 2 stores `layer.weights` order, which is what `expected` lists; match by the short
      // name when every one is there, so a file with an unusual order still loads right.
      const short = stored.map((name) => name.split('/').pop()?.replace(/:\d+$/, '') ?? name);
      const byName = expected.every((name) => short.includes(name));
      const ws = expected.map((name, i) => {
        const storedName = byName ? stored[short.indexOf(name)]! : stored[i]!;
        return {
          name: `${layer.name}/${name}`,
          ...readDataset(h5, `${groupPath}/${storedName}`, file, budget),
        };
      });
      checkKernel(layer, ws, file);
      return ws;
    });
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
    { maxTotalBytes: limits.maxBytes, maxRatio: limits.maxRatio, setting: KERAS_MAX_BYTES_SETTING },
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
    // Keras 3 does not key weights by layer name: it walks the model's layers in order and names
    // each group after the snake-cased class, numbered per name (dense, dense_1, ...).
    const used = new Map<string, number>();
    const weights = model.layers.map((layer) => {
      const base = snakeCase(layer.className);
      const n = used.get(base);
      used.set(base, n === undefined ? 0 : n + 1);
      const key = n === undefined ? base : `${base}_${n + 1}`;
      const expected = expectedWeights(layer);
      // Recurrent layers keep their variables in the cell they wrap.
      const varsPath = RECURRENT.has(layer.className) ? `layers/${key}/cell/vars` : `layers/${key}/vars`;
      const vars = h5.get(varsPath);
      const stored = vars instanceof h5wasm.Group ? vars.keys() : [];
      if (stored.length !== expected.length) {
        throw new KerasWeightsError(
          `${file}: layer '${layer.name}' (${layer.className}) has ${stored.length} stored weights at ${varsPath}, expected ${expected.length}${expected.length ? ` (${expected.join(', ')})` : ''}`,
        );
      }
      const ws = expected.map((name, i) => ({
        name: `${layer.name}/${name}`,
        ...readDataset(h5, `${varsPath}/${i}`, file, budget),
      }));
      // A wrong guess of Keras 3's group order would otherwise show only as wrong outputs.
      checkKernel(layer, ws, file);
      return ws;
    });
    return finish(model, weights.flat(), warnings, {
      kind: 'keras-v3',
      ...(kerasVersion ? { kerasVersion } : {}),
      ...(backend ? { backend } : {}),
      file,
    });
  });
}

// ---- config normalization --------------------------------------------------------------------

interface LayerInfo {
  name: string;
  className: string;
  config: JsonObject;
}

interface NormalizedModel {
  className: string;
  config: JsonObject;
  layers: LayerInfo[];
}

/** Layers without weights that TF.js runs exactly as Keras does. */
const NO_WEIGHTS = new Set([
  'InputLayer',
  'Activation',
  'Dropout',
  'SpatialDropout1D',
  'GaussianNoise',
  'GaussianDropout',
  'AlphaDropout',
  'Flatten',
  'Reshape',
  'Permute',
  'RepeatVector',
  'Masking',
  'ZeroPadding2D',
  'Cropping2D',
  'UpSampling2D',
  'MaxPooling1D',
  'MaxPooling2D',
  'AveragePooling1D',
  'AveragePooling2D',
  'GlobalAveragePooling1D',
  'GlobalAveragePooling2D',
  'GlobalMaxPooling1D',
  'GlobalMaxPooling2D',
  'Concatenate',
  'Add',
  'Multiply',
  'Average',
  'Maximum',
  'Minimum',
  'ReLU',
  'LeakyReLU',
  'ELU',
  'Softmax',
  'ThresholdedReLU',
]);

const RECURRENT = new Set(['SimpleRNN', 'LSTM', 'GRU']);

const bias = (c: JsonObject): string[] => (c.use_bias === false ? [] : ['bias']);

/** Weight names in Keras's (and TF.js's) order for the layers that have weights. */
const WITH_WEIGHTS: Record<string, (c: JsonObject) => string[]> = {
  Dense: (c) => ['kernel', ...bias(c)],
  Conv1D: (c) => ['kernel', ...bias(c)],
  Conv2D: (c) => ['kernel', ...bias(c)],
  Conv2DTranspose: (c) => ['kernel', ...bias(c)],
  DepthwiseConv2D: (c) => ['depthwise_kernel', ...bias(c)],
  SeparableConv2D: (c) => ['depthwise_kernel', 'pointwise_kernel', ...bias(c)],
  BatchNormalization: (c) => [
    ...(c.scale === false ? [] : ['gamma']),
    ...(c.center === false ? [] : ['beta']),
    'moving_mean',
    'moving_variance',
  ],
  LayerNormalization: (c) => [
    ...(c.scale === false ? [] : ['gamma']),
    ...(c.center === false ? [] : ['beta']),
  ],
  Embedding: () => ['embeddings'],
  SimpleRNN: (c) => ['kernel', 'recurrent_kernel', ...bias(c)],
  LSTM: (c) => ['kernel', 'recurrent_kernel', ...bias(c)],
  GRU: (c) => ['kernel', 'recurrent_kernel', ...bias(c)],
  PReLU: () => ['alpha'],
};

const SUPPORTED_LAYERS = [...NO_WEIGHTS, ...Object.keys(WITH_WEIGHTS)].sort();

/** Output width of the first weight (kernel or embeddings) that a layer's config implies. */
function kernelWidth(layer: LayerInfo): number | undefined {
  const c = layer.config;
  const num = (value: Json | undefined): number | undefined =>
    typeof value === 'number' ? value : undefined;
  const units = num(c.units);
  switch (layer.className) {
    case 'Dense':
    case 'SimpleRNN':
      return units;
    case 'LSTM':
      return units === undefined ? undefined : 4 * units;
    case 'GRU':
      return units === undefined ? undefined : 3 * units;
    case 'Conv1D':
    case 'Conv2D':
      return num(c.filters);
    case 'Embedding':
      return num(c.output_dim);
    default:
      return undefined;
  }
}

function checkKernel(layer: LayerInfo, weights: NamedWeight[], file: string): void {
  const want = kernelWidth(layer);
  const shape = weights[0]?.shape;
  if (want === undefined || !shape) return;
  if (shape[shape.length - 1] !== want) {
    throw new KerasWeightsError(
      `${file}: layer '${layer.name}' (${layer.className}) got a stored weight of shape [${shape.join(', ')}], which does not fit its config (last dimension ${want})`,
    );
  }
}

function expectedWeights(layer: LayerInfo): string[] {
  return WITH_WEIGHTS[layer.className]?.(layer.config) ?? [];
}

/** Activations TF.js implements with Keras's definition; Keras 3 spells swish `silu`. */
const ACTIVATIONS = new Set([
  'linear',
  'relu',
  'relu6',
  'elu',
  'selu',
  'sigmoid',
  'hard_sigmoid',
  'tanh',
  'softmax',
  'log_softmax',
  'softplus',
  'softsign',
  'swish',
  'mish',
  'gelu',
]);

const INITIALIZERS = new Set([
  'Zeros',
  'Ones',
  'Constant',
  'RandomUniform',
  'RandomNormal',
  'TruncatedNormal',
  'VarianceScaling',
  'GlorotUniform',
  'GlorotNormal',
  'HeNormal',
  'HeUniform',
  'LeCunNormal',
  'LeCunUniform',
  'Orthogonal',
]);

const CONSTRAINTS = new Set(['MaxNorm', 'UnitNorm', 'NonNeg', 'MinMaxNorm']);

interface Context {
  warnings: string[];
  /** Keras 3 redefined hard_sigmoid; TF.js keeps Keras 2's definition. */
  keras3: boolean;
}

function normalizeModel(raw: Json, warnings: string[], kerasVersion: string | undefined): NormalizedModel {
  const model = asObject(raw);
  const className = typeof model?.class_name === 'string' ? model.class_name : undefined;
  if (!model || !className) throw new KerasFormatError('the model config has no class_name');
  const ctx: Context = { warnings, keras3: Number.parseInt(kerasVersion ?? '2', 10) >= 3 };
  if (className === 'Sequential') return normalizeSequential(model, ctx);
  if (className === 'Functional' || className === 'Model') return normalizeFunctional(model, className, ctx);
  throw new UnsupportedKerasLayerError(
    stringField(asObject(model.config), 'name') ?? 'model',
    className,
    'only Sequential and Functional models have a config that TF.js can rebuild (subclassed models do not)',
  );
}

function normalizeSequential(model: JsonObject, ctx: Context): NormalizedModel {
  // Keras before 2.2.3 stored a Sequential config as the bare list of layers.
  const raw = Array.isArray(model.config)
    ? { name: 'sequential', layers: model.config }
    : asObject(model.config);
  if (!raw || !Array.isArray(raw.layers)) throw new KerasFormatError('the Sequential config has no layers');
  const layers = raw.layers.map((layer) => normalizeLayer(layer, ctx));
  const first = layers[0];
  if (first && first.className !== 'InputLayer' && first.config.batch_input_shape === undefined) {
    // Keras 3 may keep the input shape only in the model's build config.
    const shape =
      asObject(model.build_config)?.input_shape ??
      raw.build_input_shape ??
      asObject(raw.build_config)?.input_shape;
    if (!Array.isArray(shape)) {
      throw new KerasFormatError('the Sequential model has no input shape (it was saved before being built)');
    }
    first.config.batch_input_shape = shape;
  }
  const config: JsonObject = {
    name: stringField(raw, 'name') ?? 'sequential',
    layers: layers.map((l) => ({ class_name: l.className, config: l.config })),
  };
  return { className: 'Sequential', config, layers };
}

function normalizeFunctional(model: JsonObject, className: string, ctx: Context): NormalizedModel {
  const raw = asObject(model.config);
  if (!raw || !Array.isArray(raw.layers)) throw new KerasFormatError(`the ${className} config has no layers`);
  const entries: JsonObject[] = [];
  const layers = raw.layers.map((entry) => {
    const info = normalizeLayer(entry, ctx);
    const nodes = asObject(entry)?.inbound_nodes;
    entries.push({
      class_name: info.className,
      name: info.name,
      config: info.config,
      inbound_nodes: Array.isArray(nodes) ? nodes.map((node) => normalizeNode(node, info)) : [],
    });
    return info;
  });
  const config: JsonObject = {
    name: stringField(raw, 'name') ?? 'model',
    layers: entries,
    input_layers: tensorRefs(raw.input_layers),
    output_layers: tensorRefs(raw.output_layers),
  };
  return { className, config, layers };
}

/** Keras 3 writes one model input or output as a bare `[name, node, index]`; TF.js wants a list of them. */
function tensorRefs(value: Json | undefined): Json {
  if (Array.isArray(value) && typeof value[0] === 'string') return [value];
  if (asObject(value))
    throw new KerasFormatError('models with named (dict) inputs or outputs are not supported');
  return value ?? [];
}

/**
 * Keras 3 records a call as `{args, kwargs}` holding serialized tensors; TF.js reads Keras 2's
 * `[[layer, node, index, kwargs], ...]`.
 */
function normalizeNode(node: Json, layer: LayerInfo): Json {
  if (Array.isArray(node)) return node;
  const call = asObject(node);
  if (!call) throw new KerasFormatError(`layer '${layer.name}' has an unreadable inbound node`);
  const refs: Json[] = [];
  const collect = (value: Json | undefined): void => {
    if (Array.isArray(value)) value.forEach(collect);
    const obj = asObject(value);
    if (obj?.class_name === '__keras_tensor__') {
      const history = asObject(obj.config)?.keras_history;
      if (!Array.isArray(history) || history.length !== 3) {
        throw new KerasFormatError(`layer '${layer.name}' has an input tensor without keras_history`);
      }
      refs.push(history);
    }
  };
  collect(call.args);
  const kwargs = asObject(call.kwargs) ?? {};
  const kwargRefs: Json[] = [];
  for (const value of Object.values(kwargs)) {
    const before = refs.length;
    collect(value);
    kwargRefs.push(...refs.splice(before));
  }
  if (kwargRefs.length > 0) {
    throw new UnsupportedKerasLayerError(
      layer.name,
      layer.className,
      'it is called with tensors as keyword arguments',
    );
  }
  if (refs.length === 0) throw new KerasFormatError(`layer '${layer.name}' is called without input tensors`);
  // Plain keyword arguments (e.g. training flags) ride along on every input, as Keras 2 wrote them.
  return refs.map((ref) => [...(ref as Json[]), kwargs]);
}

function normalizeLayer(raw: Json, ctx: Context): LayerInfo {
  const layer = asObject(raw);
  const className = stringField(layer, 'class_name');
  const config = asObject(layer?.config);
  if (!layer || !className || !config)
    throw new KerasFormatError('a layer in the model config has no class_name or config');
  const name = stringField(config, 'name') ?? stringField(layer, 'name') ?? className;
  if (className === 'Sequential' || className === 'Functional' || className === 'Model') {
    throw new UnsupportedKerasLayerError(
      name,
      className,
      'nested models are not supported; flatten the model before saving',
    );
  }
  if (!NO_WEIGHTS.has(className) && !(className in WITH_WEIGHTS)) {
    const registered = stringField(layer, 'registered_name');
    const module = stringField(layer, 'module');
    const custom = (registered && registered !== className) || (module && !module.startsWith('keras'));
    const reason = custom
      ? `it is a custom object (${registered ?? module}), which TF.js cannot rebuild`
      : className === 'Lambda' || className === 'TFOpLambda'
        ? 'it wraps Python code, which TF.js cannot run'
        : `the importer supports ${SUPPORTED_LAYERS.join(', ')}`;
    throw new UnsupportedKerasLayerError(name, className, reason);
  }
  const out: JsonObject = { name };
  for (const [key, value] of Object.entries(config)) {
    if (key === 'name') continue;
    const normalized = normalizeField(key, value, name, className, ctx);
    if (normalized !== undefined) out[renameField(key, className)] = normalized;
  }
  checkLayerOptions(name, className, out);
  return { name, className, config: out };
}

/** Keras 3 renamed a few fields that TF.js reads by their Keras 2 names. */
function renameField(key: string, className: string): string {
  if (key === 'batch_shape') return 'batch_input_shape';
  if (key === 'negative_slope' && className === 'LeakyReLU') return 'alpha';
  return key;
}

/** Returns the TF.js form of one layer config field, or undefined to leave it out. */
function normalizeField(
  key: string,
  value: Json,
  layer: string,
  className: string,
  ctx: Context,
): Json | undefined {
  if (key === 'dtype') return normalizeDtype(value, layer, ctx);
  if (key === 'activation' || key === 'recurrent_activation')
    return normalizeActivation(value, layer, className, ctx);
  if (value === null) return null;
  if (key.endsWith('_initializer')) return normalizeInitializer(value);
  if (key.endsWith('_regularizer')) return normalizeRegularizer(value, `${layer}.${key}`, ctx);
  if (key.endsWith('_constraint')) return normalizeConstraint(value, `${layer}.${key}`, ctx);
  return value;
}

function checkLayerOptions(name: string, className: string, config: JsonObject): void {
  if (className === 'GRU' && config.reset_after === true) {
    throw new UnsupportedKerasLayerError(
      name,
      className,
      'reset_after=True (the Keras default since TF 2) is not implemented by TF.js; retrain with reset_after=False',
    );
  }
  if (className === 'ReLU' && ((config.negative_slope ?? 0) !== 0 || (config.threshold ?? 0) !== 0)) {
    throw new UnsupportedKerasLayerError(
      name,
      className,
      'negative_slope and threshold are not implemented by TF.js',
    );
  }
  // tf.keras 2 writes BatchNormalization's axis as a one-element list; TF.js reads a number.
  if (className === 'BatchNormalization' && Array.isArray(config.axis) && config.axis.length === 1) {
    config.axis = config.axis[0] ?? -1;
  }
}

function normalizeDtype(value: Json, layer: string, ctx: Context): Json {
  // Keras 3 writes a DTypePolicy object; mixed policies still keep float32 variables.
  const policy = typeof value === 'string' ? value : stringField(asObject(asObject(value)?.config), 'name');
  if (policy === undefined || policy === 'float32') return 'float32';
  if (policy === 'int32' || policy === 'bool') return policy;
  const note = `layer '${layer}' dtype policy ${policy} served as float32`;
  if (!ctx.warnings.includes(note)) ctx.warnings.push(note);
  return 'float32';
}

function normalizeActivation(value: Json, layer: string, className: string, ctx: Context): Json {
  if (value === null) return 'linear';
  // Keras 3 may serialize a built-in activation as an object around its name.
  const obj = asObject(value);
  const raw =
    typeof value === 'string'
      ? value
      : typeof obj?.config === 'string'
        ? obj.config
        : stringField(obj, 'class_name');
  const name = raw === 'silu' ? 'swish' : raw;
  if (!name || !ACTIVATIONS.has(name)) {
    throw new UnsupportedKerasLayerError(
      layer,
      className,
      `activation ${JSON.stringify(raw ?? value)} is not available in TF.js`,
    );
  }
  if (name === 'hard_sigmoid' && ctx.keras3) {
    throw new UnsupportedKerasLayerError(
      layer,
      className,
      "Keras 3's hard_sigmoid is relu6(x + 3) / 6, TF.js's is Keras 2's clip(0.2x + 0.5): outputs would differ",
    );
  }
  return name;
}

function normalizeInitializer(value: Json): Json {
  const obj = asObject(value);
  if (!obj) return value;
  const cls = stringField(obj, 'class_name');
  const mapped = cls === 'OrthogonalInitializer' ? 'Orthogonal' : cls;
  // Initializers never run for a served model (every weight is loaded), so one TF.js does not
  // know is replaced rather than failing the import.
  if (!mapped || !INITIALIZERS.has(mapped)) return { class_name: 'Zeros', config: {} };
  return { class_name: mapped, config: stripKerasMeta(asObject(obj.config) ?? {}) };
}

function normalizeRegularizer(value: Json, where: string, ctx: Context): Json {
  const obj = asObject(value);
  const cls = stringField(obj, 'class_name');
  const config = asObject(obj?.config) ?? {};
  const num = (k: string): number => (typeof config[k] === 'number' ? config[k] : 0);
  // TF.js knows only L1L2; Keras 3 writes L1 and L2 separately.
  if (cls === 'L1L2' || cls === 'L1' || cls === 'L2') {
    return { class_name: 'L1L2', config: { l1: num('l1'), l2: num('l2') } };
  }
  ctx.warnings.push(
    `regularizer ${cls ?? JSON.stringify(value)} on ${where} dropped: it only matters for training`,
  );
  return null;
}

function normalizeConstraint(value: Json, where: string, ctx: Context): Json {
  const obj = asObject(value);
  const cls = stringField(obj, 'class_name');
  if (cls && CONSTRAINTS.has(cls))
    return { class_name: cls, config: stripKerasMeta(asObject(obj?.config) ?? {}) };
  ctx.warnings.push(
    `constraint ${cls ?? JSON.stringify(value)} on ${where} dropped: it only matters for training`,
  );
  return null;
}

function stripKerasMeta(config: JsonObject): JsonObject {
  const out: JsonObject = {};
  for (const [key, value] of Object.entries(config)) {
    if (key !== 'module' && key !== 'registered_name' && key !== 'shared_object_id') out[key] = value;
  }
  return out;
}

// ---- artifacts -------------------------------------------------------------------------------

interface NamedWeight {
  name: string;
  shape: number[];
  data: Float32Array;
}

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

// ---- HDF5 ------------------------------------------------------------------------------------

/**
 * h5wasm's Node build maps its file system straight onto the real one (NODERAWFS), so there is no
 * in-memory FS to write into: the bytes go to a private temporary file that is removed afterwards.
 * A file HDF5 cannot read is a KerasFormatError naming `what` and HDF5's reason; h5wasm's own
 * errors ("name not defined!") say neither.
 */
async function withHdf5<T>(bytes: Uint8Array, what: string, read: (file: H5File) => T): Promise<T> {
  const truncated = truncation(bytes);
  if (truncated)
    throw new KerasFormatError(`${what} is not a readable HDF5 file (truncated or damaged): ${truncated}`);
  await h5wasm.ready;
  const dir = await mkdtemp(join(tmpdir(), 'aiaas-keras-'));
  try {
    const path = join(dir, 'model.h5');
    await writeFile(path, bytes);
    const damaged = (detail: string, cause?: unknown) =>
      new KerasFormatError(`${what} is not a readable HDF5 file (truncated or damaged): ${detail}`, {
        cause,
      });
    const opened = hdf5Call(() => new h5wasm.File(path, 'r'));
    const file = opened.value;
    // h5wasm does not throw when HDF5 fails to open a file: it hands back a negative id.
    if (!file || opened.error || !(file.file_id >= 0)) {
      throw damaged(
        opened.diagnostics || (opened.error as Error | undefined)?.message || 'HDF5 cannot open it',
        opened.error,
      );
    }
    try {
      const result = hdf5Call(() => read(file));
      if (result.error === undefined) return result.value as T;
      if (result.error instanceof ValidationError) throw result.error;
      // h5wasm throws plain Errors (and Emscripten RuntimeErrors) when HDF5 fails; anything else
      // is a config this converter did not expect, not a damaged file.
      const error = result.error as Error;
      if (result.diagnostics || error?.constructor === Error || error?.name === 'RuntimeError') {
        throw damaged(result.diagnostics || error?.message, error);
      }
      throw new KerasFormatError(`${what} could not be converted: ${error?.message ?? String(error)}`, {
        cause: error,
      });
    } finally {
      hdf5Call(() => file.close());
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Runs a synchronous h5wasm call with what HDF5 prints captured instead of written to stderr (the
 * CLI's errors are one line): its error stack, which it writes with fs.writeSync(2), and
 * Emscripten's "Aborted(...)" line, which goes through console.error. No other JavaScript runs
 * during a synchronous call, so only those lines are taken.
 */
function hdf5Call<T>(call: () => T): { value?: T; error?: unknown; diagnostics: string } {
  const lines: string[] = [];
  const text = (buffer: unknown, offset?: unknown, length?: unknown): string => {
    if (typeof buffer === 'string') return buffer;
    const bytes = buffer as Uint8Array;
    const start = typeof offset === 'number' ? offset : 0;
    const end = typeof length === 'number' ? start + length : bytes.byteLength;
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8', start, end);
  };
  const writeSync = fs.writeSync;
  const stderrWrite = process.stderr.write;
  fs.writeSync = ((fd: number, buffer: unknown, ...rest: unknown[]) => {
    if (fd !== 2) return (writeSync as (...args: unknown[]) => number)(fd, buffer, ...rest);
    const written = text(buffer, rest[0], rest[1]);
    lines.push(written);
    if (typeof buffer === 'string') return Buffer.byteLength(written);
    const offset = typeof rest[0] === 'number' ? rest[0] : 0;
    return typeof rest[1] === 'number' ? rest[1] : (buffer as Uint8Array).byteLength - offset;
  }) as typeof fs.writeSync;
  process.stderr.write = ((chunk: unknown) => {
    lines.push(text(chunk));
    return true;
  }) as typeof process.stderr.write;
  try {
    return { value: call(), diagnostics: summarize(lines.join('')) };
  } catch (error) {
    return { error, diagnostics: summarize(lines.join('')) };
  } finally {
    fs.writeSync = writeSync;
    process.stderr.write = stderrWrite;
  }
}

/** HDF5's error stack, as the distinct "minor" reasons it lists (e.g. "file has been truncated"). */
function summarize(stack: string): string {
  const reasons = [...stack.matchAll(/minor: (.+)/g)].map((m) => m[1]!.trim().toLowerCase());
  return [...new Set(reasons)].slice(0, 4).join('; ');
}

/**
 * Why an HDF5 file is cut short, from its superblock's end-of-file address, or undefined when it
 * is not (or the superblock does not say). Checked before HDF5 opens it, which would print a page
 * of errors and leave h5wasm with nothing to say.
 */
function truncation(bytes: Uint8Array): string | undefined {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < 9) return `${bytes.length} bytes is shorter than an HDF5 superblock`;
  const version = bytes[8]!;
  let sizeAt: number;
  let eofAt: (offsets: number) => number;
  if (version === 0 || version === 1) {
    sizeAt = 13;
    eofAt = (o) => (version === 0 ? 24 : 28) + 2 * o;
  } else if (version === 2 || version === 3) {
    sizeAt = 9;
    eofAt = (o) => 12 + 2 * o;
  } else {
    return undefined;
  }
  if (bytes.length <= sizeAt) return `${bytes.length} bytes is shorter than an HDF5 superblock`;
  const offsets = bytes[sizeAt]!;
  if (offsets !== 8 && offsets !== 4) return undefined;
  const at = eofAt(offsets);
  if (at + offsets > bytes.length) return `${bytes.length} bytes is shorter than its HDF5 superblock`;
  const base =
    offsets === 8
      ? view.getBigUint64(at - 2 * offsets, true)
      : BigInt(view.getUint32(at - 2 * offsets, true));
  const eof = offsets === 8 ? view.getBigUint64(at, true) : BigInt(view.getUint32(at, true));
  const undefinedAddress = offsets === 8 ? 0xffffffffffffffffn : 0xffffffffn;
  if (eof === undefinedAddress || base === undefinedAddress) return undefined;
  const end = base + eof;
  if (end > BigInt(bytes.length)) return `the file is ${bytes.length} bytes, its HDF5 superblock says ${end}`;
  return undefined;
}

function readDataset(
  h5: H5File,
  path: string,
  what: string,
  budget: Budget,
): { shape: number[]; data: Float32Array } {
  const dataset = h5.get(path);
  if (!(dataset instanceof h5wasm.Dataset)) throw new KerasWeightsError(`${what}: weight ${path} is missing`);
  const shape = dataset.shape ?? [];
  // A compressed dataset inflates to its declared size when read: check that before reading it.
  const declared = shape.reduce((n, d) => n * d, 1) * Math.max(4, dataset.metadata.size ?? 0);
  if (declared > budget.left) {
    throw new KerasWeightsError(
      `${what}: weight ${path} declares shape [${shape.join(', ')}], which takes the weights over the ${budget.limit} bytes limit (${KERAS_MAX_BYTES_SETTING})`,
    );
  }
  budget.left -= declared;
  const value = dataset.value;
  if (value instanceof Float32Array) return { shape, data: value };
  // TF.js layers run float32; float64 weights lose nothing that float32 inference would keep.
  if (value instanceof Float64Array) return { shape, data: Float32Array.from(value) };
  if (typeof value === 'number') return { shape, data: Float32Array.of(value) };
  throw new KerasWeightsError(
    `${what}: weight ${path} has dtype ${JSON.stringify(dataset.dtype)}; only float32 and float64 are read`,
  );
}

function stringAttr(node: H5Group, name: string): string | undefined {
  if (!(name in node.attrs)) return undefined;
  const value = node.get_attribute(name, false);
  if (typeof value === 'string') return value;
  if (value instanceof Uint8Array) return new TextDecoder().decode(value);
  return undefined;
}

/** Keras splits a long list attribute into `name0`, `name1`, ... when it exceeds HDF5's 64 KiB limit. */
function stringListAttr(node: H5Group, name: string): string[] {
  const attrs = node.attrs;
  const parts: unknown[] = [];
  if (name in attrs) parts.push(node.get_attribute(name, true));
  else for (let i = 0; `${name}${i}` in attrs; i++) parts.push(node.get_attribute(`${name}${i}`, true));
  return parts.flatMap((part) => (Array.isArray(part) ? part : [part])).map(String);
}

// ---- small helpers ---------------------------------------------------------------------------

function startsWith(bytes: Uint8Array, magic: number[]): boolean {
  return bytes.length >= magic.length && magic.every((b, i) => bytes[i] === b);
}

function parseJson(text: string, what: string): Json {
  try {
    return JSON.parse(text) as Json;
  } catch (error) {
    throw new KerasFormatError(`${what} is not valid JSON`, { cause: error });
  }
}

function asObject(value: Json | undefined): JsonObject | undefined {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? value : undefined;
}

function stringField(obj: JsonObject | undefined, key: string): string | undefined {
  const value = obj?.[key];
  return typeof value === 'string' ? value : undefined;
}

/** Keras 3's `naming.to_snake_case`, which names the weight groups in model.weights.h5. */
function snakeCase(name: string): string {
  return name
    .replace(/\W+/g, '')
    .replace(/(.)([A-Z][a-z]+)/g, '$1_$2')
    .replace(/([a-z])([A-Z])/g, '$1_$2')
    .toLowerCase();
}
