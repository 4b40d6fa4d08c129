/**
 * For any signature the JSON API serves, the OpenAPI document is valid and a request built from
 * its schemas alone (sizes at and within minItems/maxItems, values at and within the bounds,
 * float32's extremes included) parses with parsePredictRequest into the shapes the schemas say;
 * and the answer answers.ts writes for it fits the response schemas.
 */
import { Validator } from '@seriousme/openapi-schema-validator';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { jsonText, type OutputTensor, predictResponse } from '../../functions/inference/answers.js';
import { parseJsonWithNonFinite } from '../../functions/inference/json.js';
import { openApiDocument } from '../../functions/inference/openapi.js';
import { type Limits, parsePredictRequest } from '../../functions/inference/predict-request.js';
import { ValidationError } from '../../functions/shared/errors.js';
import type { Signature, TensorSpec } from '../../functions/shared/registry/types.js';
import { type Choices, sampleRequest, schemaValidator } from '../support/openapi-sample.js';

const FLOAT32_MAX = 3.4028234663852886e38;

/** Input and output names: plain ones, and ones that are traps in JSON, paths or JavaScript objects. */
const tensorName = fc.oneof(
  fc.stringMatching(/^[a-z][a-z0-9_]{0,11}$/),
  fc.constantFrom('constructor', 'toString', 'dense_1/BiasAdd:0', 'a b', '"q"', 'ü', '$ref'),
);
const dim = fc.oneof(fc.constant(null), fc.constant(-1), fc.integer({ min: 1, max: 4 }));
const inputSpec = fc
  .record({
    dtype: fc.constantFrom('float32', 'int32', 'bool') as fc.Arbitrary<TensorSpec['dtype']>,
    // The batch dimension: free, or fixed by the model (the JSON API ignores it, as TF Serving does).
    batch: fc.oneof(fc.constant(null), fc.integer({ min: 1, max: 3 })),
    inner: fc.array(dim, { maxLength: 3 }),
    vocabularySize: fc.option(fc.integer({ min: 1, max: 50 }), { nil: undefined }),
  })
  .map(({ dtype, batch, inner, vocabularySize }) => ({
    dtype,
    shape: [batch, ...inner],
    ...(vocabularySize !== undefined && dtype !== 'bool' ? { vocabularySize } : {}),
  }));
const outputSpec = fc.record({
  dtype: fc.constantFrom('float32', 'int32', 'bool') as fc.Arbitrary<TensorSpec['dtype']>,
  shape: fc.array(dim, { maxLength: 4 }),
});
const named = <T extends object>(spec: fc.Arbitrary<T>) =>
  fc
    .uniqueArray(fc.tuple(tensorName, spec), { minLength: 1, maxLength: 3, selector: ([name]) => name })
    .map((pairs) => pairs.map(([name, rest]) => ({ name, ...rest }) as unknown as TensorSpec));
const signature: fc.Arbitrary<Signature> = fc.record({
  inputs: named(inputSpec),
  outputs: named(outputSpec),
});
const limits: fc.Arbitrary<Limits> = fc.record({
  maxInstances: fc.integer({ min: 1, max: 5 }),
  maxElements: fc.constant(1_000_000),
  maxBodyBytes: fc.constant(6 * 1024 * 1024),
});

/** Choices drawn by fast-check (so a failure shrinks): bounds often, anything between too. */
function drawn(g: fc.GeneratorValue): Choices {
  return {
    size: (min, max) => g(fc.integer, { min, max }),
    int: (min, max) => g(() => fc.oneof(fc.constant(min), fc.constant(max), fc.integer({ min, max }))),
    float: (min, max) =>
      g(() =>
        fc.oneof(
          fc.constant(min),
          fc.constant(max),
          fc.double({ min, max, noNaN: true }),
          fc.double({ min: Math.max(min, -10), max: Math.min(max, 10), noNaN: true }),
        ),
      ),
    bool: () => g(fc.boolean),
    pick: (n) => g(fc.integer, { min: 0, max: n - 1 }),
  };
}

/** An output of `spec` for `batch` instances, free dimensions and values drawn by fast-check. */
function outputTensor(spec: TensorSpec, batch: number, g: fc.GeneratorValue): OutputTensor {
  const shape =
    spec.shape.length === 0
      ? []
      : [
          batch,
          ...spec.shape.slice(1).map((d) => (d === null || d < 0 ? g(fc.integer, { min: 1, max: 3 }) : d)),
        ];
  const size = shape.reduce((a, b) => a * b, 1);
  const value =
    spec.dtype === 'int32'
      ? () => fc.integer()
      : spec.dtype === 'bool'
        ? () => fc.integer({ min: 0, max: 1 })
        : () => fc.oneof(fc.integer({ min: -5, max: 5 }), fc.double({ min: -1e6, max: 1e6, noNaN: true }));
  const values = Array.from({ length: size }, () => g(value));
  return { name: spec.name, dtype: spec.dtype, shape, values };
}

let validator: Validator;
beforeAll(() => {
  validator = new Validator();
});

describe('the OpenAPI document of any signature', () => {
  it('is valid, and a request built from its schemas parses into the shapes they give', async () => {
    await fc.assert(
      fc.asyncProperty(
        signature,
        limits,
        fc.constantFrom('row', 'columnar'),
        fc.gen(),
        async (sig, lim, format, g) => {
          const doc = openApiDocument({ model: 'm', alias: 'live', version: 7, signature: sig, limits: lim });
          const result = await validator.validate(structuredClone(doc));
          expect(result.errors ?? []).toEqual([]);
          const check = schemaValidator(doc as never);
          const request = sampleRequest(doc as never, format, drawn(g));
          expect(check('PredictRequest', request)).toBeUndefined();
          const parsed = parsePredictRequest(JSON.stringify(request), sig, lim);
          expect(parsed.format).toBe(format);
          expect(parsed.inputs.map((t) => t.name)).toEqual(sig.inputs.map((s) => s.name));
          for (const [k, tensor] of parsed.inputs.entries()) {
            const spec = sig.inputs[k]!;
            expect(tensor.shape.length).toBe(spec.shape.length);
            spec.shape.slice(1).forEach((d, i) => {
              if (d !== null && d >= 0) expect(tensor.shape[i + 1]).toBe(d);
            });
            expect(tensor.shape[0]).toBe(parsed.batch);
          }
          expect(parsed.batch).toBeGreaterThanOrEqual(1);
          expect(parsed.batch).toBeLessThanOrEqual(lim.maxInstances);
          // The answer answers.ts writes for outputs of the signature fits the response schema.
          const outputs = sig.outputs.map((spec) => outputTensor(spec, parsed.batch, g));
          if (format === 'row' && sig.outputs.some((o) => o.shape.length === 0)) {
            // Documented: an unbatched output cannot be answered per instance.
            expect(() => predictResponse(parsed, outputs, 'm', 7)).toThrow(ValidationError);
            return;
          }
          const answer = parseJsonWithNonFinite(jsonText(predictResponse(parsed, outputs, 'm', 7)));
          expect(
            check(format === 'row' ? 'RowPredictResponse' : 'ColumnarPredictResponse', answer),
          ).toBeUndefined();
          expect(check('PredictResponse', answer)).toBeUndefined();
        },
      ),
      { numRuns: 100 },
    );
  });

  it('bounds every value as the function does: just past a bound is refused by the schema and the function', () => {
    const cases: [TensorSpec, number, number][] = [
      [{ name: 'x', dtype: 'float32', shape: [null] }, FLOAT32_MAX, FLOAT32_MAX * 1.0000001],
      [{ name: 'x', dtype: 'float32', shape: [null] }, -FLOAT32_MAX, -FLOAT32_MAX * 1.0000001],
      [{ name: 'x', dtype: 'int32', shape: [null] }, 2 ** 31 - 1, 2 ** 31],
      [{ name: 'x', dtype: 'int32', shape: [null] }, -(2 ** 31), -(2 ** 31) - 1],
      [{ name: 'x', dtype: 'int32', shape: [null], vocabularySize: 9 }, 8, 9],
      [{ name: 'x', dtype: 'float32', shape: [null], vocabularySize: 9 }, 0, -1],
    ];
    for (const [spec, inside, outside] of cases) {
      const sig: Signature = { inputs: [spec], outputs: [{ name: 'y', dtype: 'float32', shape: [null] }] };
      const lim: Limits = { maxInstances: 10, maxElements: 100, maxBodyBytes: 1 << 20 };
      const doc = openApiDocument({ model: 'm', alias: 'live', version: 1, signature: sig, limits: lim });
      const check = schemaValidator(doc as never);
      for (const format of ['row', 'columnar']) {
        const body = (v: number) => (format === 'row' ? { instances: [v] } : { inputs: [v] });
        const what = `${format} ${JSON.stringify(spec)}`;
        expect(check('PredictRequest', body(inside)), what).toBeUndefined();
        expect(() => parsePredictRequest(JSON.stringify(body(inside)), sig, lim), what).not.toThrow();
        expect(check('PredictRequest', body(outside)), what).toBeDefined();
        expect(() => parsePredictRequest(JSON.stringify(body(outside)), sig, lim), what).toThrow();
      }
    }
  });
});
