/**
 * The "try it" form of a model, from its signature: tabular models (one input of shape [-1, n],
 * n small) get a field per feature, named by the manifest definition's features when it has n of
 * them, else `<input>[i]`; every other model gets a JSON editor prefilled with a valid-shaped
 * request. `requestBody` turns a submitted form back into the predict request the function gets.
 */
import { ValidationError } from '../../functions/shared/errors.js';
import type { Signature, TensorSpec } from '../../functions/shared/registry/types.js';

/** Beyond this many features a form of fields is no help: the JSON editor is used. */
const MAX_FIELDS = 64;
/** A request typed in the editor larger than this is refused by the console before it is sent. */
export const MAX_EDITOR_BYTES = 1_000_000;

export type TryForm =
  | { readonly kind: 'fields'; readonly input: string; readonly fields: readonly string[] }
  | { readonly kind: 'json'; readonly example: string };

/** The form for a signature; `features` are the manifest definition's, when the model has one. */
export function tryForm(signature: Signature, features?: readonly string[]): TryForm {
  const [input] = signature.inputs;
  const width = input?.shape[1];
  if (
    signature.inputs.length === 1 &&
    input &&
    input.shape.length === 2 &&
    typeof width === 'number' &&
    width >= 1 &&
    width <= MAX_FIELDS &&
    input.dtype !== 'string'
  ) {
    const fields =
      features?.length === width
        ? [...features]
        : Array.from({ length: width }, (_, i) => `${input.name}[${i}]`);
    return { kind: 'fields', input: input.name, fields };
  }
  return { kind: 'json', example: JSON.stringify({ instances: [exampleInstance(signature.inputs)] }) };
}

/** One instance of zeros in the inputs' shapes (a single input as a plain value, several by name). */
function exampleInstance(inputs: readonly TensorSpec[]): unknown {
  const zeros = (spec: TensorSpec): unknown => {
    const build = (dims: readonly (number | null)[]): unknown =>
      dims.length === 0
        ? spec.dtype === 'bool'
          ? false
          : 0
        : Array.from({ length: Math.min(dims[0] ?? 1, 32) }, () => build(dims.slice(1)));
    return build(spec.shape.slice(1));
  };
  if (inputs.length === 1) return zeros(inputs[0]!);
  return Object.fromEntries(inputs.map((spec) => [spec.name, zeros(spec)]));
}

/**
 * The predict request for a submitted form: the fields as one instance of numbers (each named in
 * the error when it is not one), or the editor's text as typed (TF Serving's JSON, NaN included,
 * which the function checks and answers on).
 */
export function requestBody(form: TryForm, submitted: URLSearchParams): string {
  if (form.kind === 'json') {
    const text = submitted.get('request') ?? '';
    if (text.trim() === '')
      throw new ValidationError('the request is empty: write a predict request in JSON');
    if (Buffer.byteLength(text) > MAX_EDITOR_BYTES)
      throw new ValidationError(`the request is larger than ${MAX_EDITOR_BYTES} bytes`);
    return text;
  }
  const values = form.fields.map((field, i) => {
    const raw = (submitted.get(`f${i}`) ?? '').trim();
    const value = raw === '' ? Number.NaN : Number(raw);
    if (!Number.isFinite(value))
      throw new ValidationError(`${field}: must be a number, got ${JSON.stringify(raw.slice(0, 40))}`);
    return value;
  });
  return JSON.stringify({ instances: [values] });
}
