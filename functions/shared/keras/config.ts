/**
 * Maps a Keras 2 or Keras 3 model config to the tfjs-layers config TF.js rebuilds a model from:
 * Sequential and Functional models only, every layer checked against layer-catalog.ts, Keras 3's
 * renamed fields and call records rewritten in Keras 2's form. Options that only matter for training
 * are dropped with a warning; anything that would change outputs is refused naming the layer.
 */
import { KerasFormatError, UnsupportedKerasLayerError } from './errors.js';
import { asObject, type Json, type JsonObject, stringField } from './json.js';
import {
  ACTIVATIONS,
  CONSTRAINTS,
  INITIALIZERS,
  type LayerInfo,
  NO_WEIGHTS,
  type NormalizedModel,
  SUPPORTED_LAYERS,
  WITH_WEIGHTS,
} from './layer-catalog.js';

interface Context {
  warnings: string[];
  /** Keras 3 redefined hard_sigmoid; TF.js keeps Keras 2's definition. */
  keras3: boolean;
}

export function normalizeModel(
  raw: Json,
  warnings: string[],
  kerasVersion: string | undefined,
): NormalizedModel {
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
