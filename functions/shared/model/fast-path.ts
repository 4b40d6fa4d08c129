/**
 * The fast path: small dense networks (the MLPs most tabular models are) evaluated directly on
 * Float32Arrays, without tfjs. This module compiles a model.json and its shards into a plan of
 * steps, or says why it cannot; fast-model.ts evaluates the plan, fast-path-weights.ts reads the
 * weights.
 *
 * Why: for a model of a few hundred weights, tfjs's per-call engine overhead (tensor bookkeeping,
 * kernel dispatch, the layers executor) dwarfs the arithmetic, and importing and starting tfjs is
 * most of a cold start (docs/benchmarks.md, "Last measured": the batch rows and coldStart.tfjsRatio).
 * A model that compiles here needs neither. Anything else — another layer kind, a branch, quantized
 * weights, more than `FAST_PATH_MAX_PARAMETERS` weights, where tfjs's SIMD kernels win — runs on
 * tfjs as before, and `reason` says why.
 *
 * Semantics follow tfjs-layers (what the same model computes on the tfjs runtimes): weights are
 * matched to layers by the same names, activations use tfjs's definitions, and sums are carried in
 * double precision and stored as float32 (within float32 rounding of every tfjs backend; the
 * tests compare against tfjs's cpu and wasm backends).
 */
import type { Signature } from '../registry/types.js';
import {
  activation,
  batchNorm,
  dense,
  elementwise,
  FastModel,
  map,
  type Step,
  softmax,
} from './fast-model.js';
import {
  countWeights,
  type ModelJsonLike,
  readWeights,
  Unsupported,
  type Weights,
} from './fast-path-weights.js';

/** Above this many weights tfjs's vectorised kernels are faster than a plain loop, even at one row. */
export const FAST_PATH_MAX_PARAMETERS = 65_536;

/** Compiles what it can; `reason` names the first thing that keeps a model on tfjs. */
export type FastPathResult = { readonly model: FastModel } | { readonly reason: string };

interface LayerJson {
  readonly class_name: string;
  readonly config: Record<string, unknown>;
  readonly name?: string;
  readonly inbound_nodes?: unknown;
}

const IDENTITY_LAYERS = new Set(['Dropout', 'GaussianNoise', 'GaussianDropout', 'AlphaDropout']);

/**
 * Decides from model.json alone (no weights needed), so a caller can start tfjs early for the
 * models that will need it. Undefined when the model may take the fast path.
 */
export function fastPathReason(
  modelJson: unknown,
  maxParameters = FAST_PATH_MAX_PARAMETERS,
): string | undefined {
  try {
    chainOf(modelJson as ModelJsonLike);
    countWeights(modelJson as ModelJsonLike, maxParameters);
    return undefined;
  } catch (error) {
    if (error instanceof Unsupported) return error.message;
    throw error;
  }
}

/**
 * Compiles model.json plus its weight shards (by file name, as the registry stores them) into a
 * FastModel, or says why it cannot.
 */
export function compileFastPath(
  modelJson: unknown,
  shards: ReadonlyMap<string, Uint8Array>,
  signature: Signature,
  maxParameters = FAST_PATH_MAX_PARAMETERS,
): FastPathResult {
  try {
    const json = modelJson as ModelJsonLike;
    const { layers, inputWidth, outputRank } = chainOf(json);
    if (signature.inputs.length !== 1 || signature.outputs.length !== 1)
      throw new Unsupported('the fast path serves one input and one output');
    const input = signature.inputs[0]!;
    if (input.dtype !== 'float32') throw new Unsupported('the input is not float32');
    // Requests are checked against the signature: it must describe exactly what the layers take.
    const declared = input.shape.slice(1);
    if (declared.some((d) => d === null) || declared.reduce<number>((a, b) => a * (b ?? 0), 1) !== inputWidth)
      throw new Unsupported(
        `the input shape [${input.shape.map((d) => d ?? 'null').join(', ')}] does not match the layers`,
      );
    const weights = readWeights(json, shards, maxParameters);
    const steps: Step[] = [];
    let width = inputWidth;
    for (const layer of layers) {
      const step = compileLayer(layer, width, weights);
      if (step) {
        steps.push(step);
        width = step.out;
      }
    }
    const output = signature.outputs[0]!;
    if (
      output.shape.length !== outputRank ||
      (outputRank === 2 && output.shape[1] !== null && output.shape[1] !== width) ||
      (outputRank === 1 && width !== 1)
    )
      throw new Unsupported(
        `the output shape [${output.shape.map((d) => d ?? 'null').join(', ')}] does not match the layers`,
      );
    if (weights.unused().length > 0)
      throw new Unsupported(`weights with no layer: ${weights.unused().slice(0, 3).join(', ')}`);
    return { model: new FastModel(signature, weights.parameters, inputWidth, steps, outputRank === 1) };
  } catch (error) {
    if (error instanceof Unsupported) return { reason: error.message };
    throw error;
  }
}

/**
 * The layers from input to output, when the network is one unbranched chain whose every step but
 * Flatten and Reshape (which only move values) works on rows; with the rank of its output.
 */
function chainOf(json: ModelJsonLike): { layers: LayerJson[]; inputWidth: number; outputRank: number } {
  let topology = json?.modelTopology as Record<string, unknown> | undefined;
  if (topology && typeof topology.model_config === 'object')
    topology = topology.model_config as Record<string, unknown>;
  if (!topology || typeof topology.class_name !== 'string') throw new Unsupported('no layers topology');
  const className = topology.class_name;
  const config = topology.config as Record<string, unknown> | unknown[] | undefined;
  let layers: LayerJson[];
  if (className === 'Sequential') {
    const list = Array.isArray(config) ? config : (config as Record<string, unknown>)?.layers;
    if (!Array.isArray(list) || list.length === 0) throw new Unsupported('a Sequential model without layers');
    layers = list as LayerJson[];
  } else if (className === 'Model' || className === 'Functional') {
    layers = functionalChain(config as Record<string, unknown>);
  } else {
    throw new Unsupported(`model class ${className}`);
  }
  const first = layers[0]!;
  const batchShape = (first.config.batch_input_shape ?? first.config.batch_shape) as unknown;
  if (!Array.isArray(batchShape)) throw new Unsupported('the input shape is not declared');
  const dims = batchShape.slice(1);
  // An input of rank 1 ([-1]) is one number per instance: rows of width 1.
  if (dims.some((d) => typeof d !== 'number' || !Number.isInteger(d) || d <= 0))
    throw new Unsupported(`input shape [${batchShape.join(', ')}] is not fixed`);
  const dtype = first.config.dtype;
  if (dtype !== undefined && dtype !== null && dtype !== 'float32')
    throw new Unsupported(`input dtype ${String(dtype)}`);
  const body = first.class_name === 'InputLayer' ? layers.slice(1) : layers;
  // The shape of each step's input after the batch dimension: only Flatten and Reshape may meet a
  // rank other than 2, as every other step works on rows.
  let inner = dims as number[];
  for (const [k, layer] of body.entries()) {
    const moves = layer.class_name === 'Flatten' || layer.class_name === 'Reshape';
    if (!moves && !IDENTITY_LAYERS.has(layer.class_name) && inner.length !== 1) {
      throw new Unsupported(
        k === 0
          ? `input of rank ${inner.length + 1}`
          : `layer ${layer.class_name} on a tensor of rank ${inner.length + 1}`,
      );
    }
    checkLayer(layer);
    if (layer.class_name === 'Flatten') inner = [inner.reduce((a, b) => a * b, 1)];
    else if (layer.class_name === 'Reshape') inner = reshaped(inner, layer.config.target_shape);
    else if (layer.class_name === 'Dense') inner = [layer.config.units as number];
  }
  if (inner.length > 1) throw new Unsupported(`output of rank ${inner.length + 1}`);
  return {
    layers: body,
    inputWidth: (dims as number[]).reduce((a, b) => a * b, 1),
    outputRank: inner.length + 1,
  };
}

/** A Reshape's output shape after the batch dimension, its one -1 resolved. */
function reshaped(inner: readonly number[], target: unknown): number[] {
  const size = inner.reduce((a, b) => a * b, 1);
  if (!Array.isArray(target) || target.some((d) => typeof d !== 'number' || !Number.isInteger(d)))
    throw new Unsupported('a Reshape without a target shape');
  const known = (target as number[]).filter((d) => d !== -1).reduce((a, b) => a * b, 1);
  const free = target.filter((d) => d === -1).length;
  if (free > 1 || known <= 0 || (free === 0 ? known !== size : size % known !== 0))
    throw new Unsupported(`a Reshape of [${inner.join(', ')}] to [${target.join(', ')}]`);
  return (target as number[]).map((d) => (d === -1 ? size / known : d));
}

function functionalChain(config: Record<string, unknown> | undefined): LayerJson[] {
  const layers = config?.layers as LayerJson[] | undefined;
  const inputs = config?.input_layers as unknown[][] | undefined;
  const outputs = config?.output_layers as unknown[][] | undefined;
  if (!Array.isArray(layers) || !Array.isArray(inputs) || !Array.isArray(outputs))
    throw new Unsupported('a functional model without layers');
  if (inputs.length !== 1 || outputs.length !== 1) throw new Unsupported('several inputs or outputs');
  const byName = new Map(layers.map((l) => [l.name ?? (l.config.name as string), l]));
  const chain: LayerJson[] = [];
  let name = outputs[0]?.[0] as string | undefined;
  const start = inputs[0]?.[0] as string | undefined;
  while (name !== undefined) {
    const layer = byName.get(name);
    if (!layer) throw new Unsupported(`layer ${name} is referenced but not defined`);
    chain.unshift(layer);
    if (name === start) break;
    const nodes = layer.inbound_nodes;
    // One call of the layer on exactly one tensor: [[[inbound, nodeIndex, tensorIndex, kwargs]]].
    if (!Array.isArray(nodes) || nodes.length !== 1 || !Array.isArray(nodes[0]) || nodes[0].length !== 1)
      throw new Unsupported(`layer ${name} is not part of a single chain`);
    const inbound = nodes[0][0] as unknown[];
    if (!Array.isArray(inbound) || inbound[1] !== 0 || inbound[2] !== 0)
      throw new Unsupported(`layer ${name} is not part of a single chain`);
    const kwargs = inbound[3] as Record<string, unknown> | undefined;
    if (kwargs && Object.keys(kwargs).length > 0)
      throw new Unsupported(`layer ${name} is called with arguments`);
    name = inbound[0] as string;
  }
  if (chain.length !== layers.length || chain[0]?.class_name !== 'InputLayer')
    throw new Unsupported('the layers are not one chain from the input to the output');
  return chain;
}

const ACTIVATIONS = new Set([
  'linear',
  'relu',
  'relu6',
  'elu',
  'selu',
  'sigmoid',
  'hard_sigmoid',
  'hardSigmoid',
  'tanh',
  'softmax',
  'softplus',
  'softsign',
  'swish',
]);

function checkLayer(layer: LayerJson): void {
  const c = layer.config ?? {};
  switch (layer.class_name) {
    case 'Dense':
    case 'Activation': {
      const activation = (c.activation ?? 'linear') as string;
      if (!ACTIVATIONS.has(activation)) throw new Unsupported(`activation ${activation}`);
      if (layer.class_name === 'Dense' && typeof c.units !== 'number')
        throw new Unsupported('Dense without units');
      return;
    }
    case 'Flatten':
      if (c.data_format === 'channels_first') throw new Unsupported('Flatten with channels_first');
      return;
    case 'Reshape':
      return;
    case 'ReLU':
      if ((c.negative_slope ?? 0) !== 0 || (c.threshold ?? 0) !== 0)
        throw new Unsupported('ReLU with a negative slope or threshold');
      return;
    case 'LeakyReLU':
    case 'ELU':
      return;
    case 'Softmax':
      if (c.axis !== undefined && c.axis !== -1 && c.axis !== 1)
        throw new Unsupported('Softmax over another axis');
      return;
    case 'BatchNormalization': {
      const axis = Array.isArray(c.axis) ? c.axis : [c.axis ?? -1];
      if (axis.length !== 1 || (axis[0] !== -1 && axis[0] !== 1))
        throw new Unsupported('BatchNormalization over another axis');
      return;
    }
    default:
      if (IDENTITY_LAYERS.has(layer.class_name)) return;
      throw new Unsupported(`layer ${layer.class_name}`);
  }
}

function compileLayer(layer: LayerJson, width: number, weights: Weights): Step | undefined {
  const c = layer.config;
  const name = (c.name ?? layer.name) as string;
  switch (layer.class_name) {
    case 'Dense': {
      const units = c.units as number;
      const kernel = weights.take(name, 'kernel', [width, units]);
      const bias = c.use_bias === false ? undefined : weights.take(name, 'bias', [units]);
      return dense(width, units, kernel, bias, activation((c.activation ?? 'linear') as string));
    }
    case 'Activation':
      return elementwise(width, activation((c.activation ?? 'linear') as string));
    case 'ReLU': {
      const max = typeof c.max_value === 'number' ? c.max_value : Number.POSITIVE_INFINITY;
      return elementwise(
        width,
        map((v) => Math.min(Math.max(v, 0), max)),
      );
    }
    case 'LeakyReLU': {
      const alpha = (c.alpha ?? c.negative_slope ?? 0.3) as number;
      return elementwise(
        width,
        map((v) => (v < 0 ? alpha * v : v)),
      );
    }
    case 'ELU': {
      const alpha = (c.alpha ?? 1) as number;
      return elementwise(
        width,
        map((v) => (v > 0 ? v : alpha * Math.expm1(v))),
      );
    }
    case 'Softmax':
      return elementwise(width, softmax);
    case 'BatchNormalization':
      return batchNorm(name, width, c, weights);
    default:
      return undefined; // Flatten, Reshape and inference-time identities
  }
}
