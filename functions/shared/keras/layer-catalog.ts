/**
 * What the importer knows about Keras layers: which classes TF.js runs as Keras does, which
 * weights each one stores (in Keras's and TF.js's order), and the activations, initializers and
 * constraints TF.js shares with Keras. Anything not listed here is refused by config.ts.
 */
import type { Json, JsonObject } from './json.js';

export interface LayerInfo {
  name: string;
  className: string;
  config: JsonObject;
}

export interface NormalizedModel {
  className: string;
  config: JsonObject;
  layers: LayerInfo[];
}

/** Layers without weights that TF.js runs exactly as Keras does. */
export const NO_WEIGHTS = new Set([
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

export const RECURRENT = new Set(['SimpleRNN', 'LSTM', 'GRU']);

const bias = (c: JsonObject): string[] => (c.use_bias === false ? [] : ['bias']);

/** Weight names in Keras's (and TF.js's) order for the layers that have weights. */
export const WITH_WEIGHTS: Record<string, (c: JsonObject) => string[]> = {
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

export const SUPPORTED_LAYERS = [...NO_WEIGHTS, ...Object.keys(WITH_WEIGHTS)].sort();

/** Output width of the first weight (kernel or embeddings) that a layer's config implies. */
export function kernelWidth(layer: LayerInfo): number | undefined {
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

export function expectedWeights(layer: LayerInfo): string[] {
  return WITH_WEIGHTS[layer.className]?.(layer.config) ?? [];
}

/** Activations TF.js implements with Keras's definition; Keras 3 spells swish `silu`. */
export const ACTIVATIONS = new Set([
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

export const INITIALIZERS = new Set([
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

export const CONSTRAINTS = new Set(['MaxNorm', 'UnitNorm', 'NonNeg', 'MinMaxNorm']);
