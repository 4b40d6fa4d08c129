/**
 * A compiled fast-path model and its evaluation: the warm request path for small dense networks,
 * plain loops over Float32Arrays. Every kernel is here, in one place, so the hot path reads (and
 * profiles) as one file; fast-path.ts decides what compiles into these steps.
 *
 * Semantics follow tfjs-layers: activations use tfjs's definitions, and sums are carried in double
 * precision and stored as float32 (within float32 rounding of every tfjs backend).
 */
import type { Signature } from '../registry/types.js';
import { Unsupported, type Weights } from './fast-path-weights.js';

/** One input of a prediction, flattened row-major. */
export interface FastInput {
  readonly values: ArrayLike<number>;
  readonly shape: readonly number[];
}

export interface FastOutput {
  readonly name: string;
  readonly shape: readonly number[];
  readonly values: Float32Array;
}

export type Activation = (v: Float32Array, width: number) => void;

/** One step of the compiled network, mapping a [rows, width] buffer to another. */
export interface Step {
  readonly out: number;
  /** Overwrites its input (activations, normalization) rather than allocating an output. */
  readonly inPlace: boolean;
  run(x: Float32Array, rows: number): Float32Array;
}

/** A compiled dense network. Stateless: safe to call from concurrent requests. */
export class FastModel {
  constructor(
    readonly signature: Signature,
    /** Number of weights, for logs. */
    readonly parameters: number,
    private readonly inputWidth: number,
    private readonly steps: readonly Step[],
    /** The output is one number per instance (shape [rows]), not rows of numbers. */
    private readonly scalarOutput = false,
  ) {}

  predict(inputs: readonly FastInput[]): FastOutput[] {
    const input = inputs[0];
    if (inputs.length !== 1 || !input) throw new Error('the fast path takes exactly one input');
    const rows = input.shape[0] ?? 0;
    if (input.values.length !== rows * this.inputWidth) {
      throw new Error(`input has ${input.values.length} values, expected ${rows} × ${this.inputWidth}`);
    }
    // The caller's values are read, never written: copied only when the first step works in place.
    let x =
      input.values instanceof Float32Array && !this.steps[0]?.inPlace
        ? input.values
        : Float32Array.from(input.values);
    let width = this.inputWidth;
    for (const step of this.steps) {
      x = step.run(x, rows);
      width = step.out;
    }
    const spec = this.signature.outputs[0]!;
    return [{ name: spec.name, shape: this.scalarOutput ? [rows] : [rows, width], values: x }];
  }
}

export function dense(
  width: number,
  units: number,
  kernel: Float32Array,
  bias: Float32Array | undefined,
  act: Activation | undefined,
): Step {
  const acc = new Float64Array(units);
  return {
    out: units,
    inPlace: false,
    run(x, rows) {
      const y = new Float32Array(rows * units);
      for (let r = 0; r < rows; r++) {
        if (bias) for (let j = 0; j < units; j++) acc[j] = bias[j]!;
        else acc.fill(0);
        const xo = r * width;
        // Row-major kernel [width, units]: walk it in storage order.
        for (let i = 0; i < width; i++) {
          const xi = x[xo + i]!;
          if (xi === 0) continue;
          const ko = i * units;
          for (let j = 0; j < units; j++) acc[j] = acc[j]! + xi * kernel[ko + j]!;
        }
        const yo = r * units;
        for (let j = 0; j < units; j++) y[yo + j] = acc[j]!;
      }
      if (act) act(y, units);
      return y;
    },
  };
}

export function elementwise(width: number, act: Activation | undefined): Step {
  return {
    out: width,
    inPlace: true,
    run(x) {
      if (act) act(x, width);
      return x;
    },
  };
}

export function batchNorm(name: string, width: number, c: Record<string, unknown>, weights: Weights): Step {
  const epsilon = (c.epsilon ?? 1e-3) as number;
  const gamma = c.scale === false ? undefined : weights.take(name, 'gamma', [width]);
  const beta = c.center === false ? undefined : weights.take(name, 'beta', [width]);
  const mean = weights.take(name, 'moving_mean', [width]);
  const variance = weights.take(name, 'moving_variance', [width]);
  const scale = new Float64Array(width);
  for (let j = 0; j < width; j++) scale[j] = (gamma ? gamma[j]! : 1) / Math.sqrt(variance[j]! + epsilon);
  return {
    out: width,
    inPlace: true,
    run(x, rows) {
      for (let r = 0; r < rows; r++) {
        const o = r * width;
        for (let j = 0; j < width; j++) x[o + j] = (x[o + j]! - mean[j]!) * scale[j]! + (beta ? beta[j]! : 0);
      }
      return x;
    },
  };
}

export function map(f: (v: number) => number): Activation {
  return (v) => {
    for (let i = 0; i < v.length; i++) v[i] = f(v[i]!);
  };
}

const SELU_ALPHA = 1.6732632423543772;
const SELU_SCALE = 1.0507009873554805;
const sigmoid = (v: number) => 1 / (1 + Math.exp(-v));

/** tfjs-layers' activations, by their serialized names (Keras's snake_case and tfjs's camelCase). */
export function activation(name: string): Activation | undefined {
  switch (name) {
    case 'linear':
      return undefined;
    case 'relu':
      return map((v) => Math.max(v, 0));
    case 'relu6':
      return map((v) => Math.min(Math.max(v, 0), 6));
    case 'elu':
      return map((v) => (v > 0 ? v : Math.expm1(v)));
    case 'selu':
      return map((v) => SELU_SCALE * (v > 0 ? v : SELU_ALPHA * Math.expm1(v)));
    case 'sigmoid':
      return map(sigmoid);
    case 'hard_sigmoid':
    case 'hardSigmoid':
      return map((v) => Math.min(Math.max(0.2 * v + 0.5, 0), 1));
    case 'tanh':
      return map(Math.tanh);
    case 'softplus':
      return map((v) => (v > 20 ? v : Math.log1p(Math.exp(v))));
    case 'softsign':
      return map((v) => v / (1 + Math.abs(v)));
    case 'swish':
      return map((v) => v * sigmoid(v));
    case 'softmax':
      return softmax;
    default:
      throw new Unsupported(`activation ${name}`);
  }
}

export function softmax(v: Float32Array, width: number): void {
  for (let o = 0; o < v.length; o += width) {
    let max = Number.NEGATIVE_INFINITY;
    for (let j = 0; j < width; j++) max = Math.max(max, v[o + j]!);
    let sum = 0;
    for (let j = 0; j < width; j++) sum += Math.exp(v[o + j]! - max);
    for (let j = 0; j < width; j++) v[o + j] = Math.exp(v[o + j]! - max) / sum;
  }
}
