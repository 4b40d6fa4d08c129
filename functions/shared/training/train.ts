import type { Tensor, Tensor2D } from '@tensorflow/tfjs-core';
import type { LayersModel, SymbolicTensor } from '@tensorflow/tfjs-layers';
import { ConfigurationError } from '../errors.js';
import type { ModelDefinition } from '../manifest.js';
import type { TfRuntime } from '../runtime/types.js';
import type { Examples } from './dataset.js';
import { createRng } from './random.js';

/** Per-feature mean and standard deviation, measured on the training split. */
export interface Standardization {
  readonly mean: readonly number[];
  readonly std: readonly number[];
}

/** Progress after one epoch; `epoch` counts from 1. Logs carry Keras metric names. */
export interface EpochProgress {
  readonly epoch: number;
  readonly epochs: number;
  readonly logs: Readonly<Record<string, number>>;
}

/** Name of the input of every trained model, and of its frozen standardization layer. */
export const INPUT_NAME = 'features';
export const STANDARDIZE_LAYER = 'standardize';

/**
 * Keras's metric name for a tfjs one: tfjs logs `acc`/`val_acc` for 'accuracy' and camelCase
 * names for the rest, where Keras (and everyone reading the registry) says `accuracy`,
 * `val_accuracy`, `binary_crossentropy`.
 */
export function kerasMetricName(name: string): string {
  const prefix = name.startsWith('val_') ? 'val_' : '';
  const base = name.slice(prefix.length);
  if (base === 'acc') return `${prefix}accuracy`;
  return `${prefix}${base.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toLowerCase()}`;
}

/** Mean and (population) standard deviation of each feature; constant features get std 1. */
export function standardizationOf(data: Examples): Standardization {
  const { x, rows, features } = data;
  const mean = new Array<number>(features).fill(0);
  const sq = new Array<number>(features).fill(0);
  for (let r = 0; r < rows; r++) {
    for (let f = 0; f < features; f++) mean[f]! += x[r * features + f]!;
  }
  for (let f = 0; f < features; f++) mean[f] = rows > 0 ? mean[f]! / rows : 0;
  for (let r = 0; r < rows; r++) {
    for (let f = 0; f < features; f++) {
      const d = x[r * features + f]! - mean[f]!;
      sq[f]! += d * d;
    }
  }
  // A constant column would divide by zero; std 1 passes it through as (x - mean) = 0.
  const std = sq.map((s) => {
    const v = rows > 0 ? Math.sqrt(s / rows) : 1;
    return v > 1e-8 ? v : 1;
  });
  return { mean, std };
}

/**
 * The definition's network with seeded initializers, so the same seed trains the same model.
 * With `standardization`, a frozen Dense layer first maps raw features to (x - mean) / std, so the
 * served model takes raw features and no client has to know the training statistics.
 */
export function buildModel(
  runtime: TfRuntime,
  definition: ModelDefinition,
  standardization?: Standardization,
): LayersModel {
  const { tf, layers: tfl } = runtime;
  const features = definition.features.length;
  const seed = definition.fit.seed;
  const input = tfl.input({ shape: [features], name: INPUT_NAME, dtype: 'float32' });
  let output: SymbolicTensor = input;
  let standardize: ReturnType<typeof tfl.layers.dense> | undefined;
  if (standardization) {
    standardize = tfl.layers.dense({ units: features, name: STANDARDIZE_LAYER, trainable: false });
    output = standardize.apply(output) as SymbolicTensor;
  }
  definition.layers.forEach((layer, i) => {
    output = tfl.layers
      .dense({
        units: layer.units,
        activation: layer.activation,
        name: `dense_${i + 1}`,
        kernelInitializer: tfl.initializers.glorotUniform({ seed: seed + i }),
        biasInitializer: 'zeros',
      })
      .apply(output) as SymbolicTensor;
  });
  const model = tfl.model({ inputs: input, outputs: output, name: 'model' });
  if (standardize && standardization) {
    const inv = standardization.std.map((s) => 1 / s);
    const weights = tf.tidy(() => [
      tf.diag(tf.tensor1d(inv)),
      tf.tensor1d(standardization.mean.map((m, f) => -m * inv[f]!)),
    ]);
    standardize.setWeights(weights);
    tf.dispose(weights);
  }
  return model;
}

/** Compiles a model (new or loaded from the registry) with the definition's optimizer, loss and metrics. */
export function compileModel(runtime: TfRuntime, model: LayersModel, definition: ModelDefinition): void {
  const { tf } = runtime;
  const { optimizer, learningRate, loss, metrics } = definition.compile;
  const make = { adam: tf.train.adam, sgd: tf.train.sgd, rmsprop: tf.train.rmsprop }[optimizer];
  try {
    model.compile({ optimizer: make(learningRate), loss, metrics: [...metrics] });
  } catch (cause) {
    throw new ConfigurationError(`Cannot compile the model: ${(cause as Error).message}`, { cause });
  }
}

/** Labels as the loss expects them: one-hot rows for categorical models, a column otherwise. */
function labelTensor(runtime: TfRuntime, definition: ModelDefinition, y: Float32Array): Tensor {
  const { tf } = runtime;
  if (definition.compile.loss === 'categoricalCrossentropy') {
    const classes = definition.layers[definition.layers.length - 1]!.units;
    return tf.tidy(() => tf.cast(tf.oneHot(tf.tensor1d(y, 'int32'), classes), 'float32'));
  }
  return tf.tensor2d(y, [y.length, 1]);
}

function featureTensor(runtime: TfRuntime, data: Examples): Tensor2D {
  return runtime.tf.tensor2d(data.x, [data.rows, data.features]);
}

export interface TrainOptions {
  readonly runtime: TfRuntime;
  readonly definition: ModelDefinition;
  readonly train: Examples;
  /** Scored after every epoch (val_loss, val_accuracy in the logs); not trained on. */
  readonly validation?: Examples;
  readonly onEpoch?: (progress: EpochProgress) => void | Promise<void>;
  /** Stop with ConfigurationError once this time (ms since epoch) has passed, before Lambda kills the run. */
  readonly deadline?: number;
}

export interface TrainResult {
  readonly model: LayersModel;
  /** Per-epoch values under Keras names: loss, accuracy, val_loss, val_accuracy, ... */
  readonly history: Readonly<Record<string, number[]>>;
  readonly epochs: number;
  readonly standardization?: Standardization;
  readonly durationMs: number;
}

/**
 * Builds, compiles and fits the definition's network. Each epoch is one `fit` call with
 * `shuffle: false` on rows reordered by a seeded RNG: tfjs's own shuffle uses Math.random, which
 * would make two runs on the same data differ. The caller owns (and disposes) the returned model.
 */
export async function trainModel(options: TrainOptions): Promise<TrainResult> {
  const { runtime, definition, train, validation, onEpoch, deadline } = options;
  const { tf } = runtime;
  if (train.rows === 0) throw new ConfigurationError('No training rows');
  const started = Date.now();
  const standardization = definition.standardize ? standardizationOf(train) : undefined;
  const model = buildModel(runtime, definition, standardization);
  compileModel(runtime, model, definition);

  const { epochs, batchSize, seed } = definition.fit;
  const rng = createRng(seed ^ 0x5eed);
  const xAll = featureTensor(runtime, train);
  const yAll = labelTensor(runtime, definition, train.y);
  const xVal = validation && validation.rows > 0 ? featureTensor(runtime, validation) : undefined;
  const yVal = validation && xVal ? labelTensor(runtime, definition, validation.y) : undefined;
  const history: Record<string, number[]> = {};
  const order = new Int32Array(train.rows).map((_, i) => i);
  try {
    for (let epoch = 1; epoch <= epochs; epoch++) {
      if (deadline !== undefined && Date.now() > deadline) {
        throw new ConfigurationError(
          `Training stopped after ${epoch - 1} of ${epochs} epochs: it would overrun its time budget`,
        );
      }
      for (let i = order.length - 1; i > 0; i--) {
        const j = Math.floor(rng() * (i + 1));
        const t = order[i]!;
        order[i] = order[j]!;
        order[j] = t;
      }
      const [xs, ys] = tf.tidy(() => {
        const idx = tf.tensor1d(order, 'int32');
        return [tf.gather(xAll, idx), tf.gather(yAll, idx)];
      });
      let fitted: Awaited<ReturnType<LayersModel['fit']>>;
      try {
        fitted = await model.fit(xs, ys, {
          epochs: 1,
          batchSize,
          shuffle: false,
          verbose: 0,
          ...(xVal && yVal ? { validationData: [xVal, yVal] as [Tensor, Tensor] } : {}),
        });
      } finally {
        tf.dispose([xs, ys]);
      }
      const logs: Record<string, number> = {};
      for (const [name, values] of Object.entries(fitted.history)) {
        const value = values[values.length - 1];
        const number = typeof value === 'number' ? value : (value?.dataSync()[0] ?? Number.NaN);
        const key = kerasMetricName(name);
        logs[key] = number;
        const series = history[key] ?? [];
        series.push(number);
        history[key] = series;
      }
      await onEpoch?.({ epoch, epochs, logs });
    }
  } catch (error) {
    model.dispose();
    throw error;
  } finally {
    tf.dispose([xAll, yAll, ...(xVal ? [xVal] : []), ...(yVal ? [yVal] : [])]);
  }
  return {
    model,
    history,
    epochs,
    ...(standardization ? { standardization } : {}),
    durationMs: Date.now() - started,
  };
}

/**
 * Scores a compiled model on examples: `{loss, accuracy, ...}` under Keras names, each prefixed
 * with `prefix` (e.g. 'val_').
 */
export async function evaluateModel(
  runtime: TfRuntime,
  model: LayersModel,
  definition: ModelDefinition,
  data: Examples,
  prefix = '',
): Promise<Record<string, number>> {
  const { tf } = runtime;
  if (data.rows === 0) throw new ConfigurationError('No rows to evaluate on');
  const x = featureTensor(runtime, data);
  const y = labelTensor(runtime, definition, data.y);
  try {
    const result = model.evaluate(x, y, { batchSize: Math.max(definition.fit.batchSize, 256), verbose: 0 });
    const scalars = Array.isArray(result) ? result : [result];
    const values = await Promise.all(scalars.map(async (s) => (await s.data())[0] ?? Number.NaN));
    tf.dispose(scalars);
    const out: Record<string, number> = {};
    model.metricsNames.forEach((name, i) => {
      out[`${prefix}${kerasMetricName(name)}`] = values[i] ?? Number.NaN;
    });
    return out;
  } finally {
    tf.dispose([x, y]);
  }
}
