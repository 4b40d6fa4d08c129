/**
 * TF Serving's answers, shaped as it shapes them: predict (`predictions` or `outputs`, plus
 * `model_spec`), model status and metadata. Pure. A predict answer is written to text only as it
 * is sent (`jsonText`), the way TF Serving writes floats.
 */
import { ValidationError } from '../shared/errors.js';
import type { Signature, TensorSpec } from '../shared/registry/types.js';
import { writeFloat } from './json.js';
import type { PredictRequest } from './predict-request.js';

/** An output tensor's data as computed. */
export interface OutputTensor {
  readonly name: string;
  /** How its values are written: floats with a decimal point, int32 as integers, bool as true/false. @default 'float32' */
  readonly dtype?: string;
  readonly shape: readonly number[];
  readonly values: ArrayLike<number>;
}

/** Nested arrays of the given shape from flat values. */
export function nest(values: ArrayLike<number>, shape: readonly number[], offset = 0): unknown {
  if (shape.length === 0) return values[offset];
  if (shape.length === 1) {
    // The common case (one row of a dense model's output), without the general path's allocations.
    const n = shape[0]!;
    const out = new Array<number>(n);
    for (let i = 0; i < n; i++) out[i] = values[offset + i]!;
    return out;
  }
  const [head, ...rest] = shape;
  const stride = rest.reduce((a, b) => a * b, 1);
  const out = new Array(head);
  if (rest.length === 0) {
    for (let i = 0; i < head!; i++) out[i] = values[offset + i];
    return out;
  }
  for (let i = 0; i < head!; i++) out[i] = nest(values, rest, offset + i * stride);
  return out;
}

type Write = (v: number) => string;
const writeInt: Write = (v) => `${v}`;
const writeBool: Write = (v) => (v ? 'true' : 'false');
const writerOf = (dtype: string | undefined): Write =>
  dtype === 'int32' ? writeInt : dtype === 'bool' ? writeBool : writeFloat;

/** The values at `offset` of the given shape as nested JSON arrays (a scalar for shape []). */
function writeTensor(
  values: ArrayLike<number>,
  shape: readonly number[],
  offset: number,
  write: Write,
): string {
  if (shape.length === 0) return write(values[offset]!);
  const n = shape[0]!;
  let text = '[';
  if (shape.length === 1) {
    for (let i = 0; i < n; i++)
      text += i === 0 ? write(values[offset + i]!) : `,${write(values[offset + i]!)}`;
    return `${text}]`;
  }
  const rest = shape.slice(1);
  const stride = rest.reduce((a, b) => a * b, 1);
  for (let i = 0; i < n; i++) {
    if (i > 0) text += ',';
    text += writeTensor(values, rest, offset + i * stride, write);
  }
  return `${text}]`;
}

/**
 * A predict answer. Written (`text()`) only as it is sent, as TF Serving writes it
 * (json_tensor.cc, MakeJsonFromTensors): floats with a decimal point, non-finite ones as `NaN`,
 * `Infinity`, `-Infinity`, which JSON.stringify would turn into `null`.
 */
export class PredictAnswer {
  constructor(
    private readonly format: PredictRequest['format'],
    private readonly outputs: readonly OutputTensor[],
    private readonly spec: {
      readonly name: string;
      readonly version: string;
      readonly signature_name: string;
    },
  ) {}

  text(): string {
    // Outputs JSON.stringify writes exactly as TF Serving does (int32, and floats none of which is
    // whole or non-finite: most models' outputs) take its native number formatting, the fastest;
    // the rest are written here, value by value.
    if (this.outputs.every(stringifiable)) return JSON.stringify(this.plain());
    const { outputs } = this;
    const tail = `,"model_spec":${JSON.stringify(this.spec)}}`;
    if (outputs.length === 1) {
      // One output: its tensor whole, under `outputs` or (one entry per instance) `predictions`.
      const o = outputs[0]!;
      const key = this.format === 'columnar' ? '{"outputs":' : '{"predictions":';
      return `${key}${writeTensor(o.values, o.shape, 0, writerOf(o.dtype))}${tail}`;
    }
    const writers = outputs.map((o) => writerOf(o.dtype));
    const names = outputs.map((o) => JSON.stringify(o.name));
    if (this.format === 'columnar') {
      const fields = outputs.map((o, k) => `${names[k]}:${writeTensor(o.values, o.shape, 0, writers[k]!)}`);
      return `{"outputs":{${fields.join(',')}}${tail}`;
    }
    // Several outputs, row format: per instance, an object of its slice of each output.
    const batch = outputs[0]!.shape[0]!;
    const inner = outputs.map((o) => o.shape.slice(1));
    const strides = inner.map((d) => d.reduce((a, b) => a * b, 1));
    let text = '{"predictions":[';
    for (let i = 0; i < batch; i++) {
      if (i > 0) text += ',';
      text += '{';
      for (let k = 0; k < outputs.length; k++) {
        if (k > 0) text += ',';
        text += `${names[k]}:${writeTensor(outputs[k]!.values, inner[k]!, i * strides[k]!, writers[k]!)}`;
      }
      text += '}';
    }
    return `${text}]${tail}`;
  }

  /** For code that serializes the answer with JSON.stringify: non-finite values become null there. */
  toJSON(): unknown {
    return this.plain();
  }

  /** The answer as nested arrays of numbers. */
  private plain(): Record<string, unknown> {
    const { outputs, spec } = this;
    if (this.format === 'columnar') {
      const nested = outputs.map((o) => nest(o.values, o.shape));
      return {
        outputs:
          outputs.length === 1 ? nested[0] : Object.fromEntries(outputs.map((o, i) => [o.name, nested[i]])),
        model_spec: spec,
      };
    }
    const batch = outputs[0]!.shape[0]!;
    const only = outputs.length === 1 ? outputs[0]! : undefined;
    if (only?.shape.length === 2) {
      // The common case (one output of shape [batch, n]) without the general path's arrays.
      const n = only.shape[1]!;
      const { values } = only;
      const rows = new Array(batch);
      for (let i = 0; i < batch; i++) {
        const row = new Array<number>(n);
        for (let j = 0; j < n; j++) row[j] = values[i * n + j]!;
        rows[i] = row;
      }
      return { predictions: rows, model_spec: spec };
    }
    const perInstance = outputs.map((o) => {
      const inner = o.shape.slice(1);
      const stride = inner.reduce((a, b) => a * b, 1);
      const rows = new Array(batch);
      for (let i = 0; i < batch; i++) rows[i] = nest(o.values, inner, i * stride);
      return rows;
    });
    const predictions =
      outputs.length === 1
        ? perInstance[0]
        : Array.from({ length: batch }, (_, i) =>
            Object.fromEntries(outputs.map((o, k) => [o.name, perInstance[k]![i]])),
          );
    return { predictions, model_spec: spec };
  }
}

/** An output JSON.stringify writes as TF Serving does: int32, or floats none of which is whole or non-finite. */
function stringifiable(output: OutputTensor): boolean {
  if (output.dtype === 'int32') return true;
  if (output.dtype !== undefined && output.dtype !== 'float32') return false;
  const { values } = output;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    // A whole number (stringified without ".0"), ±Infinity (whole for Math.floor) or NaN.
    if (v === Math.floor(v) || Number.isNaN(v)) return false;
  }
  return true;
}

/**
 * The predict response as TF Serving shapes it: `predictions` (one entry per instance; an object
 * of named outputs when the model has several) for row requests, `outputs` for columnar ones; plus
 * `model_spec`, which TF Serving's REST API leaves out, so every answer names its version.
 */
export function predictResponse(
  request: Pick<PredictRequest, 'format' | 'batch'>,
  outputs: readonly OutputTensor[],
  model: string,
  version: number,
): PredictAnswer {
  if (request.format === 'row') {
    // As TF Serving (MakeRowFormatJsonFromTensors): rows need every output batched alike.
    const batch = outputs[0]?.shape[0];
    const odd = outputs.find((o) => o.shape.length === 0 || o.shape[0] !== batch);
    if (odd) {
      throw new ValidationError(
        `Output "${odd.name}" ${odd.shape.length === 0 ? 'is a scalar, not a value per instance' : `is not batched like output "${outputs[0]!.name}"`}, so it cannot be answered per instance; send "inputs" (columnar format) instead of "instances"`,
      );
    }
  }
  return new PredictAnswer(request.format, outputs, {
    name: model,
    version: String(version),
    signature_name: 'serving_default',
  });
}

/** An answer's body as sent: a predict answer as TF Serving writes it, anything else as JSON. */
export function jsonText(body: unknown): string {
  return body instanceof PredictAnswer ? body.text() : JSON.stringify(body);
}

const DTYPES: Record<string, string> = {
  float32: 'DT_FLOAT',
  int32: 'DT_INT32',
  bool: 'DT_BOOL',
  string: 'DT_STRING',
};

function tensorInfo(spec: TensorSpec) {
  return {
    dtype: DTYPES[spec.dtype] ?? 'DT_INVALID',
    tensor_shape: { dim: spec.shape.map((d) => ({ size: String(d ?? -1), name: '' })), unknown_rank: false },
    name: spec.name,
  };
}

/** GET /v1/models/<model>/metadata, in TF Serving's SignatureDef form, plus aiaas's own details. */
export function metadataResponse(
  model: string,
  version: number,
  signature: Signature,
  details: Record<string, unknown>,
) {
  return {
    model_spec: { name: model, signature_name: '', version: String(version) },
    metadata: {
      signature_def: {
        signature_def: {
          serving_default: {
            inputs: Object.fromEntries(signature.inputs.map((s) => [s.name, tensorInfo(s)])),
            outputs: Object.fromEntries(signature.outputs.map((s) => [s.name, tensorInfo(s)])),
            method_name: 'tensorflow/serving/predict',
          },
        },
      },
    },
    aiaas: details,
  };
}

/** GET /v1/models/<model>: TF Serving's model status. */
export function statusResponse(
  version: number,
  state: 'AVAILABLE' | 'LOADING' | 'UNAVAILABLE',
  message = '',
) {
  return {
    model_version_status: [
      {
        version: String(version),
        state,
        status: { error_code: state === 'AVAILABLE' ? 'OK' : 'UNAVAILABLE', error_message: message },
      },
    ],
  };
}
