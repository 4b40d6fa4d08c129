/**
 * A predict request's body, read as TF Serving reads it (row `instances` or columnar `inputs`) and
 * checked against the served version's signature and the function's limits: JSON shape, names,
 * ranks, sizes, numbers. Pure: every client mistake is a ValidationError (or a 413) that names the
 * exact place in the request, before a tensor exists.
 *
 * One concept, kept whole: TensorBuilder is the inner loop of the warm path, and the checks around
 * it share its error wording.
 */
import { PayloadTooLargeError, ValidationError } from '../shared/errors.js';
import type { Signature, TensorSpec } from '../shared/registry/types.js';
import { describeValue, truncate } from './error-text.js';
import { parseRequestJson } from './json.js';

/** Lambda function URLs cap request payloads at 6 MB. */
export const MAX_BODY_BYTES = 6 * 1024 * 1024;

export interface Limits {
  /** Instances (rows) per predict request. @default 10000 */
  readonly maxInstances: number;
  /** Numbers per predict request, all inputs together. @default 1000000 */
  readonly maxElements: number;
  /** Bytes of request body after base64 decoding. @default 6 MiB */
  readonly maxBodyBytes: number;
}

export const DEFAULT_LIMITS: Limits = {
  maxInstances: 10_000,
  maxElements: 1_000_000,
  maxBodyBytes: MAX_BODY_BYTES,
};

/** One input tensor, flattened and checked, ready for `tf.tensor(values, shape, dtype)`. */
export interface InputTensor {
  readonly name: string;
  readonly dtype: 'float32' | 'int32' | 'bool';
  readonly shape: number[];
  readonly values: Float32Array | Int32Array | Uint8Array;
}

export interface PredictRequest {
  /** `row` for `instances` (answered with `predictions`), `columnar` for `inputs` (answered with `outputs`). */
  readonly format: 'row' | 'columnar';
  readonly batch: number;
  readonly inputs: InputTensor[];
}

/** Decodes the body bytes (base64 when the event says so) and enforces the size limit. */
export function decodeBody(body: string | undefined, isBase64: boolean | undefined, limits: Limits): string {
  if (body === undefined || body === null) return '';
  const approx = isBase64 ? Math.floor((body.length * 3) / 4) : Buffer.byteLength(body, 'utf8');
  if (approx > limits.maxBodyBytes) {
    throw new PayloadTooLargeError(
      `Request body is ${approx} bytes; the limit is ${limits.maxBodyBytes} bytes`,
    );
  }
  return isBase64 ? Buffer.from(body, 'base64').toString('utf8') : body;
}

/**
 * Parses and validates a predict body against the signature: JSON shape, names, ranks, sizes,
 * numbers (finite, integral for int32), batch limits. Every error names the offending place.
 */
export function parsePredictRequest(text: string, signature: Signature, limits: Limits): PredictRequest {
  if (text.trim() === '')
    throw new ValidationError('Request body is empty; send {"instances": [...]} or {"inputs": ...}');
  let body: unknown;
  let nonFinite: boolean;
  try {
    ({ value: body, nonFinite } = parseRequestJson(text));
  } catch (error) {
    throw new ValidationError(`Request body is not valid JSON: ${(error as Error).message}`);
  }
  if (!isPlainObject(body)) {
    throw new ValidationError('Request body must be a JSON object with "instances" or "inputs"');
  }
  const hasInstances = 'instances' in body;
  const hasInputs = 'inputs' in body;
  if (hasInstances === hasInputs) {
    throw new ValidationError(
      hasInstances
        ? 'Send either "instances" or "inputs", not both'
        : 'Request body needs "instances" (row format) or "inputs" (columnar format)',
    );
  }
  // As in TF Serving, an empty signature_name means the default signature.
  const signatureName = body.signature_name;
  if (signatureName !== undefined && signatureName !== '' && signatureName !== 'serving_default') {
    throw new ValidationError(
      typeof signatureName === 'string'
        ? `Unknown signature_name ${JSON.stringify(truncate(signatureName))}; this model has "serving_default"`
        : `signature_name must be a string, got ${describeValue(signatureName)}`,
    );
  }
  const specs = signature.inputs;
  if (specs.length === 0) throw new ValidationError('This model declares no inputs');
  const options = { limits, nonFinite };
  return hasInstances ? parseRows(body.instances, specs, options) : parseColumns(body.inputs, specs, options);
}

/** What every input of one request is read with. */
interface ParseOptions {
  readonly limits: Limits;
  /** The body held a NaN or Infinity token: float values may then be non-finite. */
  readonly nonFinite: boolean;
}

function parseRows(instances: unknown, specs: readonly TensorSpec[], options: ParseOptions): PredictRequest {
  const { limits } = options;
  if (!Array.isArray(instances))
    throw new ValidationError('"instances" must be an array with one entry per instance');
  if (instances.length === 0) throw new ValidationError('"instances" is empty; send at least one instance');
  if (instances.length > limits.maxInstances) {
    throw new ValidationError(
      `"instances" has ${instances.length} entries; the limit is ${limits.maxInstances} per request`,
    );
  }
  const batch = instances.length;
  const budget = { left: limits.maxElements };
  // As in TF Serving (json_tensor.cc, FillTensorMapFromInstancesList), the first instance decides:
  // objects keyed by input name, or (a single-input model only) bare values, never a mix.
  const named = isPlainObject(instances[0]);
  if (!named && specs.length > 1) {
    throw new ValidationError(
      `instances[0] must be an object keyed by input name (${specs.map((s) => `"${s.name}"`).join(', ')}) for this multi-input model`,
    );
  }
  // Where an instance's value sits, spelled out only for an error message.
  const builders = specs.map(
    (spec) =>
      new TensorBuilder(spec, batch, options, budget, (i) =>
        named ? `instances[${i}].${spec.name}` : `instances[${i}]`,
      ),
  );
  for (let i = 0; i < batch; i++) {
    const instance = instances[i];
    if (!named) {
      if (isPlainObject(instance)) {
        throw new ValidationError(
          `instances[${i}] is an object but instances[0] is not: instances are all objects keyed by input name or all bare values`,
        );
      }
      builders[0]!.addInstance(instance, i);
      continue;
    }
    if (!isPlainObject(instance)) {
      throw new ValidationError(
        `instances[${i}] is ${describeValue(instance)} but instances[0] is an object: instances are all objects keyed by input name or all bare values`,
      );
    }
    checkNames(instance, specs, `instances[${i}]`);
    specs.forEach((spec, k) => {
      builders[k]!.addInstance(instance[spec.name], i);
    });
  }
  return { format: 'row', batch, inputs: builders.map((b) => b.finish()) };
}

function parseColumns(inputs: unknown, specs: readonly TensorSpec[], options: ParseOptions): PredictRequest {
  const { limits } = options;
  const named: Record<string, unknown> =
    specs.length === 1 && !isPlainObject(inputs)
      ? { [specs[0]!.name]: inputs }
      : (inputs as Record<string, unknown>);
  if (!isPlainObject(named)) {
    throw new ValidationError(
      `"inputs" must be an object keyed by input name (${specs.map((s) => `"${s.name}"`).join(', ')})`,
    );
  }
  checkNames(named, specs, '"inputs"');
  let batch: number | undefined;
  const tensors: InputTensor[] = [];
  const budget = { left: limits.maxElements };
  for (const spec of specs) {
    const value = named[spec.name];
    const where = `inputs.${spec.name}`;
    if (!Array.isArray(value))
      throw new ValidationError(`${where} must be an array batched along its first dimension`);
    if (value.length === 0) throw new ValidationError(`${where} is empty; send at least one instance`);
    if (value.length > limits.maxInstances) {
      throw new ValidationError(
        `${where} has ${value.length} instances; the limit is ${limits.maxInstances} per request`,
      );
    }
    if (batch !== undefined && value.length !== batch) {
      throw new ValidationError(`${where} has ${value.length} instances but other inputs have ${batch}`);
    }
    batch = value.length;
    const builder = new TensorBuilder(spec, value.length, options, budget, (i) => `${where}[${i}]`);
    for (let i = 0; i < value.length; i++) builder.addInstance(value[i], i);
    tensors.push(builder.finish());
  }
  return { format: 'columnar', batch: batch ?? 0, inputs: tensors };
}

function checkNames(object: Record<string, unknown>, specs: readonly TensorSpec[], where: string) {
  for (const spec of specs) {
    if (!(spec.name in object)) throw new ValidationError(`${where} is missing input "${spec.name}"`);
  }
  for (const key of Object.keys(object)) {
    if (!specs.some((s) => s.name === key)) {
      throw new ValidationError(
        `${where} has unknown input ${JSON.stringify(truncate(key))}; inputs are ${specs.map((s) => `"${s.name}"`).join(', ')}`,
      );
    }
  }
}

/** The largest finite float32: a larger finite number would silently become Infinity in the tensor. */
const FLOAT32_MAX = 3.4028234663852886e38;

/** Collects instances of one input into a flat typed array, checking each instance's shape. */
class TensorBuilder {
  private readonly inner: readonly (number | null)[];
  private readonly dtype: InputTensor['dtype'];
  private readonly limits: Limits;
  /** A float32 input with no further check on its values: the inner loop's common case. */
  private readonly plainFloat: boolean;
  private values: Float32Array | Int32Array | Uint8Array | undefined;
  private perInstance = -1;
  /** Sizes of the inner dimensions, fixed by the first instance. */
  private fixedInner: number[] = [];
  private count = 0;
  /** The instance being written and the indices above the innermost dimension, for error messages. */
  private instance = 0;
  private indices: number[] | undefined;

  constructor(
    private readonly spec: TensorSpec,
    private readonly batch: number,
    private readonly options: ParseOptions,
    /** Numbers still allowed in this request, shared by all its inputs. */
    private readonly budget: { left: number },
    /**
     * Where instance `i` sits in the request (`instances[3]`, `inputs.x[3]`). A function, not a
     * string per instance: a request of 10,000 instances would build 10,000 strings no one reads.
     */
    private readonly label: (instance: number) => string,
  ) {
    this.inner = innerDimensions(spec);
    if (spec.dtype !== 'float32' && spec.dtype !== 'int32' && spec.dtype !== 'bool') {
      throw new ValidationError(
        `Input "${spec.name}" has dtype ${spec.dtype}, which the JSON API does not accept`,
      );
    }
    this.dtype = spec.dtype;
    this.limits = options.limits;
    this.plainFloat = spec.dtype === 'float32' && spec.vocabularySize === undefined;
  }

  addInstance(value: unknown, instance: number): void {
    this.instance = instance;
    if (this.values === undefined) {
      // The first instance fixes any free dimensions; the rest must match it.
      const shape = this.shapeOf(value);
      const size = shape.reduce((a, b) => a * b, 1);
      const total = size * this.batch;
      if (total > this.budget.left) {
        throw new ValidationError(
          `Input "${this.spec.name}" would hold ${total} numbers, more than the ${this.limits.maxElements} a request may hold in all its inputs`,
        );
      }
      this.budget.left -= total;
      this.fixedInner = shape;
      this.perInstance = size;
      this.values =
        this.dtype === 'int32'
          ? new Int32Array(total)
          : this.dtype === 'bool'
            ? new Uint8Array(total)
            : new Float32Array(total);
    }
    const offset = this.count * this.perInstance;
    const written = this.write(value, 0, offset);
    if (written !== offset + this.perInstance)
      throw new ValidationError(`${this.where()} does not have the expected size`);
    this.count++;
  }

  /** The current position as the client wrote it: `instances[3][1]`, plus `[index]` of a number. */
  private where(index?: number): string {
    let at = this.label(this.instance);
    for (const i of this.indices ?? []) at += `[${i}]`;
    return index === undefined ? at : `${at}[${index}]`;
  }

  /** Shape of the first instance, checked against the signature's rank and fixed sizes. */
  private shapeOf(value: unknown): number[] {
    const shape: number[] = [];
    let cursor: unknown = value;
    for (let depth = 0; depth < this.inner.length; depth++) {
      if (!Array.isArray(cursor)) {
        throw new ValidationError(
          `${this.where()} must have shape ${describeShape(this.inner)} for input "${this.spec.name}" (rank ${this.inner.length}), but is ${depth === 0 ? 'a scalar' : `nested only ${depth} deep`}`,
        );
      }
      const expected = this.inner[depth];
      if (expected !== null && expected !== undefined && cursor.length !== expected) {
        throw new ValidationError(
          `${this.where()}${'[0]'.repeat(depth)} has ${cursor.length} values; input "${this.spec.name}" expects ${expected} (shape ${describeShape(this.inner)})`,
        );
      }
      if (cursor.length === 0) throw new ValidationError(`${this.where()}${'[0]'.repeat(depth)} is empty`);
      shape.push(cursor.length);
      cursor = cursor[0];
    }
    return shape;
  }

  private write(value: unknown, depth: number, offset: number): number {
    const values = this.values!;
    if (depth === this.fixedInner.length) {
      values[offset] = this.number(value);
      return offset + 1;
    }
    if (!Array.isArray(value)) {
      throw new ValidationError(
        `${this.where()} must be an array (input "${this.spec.name}" has shape ${describeShape(this.inner)})`,
      );
    }
    const expected = this.fixedInner[depth]!;
    if (value.length !== expected) {
      throw new ValidationError(
        `${this.where()} has ${value.length} values; input "${this.spec.name}" expects ${expected} (shape ${describeShape(this.inner)})`,
      );
    }
    let cursor = offset;
    if (depth === this.fixedInner.length - 1) {
      for (let i = 0; i < value.length; i++) {
        const v = value[i];
        // The common case inline; anything else goes through the checks that name the problem.
        if (typeof v === 'number' && this.plainFloat && v <= FLOAT32_MAX && v >= -FLOAT32_MAX)
          values[cursor++] = v;
        else values[cursor++] = this.number(v, i);
      }
      return cursor;
    }
    this.indices ??= [];
    for (let i = 0; i < value.length; i++) {
      this.indices.push(i);
      cursor = this.write(value[i], depth + 1, cursor);
      this.indices.pop();
    }
    return cursor;
  }

  private number(value: unknown, index?: number): number {
    if (this.dtype === 'bool') {
      if (value === true || value === 1) return 1;
      if (value === false || value === 0) return 0;
      throw new ValidationError(`${this.where(index)} must be true or false, got ${describeValue(value)}`);
    }
    if (typeof value !== 'number')
      throw new ValidationError(`${this.where(index)} must be a number, got ${describeValue(value)}`);
    if (this.dtype === 'int32') {
      if (!Number.isInteger(value) || value < -(2 ** 31) || value > 2 ** 31 - 1) {
        throw new ValidationError(
          `${this.where(index)} must be a 32-bit integer for input "${this.spec.name}", got ${value}`,
        );
      }
    } else if (!(value <= FLOAT32_MAX && value >= -FLOAT32_MAX)) {
      // NaN and ±Infinity are TF Serving's tokens; a body without them got Infinity from a number
      // literal too large for a double (`1e999`), which TF Serving refuses as well.
      if (Number.isFinite(value) || !this.options.nonFinite) {
        throw new ValidationError(
          `${this.where(index)} is beyond float32's range (±${FLOAT32_MAX}); write Infinity or -Infinity for an infinite value`,
        );
      }
    }
    const vocabulary = this.spec.vocabularySize;
    // An id outside an Embedding's table would fail in tfjs's gather; tfjs truncates a float id to
    // an integer first, so a float input takes (-1, vocabularySize).
    if (vocabulary !== undefined && !(value > -1 && value < vocabulary)) {
      throw new ValidationError(
        `${this.where(index)} is ${value}, not an id of input "${this.spec.name}": it feeds an Embedding of ${vocabulary} entries, so ids are integers from 0 to ${vocabulary - 1}`,
      );
    }
    return value;
  }

  finish(): InputTensor {
    return {
      name: this.spec.name,
      dtype: this.dtype,
      shape: [this.count, ...this.fixedInner],
      values: this.values!,
    };
  }
}

const innerCache = new WeakMap<TensorSpec, readonly (number | null)[]>();
/**
 * A spec's dimensions after the batch, free ones as null. Remembered per spec: a served version's
 * signature lives as long as the version, and this ran on every request.
 */
function innerDimensions(spec: TensorSpec): readonly (number | null)[] {
  let inner = innerCache.get(spec);
  if (!inner) {
    inner = spec.shape.slice(1).map((d) => (d === null || d < 0 ? null : d));
    innerCache.set(spec, inner);
  }
  return inner;
}

function describeShape(inner: readonly (number | null)[]): string {
  return `[${['-1', ...inner.map((d) => (d === null ? '-1' : String(d)))].join(', ')}]`;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
