/**
 * Predict requests built from a model's OpenAPI document (functions/inference/openapi.ts), knowing
 * only the document: array sizes from minItems/maxItems, values within minimum/maximum, one
 * alternative of each oneOf. What JSON Schema cannot say and the document says in words is kept
 * here too: a free dimension takes one size for the whole request, and every input one batch size.
 */
import { Ajv2020 } from 'ajv/dist/2020.js';

type Schema = Record<string, unknown>;
type OpenApi = { readonly components: { readonly schemas: Record<string, Schema> } };

/** Where the generator's choices come from: a seeded generator, fast-check, or fixed extremes. */
export interface Choices {
  /** An array size from min to max (both included). */
  size(min: number, max: number): number;
  int(min: number, max: number): number;
  float(min: number, max: number): number;
  bool(): boolean;
  /** One of `n` alternatives. */
  pick(n: number): number;
}

/** Free dimensions get at most this many items, the batch at most this many instances. */
const MAX_FREE = 3;
const MAX_BATCH = 4;

export function componentSchema(doc: OpenApi, name: string): Schema {
  const schema = doc.components.schemas[name];
  if (!schema) throw new Error(`no schema ${name}`);
  return schema;
}

function resolve(doc: OpenApi, schema: Schema): Schema {
  const ref = schema.$ref;
  if (typeof ref !== 'string') return schema;
  const prefix = '#/components/schemas/';
  if (!ref.startsWith(prefix)) throw new Error(`unexpected $ref ${ref}`);
  return resolve(doc, componentSchema(doc, ref.slice(prefix.length)));
}

/** A value `schema` admits; `sizes` keeps the size chosen for each array node, so a free dimension has one size. */
export function sampleValue(doc: OpenApi, raw: Schema, choose: Choices, sizes: Map<Schema, number>): unknown {
  const schema = resolve(doc, raw);
  if (schema.not !== undefined) throw new Error(`unsatisfiable schema: ${String(schema.description)}`);
  const alternatives = (schema.oneOf ?? schema.anyOf) as Schema[] | undefined;
  if (alternatives) return sampleValue(doc, alternatives[choose.pick(alternatives.length)]!, choose, sizes);
  if ('const' in schema) return schema.const;
  if (Array.isArray(schema.enum)) return schema.enum[choose.pick(schema.enum.length)];
  switch (schema.type) {
    case 'array': {
      const min = (schema.minItems as number | undefined) ?? 0;
      const max = (schema.maxItems as number | undefined) ?? Number.POSITIVE_INFINITY;
      let n = sizes.get(schema);
      if (n === undefined) {
        n = min === max ? min : choose.size(min, Math.min(max, min + MAX_FREE));
        sizes.set(schema, n);
      }
      return Array.from({ length: n }, () => sampleValue(doc, schema.items as Schema, choose, sizes));
    }
    case 'object': {
      const out: Record<string, unknown> = {};
      for (const key of (schema.required ?? []) as string[]) {
        Object.defineProperty(out, key, {
          value: sampleValue(doc, propertySchema(schema, key), choose, sizes),
          enumerable: true,
          writable: true,
          configurable: true,
        });
      }
      return out;
    }
    case 'integer':
      return choose.int(
        (schema.minimum as number | undefined) ?? -(2 ** 31),
        (schema.maximum as number | undefined) ?? 2 ** 31 - 1,
      );
    case 'number':
      return choose.float(
        (schema.minimum as number | undefined) ?? -Number.MAX_VALUE,
        (schema.maximum as number | undefined) ?? Number.MAX_VALUE,
      );
    case 'boolean':
      return choose.bool();
    default:
      throw new Error(`cannot sample ${JSON.stringify(schema)}`);
  }
}

/** The schema of property `key`: under properties, or the patternProperties entry that matches it. */
function propertySchema(schema: Schema, key: string): Schema {
  const properties = (schema.properties ?? {}) as Record<string, Schema>;
  if (Object.hasOwn(properties, key)) return properties[key]!;
  for (const [pattern, value] of Object.entries((schema.patternProperties ?? {}) as Record<string, Schema>)) {
    if (new RegExp(pattern, 'u').test(key)) return value;
  }
  throw new Error(`no schema for property ${key}`);
}

/** A batch of `n` values of a batch array's items (the request's instances, or one input's column). */
function batchOf(
  doc: OpenApi,
  raw: Schema,
  n: number,
  choose: Choices,
  sizes: Map<Schema, number>,
): unknown[] {
  const schema = resolve(doc, raw);
  if (schema.type !== 'array') throw new Error(`a batch is an array: ${JSON.stringify(schema)}`);
  const max = Math.min(schema.maxItems as number, n);
  return Array.from({ length: Math.max(schema.minItems as number, max) }, () =>
    sampleValue(doc, schema.items as Schema, choose, sizes),
  );
}

/** A predict request in `format`, built from the document's RowPredictRequest or ColumnarPredictRequest. */
export function sampleRequest(
  doc: OpenApi,
  format: 'row' | 'columnar',
  choose: Choices,
): Record<string, unknown> {
  const schema = componentSchema(doc, format === 'row' ? 'RowPredictRequest' : 'ColumnarPredictRequest');
  const properties = schema.properties as Record<string, Schema>;
  const key = format === 'row' ? 'instances' : 'inputs';
  const sizes = new Map<Schema, number>();
  const batch = choose.size(1, MAX_BATCH);
  let body = resolve(doc, properties[key]!);
  const alternatives = body.oneOf as Schema[] | undefined;
  if (alternatives) body = resolve(doc, alternatives[choose.pick(alternatives.length)]!);
  let value: unknown;
  if (body.type === 'array') {
    value = batchOf(doc, body, batch, choose, sizes);
  } else {
    const columns: Record<string, unknown> = {};
    for (const name of body.required as string[]) {
      Object.defineProperty(columns, name, {
        value: batchOf(doc, propertySchema(body, name), batch, choose, sizes),
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
    value = columns;
  }
  const request: Record<string, unknown> = { [key]: value };
  const signatureName = properties.signature_name as Schema;
  if (choose.bool()) request.signature_name = sampleValue(doc, signatureName, choose, sizes);
  return request;
}

/** Seeded choices: sizes and integers at their bounds half the time, floats within ±`floatRange` of 0. */
export function seededChoices(seed: number, floatRange = 10): Choices {
  let state = seed >>> 0 || 1;
  const next = () => {
    // mulberry32
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const between = (min: number, max: number) => min + Math.floor(next() * (max - min + 1));
  return {
    size: (min, max) => (next() < 0.5 ? (next() < 0.5 ? min : max) : between(min, max)),
    int: (min, max) => {
      const r = next();
      return r < 0.25 ? min : r < 0.5 ? max : between(Math.max(min, -1000), Math.min(max, 1000));
    },
    float: (min, max) => {
      const lo = Math.max(min, -floatRange);
      const hi = Math.min(max, floatRange);
      return lo + next() * (hi - lo);
    },
    bool: () => next() < 0.5,
    pick: (n) => Math.floor(next() * n),
  };
}

/** One Ajv for all documents: making one compiles the 2020-12 meta-schema, which costs more than a document. */
let shared: Ajv2020 | undefined;
let documents = 0;

/**
 * A validator for a document's component schemas, by name, in an Ajv for JSON Schema 2020-12
 * (strict: a keyword it does not know, or a malformed schema, throws). OpenAPI's `format`s float
 * and int32 are known, as annotations. Answers undefined when `value` fits, else Ajv's errors.
 */
export function schemaValidator(doc: OpenApi): (name: string, value: unknown) => string | undefined {
  // strictRequired is a lint, not JSON Schema: a name starting with `$` is required under patternProperties.
  shared ??= new Ajv2020({ strict: true, strictRequired: false, formats: { float: true, int32: true } });
  const ajv = shared;
  const id = `https://aiaas.test/openapi-${++documents}.json`;
  const defs = JSON.parse(
    JSON.stringify(doc.components.schemas).replaceAll('"#/components/schemas/', '"#/$defs/'),
  ) as Record<string, Schema>;
  ajv.addSchema({ $id: id, $defs: defs });
  return (name, value) => {
    const validate = ajv.getSchema(`${id}#/$defs/${name}`);
    if (!validate) throw new Error(`no schema ${name}`);
    return validate(value) ? undefined : ajv.errorsText(validate.errors);
  };
}
