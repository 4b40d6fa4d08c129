/**
 * TF Serving's JSON as TF Serving reads and writes it, one test per documented point. Each test
 * names its reference in tensorflow/serving: g3doc/api_rest.md (the REST API docs),
 * util/json_tensor.cc and util/json_tensor_test.cc (the JSON <-> tensor code and its tests),
 * model_servers/http_rest_api_handler.cc and http_rest_api_util.cc (routing).
 */
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  DEFAULT_LIMITS,
  metadataResponse,
  parsePredictRequest,
  predictResponse,
  route,
} from '../../functions/inference/api.js';
import { parseJsonWithNonFinite, parseRequestJson, writeFloat } from '../../functions/inference/json.js';
import { NotFoundError, ValidationError } from '../../functions/shared/errors.js';
import type { Signature } from '../../functions/shared/registry/types.js';
import type { TfRuntime } from '../../functions/shared/runtime/types.js';
import { createRuntime } from '../../layers/tfjs-runtime/runtime.js';
import { serveModel } from '../support/serve-model.js';

const floats: Signature = {
  inputs: [{ name: 'x', dtype: 'float32', shape: [null, 3] }],
  outputs: [{ name: 'y', dtype: 'float32', shape: [null, 1] }],
};
const mixed: Signature = {
  inputs: [
    { name: 'f', dtype: 'float32', shape: [null, 2] },
    { name: 'i', dtype: 'int32', shape: [null] },
  ],
  outputs: floats.outputs,
};

function rejects(text: string, signature: Signature = floats): string {
  try {
    parsePredictRequest(text, signature, DEFAULT_LIMITS);
  } catch (error) {
    expect(error).toBeInstanceOf(ValidationError);
    return (error as Error).message;
  }
  throw new Error(`expected a ValidationError for ${text}`);
}

const spec = (version = 1) =>
  `"model_spec":{"name":"m","version":"${version}","signature_name":"serving_default"}`;

describe('NaN, Infinity and -Infinity in requests', () => {
  it('takes the tokens for float inputs, row and columnar (api_rest.md "JSON conformance"; json_tensor_test.cc MultipleNamedTensor)', () => {
    const row = parsePredictRequest(
      '{"instances": [[1.0, NaN, Infinity], [-Infinity, 0, 2]]}',
      floats,
      DEFAULT_LIMITS,
    );
    expect([...row.inputs[0]!.values]).toEqual([1, Number.NaN, Infinity, -Infinity, 0, 2]);
    const columnar = parsePredictRequest(
      '{"inputs": {"f": [[NaN, -Infinity]], "i": [3]}, "signature_name": "serving_default"}',
      mixed,
      DEFAULT_LIMITS,
    );
    expect([...columnar.inputs[0]!.values]).toEqual([Number.NaN, -Infinity]);
    // Whitespace, nesting and strings around the tokens are read as JSON.parse reads them.
    const named = parsePredictRequest(
      ' {"instances":[ {"i" : 1, "f":[ Infinity ,NaN]} ], "note": "NaN, [Infinity]"} ',
      mixed,
      DEFAULT_LIMITS,
    );
    expect([...named.inputs[0]!.values]).toEqual([Infinity, Number.NaN]);
  });

  it('refuses them where TF Serving does: int32 and bool inputs, inside strings, number literals too large for a double (json_tensor.cc AddValueToTensor; rapidjson)', () => {
    expect(rejects('{"instances": [{"f": [1, 2], "i": NaN}]}', mixed)).toBe(
      'instances[0].i must be a 32-bit integer for input "i", got NaN',
    );
    expect(rejects('{"instances": [["NaN", 1, 2]]}')).toBe('instances[0][0] must be a number, got "NaN"');
    expect(rejects('{"instances": [[1e999, 1, 2]]}')).toMatch(
      /^instances\[0\]\[0\] is beyond float32's range/,
    );
    expect(rejects('{"instances": [[NaN, 1e999, 2]]}')).toMatch(/not valid JSON: .*too large for a double/);
    // A finite number beyond float32 would silently become Infinity (json_tensor.cc IsLosslessDecimal).
    expect(rejects('{"instances": [[1, 3.5e38, 2]]}')).toMatch(
      /^instances\[0\]\[1\] is beyond float32's range/,
    );
    // Only the documented spellings, and only as values.
    for (const text of [
      '[[nan, 1, 2]]',
      '[[inf, 1, 2]]',
      '[[-NaN1, 1, 2]]',
      '[[Infinity1, 1, 2]]',
      '[[+Infinity, 1, 2]]',
    ]) {
      expect(rejects(`{"instances": ${text}}`), text).toMatch(/not valid JSON/);
    }
    expect(rejects('{NaN: [[1, 2, 3]]}')).toMatch(/not valid JSON/);
  });

  it('reads a body with tokens as JSON.parse reads JSON: keys, escapes, __proto__, depth without recursion', () => {
    expect(
      parseJsonWithNonFinite('{"a\\n\\u00e9": [NaN, {"__proto__": [Infinity]}], "b": -Infinity}'),
    ).toEqual(
      JSON.parse('{"a\\n\\u00e9": ["N", {"__proto__": ["I"]}], "b": "-I"}', (_k, v) =>
        v === 'N' ? Number.NaN : v === 'I' ? Infinity : v === '-I' ? -Infinity : v,
      ),
    );
    const parsed = parseJsonWithNonFinite('{"__proto__": {"polluted": NaN}}') as Record<string, unknown>;
    expect(Object.getPrototypeOf(parsed)).toBe(Object.prototype);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    const deep = `{"x": ${'['.repeat(300_000)}NaN${']'.repeat(300_000)}}`;
    expect(parseRequestJson(deep).nonFinite).toBe(true);
    for (const bad of [
      '[NaN,]',
      '[NaN',
      '{"a": NaN,}',
      '{"a" NaN}',
      '[NaN] x',
      '["\u0001", NaN]',
      '[NaN, "\\x"]',
    ]) {
      expect(() => parseJsonWithNonFinite(bad), bad).toThrow(SyntaxError);
    }
    expect(parseRequestJson('{"a": 1}')).toEqual({ value: { a: 1 }, nonFinite: false });
  });
});

describe('floats in answers', () => {
  const send = (values: number[], shape: number[], dtype?: string, format: 'row' | 'columnar' = 'row') =>
    predictResponse(
      { format, batch: shape[0]! },
      [{ name: 'y', shape, values, ...(dtype ? { dtype } : {}) }],
      'm',
      1,
    ).text();

  it('writes non-finite floats as NaN, Infinity, -Infinity, never null (json_tensor_test.cc FromJsonSingleFloatTensorNonFinite)', () => {
    expect(send([Number.NaN, Infinity, 3, -Infinity], [2, 2])).toBe(
      `{"predictions":[[NaN,Infinity],[3.0,-Infinity]],${spec()}}`,
    );
  });

  it('writes whole floats with a decimal point, so clients read floats (json_tensor.cc WriteDecimal; json_tensor_test.cc FromJsonSingleFloatTensorSixDigitPrecision)', () => {
    const values = new Float32Array([
      9000000, 999999, 0.5, 0.0003, 0.00003, 555557.5, 0, -0, -4, 1e21, 3.4e38,
    ]);
    const text = send([...values], [values.length], 'float32', 'columnar');
    const tokens = text.slice('{"outputs":['.length, text.indexOf(']'));
    for (const token of tokens.split(',')) expect(token, token).toMatch(/[.e]/);
    expect(tokens.split(',').slice(0, 3)).toEqual(['9000000.0', '999999.0', '0.5']);
    expect(tokens.split(',').slice(6, 9)).toEqual(['0.0', '-0.0', '-4.0']);
    // Read back, every value is the float32 the model computed.
    expect((parseJsonWithNonFinite(text) as { outputs: number[] }).outputs.map(Math.fround)).toEqual([
      ...values,
    ]);
    expect(writeFloat(1e21)).toBe('1e+21');
  });

  it('writes int32 outputs as integers and bool outputs as true/false (json_tensor.cc AddSingleValueAndAdvance; json_tensor_test.cc FromJsonSingleTensor)', () => {
    expect(send([1, 2, 3, 4], [2, 2], 'int32')).toBe(`{"predictions":[[1,2],[3,4]],${spec()}}`);
    expect(send([1, 0], [2], 'bool')).toBe(`{"predictions":[true,false],${spec()}}`);
  });

  it('writes several outputs per instance (row) or per name (columnar) (json_tensor_test.cc FromJsonMultipleNamedTensors)', () => {
    const outputs = [
      { name: 'float_tensor', shape: [2, 1], values: [1, 2] },
      { name: 'int_tensor', dtype: 'int32', shape: [2, 2], values: [1, 2, 3, 4] },
      { name: 'double_scalar_tensor', shape: [2], values: [8, 9] },
    ];
    expect(predictResponse({ format: 'row', batch: 2 }, outputs, 'm', 1).text()).toBe(
      `{"predictions":[{"float_tensor":[1.0],"int_tensor":[1,2],"double_scalar_tensor":8.0},{"float_tensor":[2.0],"int_tensor":[3,4],"double_scalar_tensor":9.0}],${spec()}}`,
    );
    expect(predictResponse({ format: 'columnar', batch: 2 }, outputs, 'm', 1).text()).toBe(
      `{"outputs":{"float_tensor":[[1.0],[2.0]],"int_tensor":[[1,2],[3,4]],"double_scalar_tensor":[8.0,9.0]},${spec()}}`,
    );
    // Outputs batched differently cannot be answered per instance (json_tensor_test.cc
    // FromJsonMultipleNamedTensorsErrors: "inconsistent batch size").
    expect(() =>
      predictResponse(
        { format: 'row', batch: 2 },
        [outputs[0]!, { name: 'z', shape: [1], values: [0] }],
        'm',
        1,
      ),
    ).toThrow(/not batched like output "float_tensor".*columnar/);
    // A scalar output has no instances either (json_tensor_test.cc FromJsonSingleTensorErrors: "no shape information").
    expect(() =>
      predictResponse({ format: 'row', batch: 1 }, [{ name: 'z', shape: [], values: [1] }], 'm', 1),
    ).toThrow(/"z" is a scalar/);
    expect(
      predictResponse(
        { format: 'columnar', batch: 1 },
        [{ name: 'z', shape: [], values: [1] }],
        'm',
        1,
      ).text(),
    ).toBe(`{"outputs":1.0,${spec()}}`);
  });
});

describe('floats in answers, whatever the values (property)', () => {
  it('writes every float with a decimal point, an exponent or as a token, and reads back the same float32 values', () => {
    const float = fc.oneof(
      fc.float(),
      fc.integer({ min: -1000, max: 1000 }).map(Math.fround),
      fc.constantFrom(0, -0, Number.NaN, Infinity, -Infinity, 1e21, 3.4e38),
    );
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 1, max: 4 }),
        fc.boolean(),
        fc.infiniteStream(float),
        (rows, width, columnar, stream) => {
          const values = new Float32Array(stream.take(rows * width));
          const text = predictResponse(
            { format: columnar ? 'columnar' : 'row', batch: rows },
            [{ name: 'y', shape: [rows, width], values }],
            'm',
            1,
          ).text();
          const tokens = text.slice(text.indexOf('[') + 2, text.lastIndexOf(']') - 1).split(/\],?\[|,/);
          expect(tokens).toHaveLength(values.length);
          for (const token of tokens)
            expect(token).toMatch(
              /^(-?[0-9]+\.[0-9]+(e[+-][0-9]+)?|-?[0-9]+e[+-][0-9]+|-?[0-9]\.?[0-9]*e[+-][0-9]+|NaN|-?Infinity)$/,
            );
          const back = (parseJsonWithNonFinite(text) as Record<string, number[][]>)[
            columnar ? 'outputs' : 'predictions'
          ]!;
          expect(Float32Array.from(back.flat())).toEqual(values);
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe('through the handler, on tfjs and the fast path', () => {
  let runtime: TfRuntime;
  beforeAll(async () => {
    runtime = await createRuntime('cpu');
  });

  it('answers NaN in, NaN out; whole floats as 4.0; int32 outputs as integers', async () => {
    const { tf, layers } = runtime;
    for (const fastPath of ['auto', 'off'] as const) {
      const dense = layers.layers.dense({ inputShape: [2], units: 1 });
      const model = layers.sequential({ layers: [dense] });
      dense.setWeights([tf.tensor2d([[1], [1]]), tf.tensor1d([0])]);
      const served = await serveModel(runtime, model, { fastPath });
      const res = await served.predict('{"instances": [[1, 3], [NaN, 1], [Infinity, 1], [-Infinity, 0]]}');
      expect([res.statusCode, res.body]).toEqual([
        200,
        `{"predictions":[[4.0],[NaN],[Infinity],[-Infinity]],${spec()}}`,
      ]);
      expect(served.errors).toEqual([]);
    }
    // An int32 output (a model that casts to int32: tfjs's own dtype, kept in the answer).
    const input = layers.input({ shape: [2], dtype: 'int32', name: 'ids' });
    const out = layers.layers
      .embedding({ inputDim: 4, outputDim: 1, embeddingsInitializer: 'ones' })
      .apply(input);
    const served = await serveModel(runtime, layers.model({ inputs: input, outputs: out as never }));
    const res = await served.predict('{"instances": [[0, 3]]}');
    expect(res.body).toBe(`{"predictions":[[[1.0],[1.0]]],${spec()}}`);
  });
});

describe('signature_name, versions and instances as TF Serving reads them', () => {
  it('takes "signature_name": "" as the default signature (http_rest_api_handler.cc GetInfoMap)', () => {
    expect(
      parsePredictRequest('{"signature_name": "", "instances": [[1, 2, 3]]}', floats, DEFAULT_LIMITS).batch,
    ).toBe(1);
    expect(rejects('{"signature_name": "other", "instances": [[1, 2, 3]]}')).toBe(
      'Unknown signature_name "other"; this model has "serving_default"',
    );
    // json_tensor_test.cc SingleUnnamedTensorErrors: "'signature_name' key must be a string value".
    expect(rejects('{"signature_name": 5, "instances": [[1, 2, 3]]}')).toBe(
      'signature_name must be a string, got 5',
    );
    expect(rejects('{"signature_name": null, "instances": [[1, 2, 3]]}')).toBe(
      'signature_name must be a string, got null',
    );
  });

  it('reads /versions/01 as version 1 (http_rest_api_util.cc: (\\d+) then SimpleAtoi)', () => {
    expect(route('POST', '/v1/models/m/versions/01:predict', 'm')).toEqual({
      kind: 'predict',
      model: 'm',
      version: 1,
    });
    expect(route('GET', '/v1/models/m/versions/0007/metadata', 'm')).toEqual({
      kind: 'metadata',
      model: 'm',
      version: 7,
    });
    expect(route('GET', `/v1/models/m/versions/${'0'.repeat(10_000)}12`, 'm')).toEqual({
      kind: 'status',
      model: 'm',
      version: 12,
    });
    for (const path of [
      '/v1/models/m/versions/0',
      '/v1/models/m/versions/00',
      '/v1/models/m/versions/+1',
      '/v1/models/m/versions/1x',
    ]) {
      expect(() => route('GET', path, 'm'), path).toThrow(NotFoundError);
    }
  });

  it('refuses a mix of plain lists and objects across instances (json_tensor.cc FillTensorMapFromInstancesList; json_tensor_test.cc MultipleNamedTensorErrors)', () => {
    expect(rejects('{"instances": [[1, 2, 3], {"x": [1, 2, 3]}]}')).toBe(
      'instances[1] is an object but instances[0] is not: instances are all objects keyed by input name or all bare values',
    );
    expect(rejects('{"instances": [{"x": [1, 2, 3]}, [1, 2, 3]]}')).toBe(
      'instances[1] is an array but instances[0] is an object: instances are all objects keyed by input name or all bare values',
    );
    expect(rejects('{"instances": [[1, 2], 3]}', mixed)).toMatch(
      /^instances\[0\] must be an object keyed by input name/,
    );
    // Each form alone is fine.
    expect(
      parsePredictRequest('{"instances": [{"x": [1, 2, 3]}, {"x": [4, 5, 6]}]}', floats, DEFAULT_LIMITS)
        .batch,
    ).toBe(2);
    expect(parsePredictRequest('{"instances": [[1, 2, 3], [4, 5, 6]]}', floats, DEFAULT_LIMITS).batch).toBe(
      2,
    );
  });
});

describe('the documented extensions stay', () => {
  it('names the model and version in every predict answer (model_spec) and adds aiaas details to metadata', () => {
    const text = predictResponse(
      { format: 'row', batch: 1 },
      [{ name: 'y', shape: [1, 1], values: [0.5] }],
      'm',
      3,
    ).text();
    expect(text).toBe(`{"predictions":[[0.5]],${spec(3)}}`);
    const metadata = metadataResponse('m', 3, floats, { alias: 'live', runtime: 'fast-path' });
    expect(metadata.model_spec).toEqual({ name: 'm', signature_name: '', version: '3' });
    expect(metadata.aiaas).toEqual({ alias: 'live', runtime: 'fast-path' });
    expect(Object.keys(metadata.metadata.signature_def.signature_def)).toEqual(['serving_default']);
  });
});
