import { describe, expect, it } from 'vitest';
import {
  DEFAULT_LIMITS,
  decodeBody,
  nest,
  parsePredictRequest,
  predictResponse,
  route,
} from '../../functions/inference/api.js';
import { configFromEnv } from '../../functions/inference/config.js';
import { parseJsonWithNonFinite } from '../../functions/inference/json.js';
import {
  MethodNotAllowedError,
  NotFoundError,
  PayloadTooLargeError,
  ValidationError,
} from '../../functions/shared/errors.js';
import type { Signature } from '../../functions/shared/registry/types.js';

const single: Signature = {
  inputs: [{ name: 'features', dtype: 'float32', shape: [null, 3] }],
  outputs: [{ name: 'probability', dtype: 'float32', shape: [null, 1] }],
};
const multi: Signature = {
  inputs: [
    { name: 'a', dtype: 'float32', shape: [null, 2] },
    { name: 'b', dtype: 'int32', shape: [null] },
  ],
  outputs: [
    { name: 'x', dtype: 'float32', shape: [null, 1] },
    { name: 'y', dtype: 'float32', shape: [null, 2] },
  ],
};

function rejects(text: string, signature: Signature = single, limits = DEFAULT_LIMITS): string {
  try {
    parsePredictRequest(text, signature, limits);
  } catch (error) {
    expect(error).toBeInstanceOf(ValidationError);
    return (error as Error).message;
  }
  throw new Error('expected a ValidationError');
}

describe('route', () => {
  it('maps the TF Serving paths of the served model', () => {
    expect(route('POST', '/v1/models/m:predict', 'm')).toEqual({ kind: 'predict', model: 'm' });
    expect(route('POST', '/v1/models/m/versions/3:predict', 'm')).toEqual({
      kind: 'predict',
      model: 'm',
      version: 3,
    });
    expect(route('POST', '/v1/models/m/labels/live:predict', 'm')).toEqual({
      kind: 'predict',
      model: 'm',
      label: 'live',
    });
    expect(route('GET', '/v1/models/m', 'm')).toEqual({ kind: 'status', model: 'm' });
    expect(route('GET', '/v1/models/m/', 'm')).toEqual({ kind: 'status', model: 'm' });
    expect(route('GET', '/v1/models/m/metadata', 'm')).toEqual({ kind: 'metadata', model: 'm' });
    expect(route('POST', '/', 'm')).toEqual({ kind: 'predict', model: 'm' });
    expect(route('GET', '/', 'm')).toEqual({ kind: 'status', model: 'm' });
  });

  it('answers 404 for other models, unknown paths and verbs, and never reaches outside the layout', () => {
    for (const path of [
      '/v1/models/other:predict',
      '/v1/models/..%2Fother:predict',
      '/nope',
      '/v1/models/m:classify',
      '/v1/models/m/versions/0',
    ]) {
      expect(() => route('POST', path, 'm'), path).toThrow(NotFoundError);
    }
  });

  it('answers 405 with the allowed method', () => {
    expect(() => route('GET', '/v1/models/m:predict', 'm')).toThrow(MethodNotAllowedError);
    try {
      route('DELETE', '/v1/models/m', 'm');
    } catch (error) {
      expect((error as MethodNotAllowedError).allow).toEqual(['GET']);
    }
  });
});

describe('parsePredictRequest', () => {
  it('flattens row-format instances into one typed tensor', () => {
    const request = parsePredictRequest('{"instances": [[1,2,3],[4,5,6]]}', single, DEFAULT_LIMITS);
    expect(request.format).toBe('row');
    expect(request.inputs[0]!.shape).toEqual([2, 3]);
    expect([...request.inputs[0]!.values]).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('accepts the columnar form and named instances', () => {
    expect(parsePredictRequest('{"inputs": [[1,2,3]]}', single, DEFAULT_LIMITS).format).toBe('columnar');
    expect(parsePredictRequest('{"inputs": {"features": [[1,2,3]]}}', single, DEFAULT_LIMITS).batch).toBe(1);
    expect(parsePredictRequest('{"instances": [{"features": [1,2,3]}]}', single, DEFAULT_LIMITS).batch).toBe(
      1,
    );
    const m = parsePredictRequest(
      '{"instances": [{"a": [1,2], "b": 7}, {"a": [3,4], "b": 8}]}',
      multi,
      DEFAULT_LIMITS,
    );
    expect(m.inputs.map((i) => i.shape)).toEqual([[2, 2], [2]]);
    expect(m.inputs[1]!.values).toBeInstanceOf(Int32Array);
  });

  it('names the problem in every client mistake', () => {
    expect(rejects('')).toMatch(/empty/);
    expect(rejects('{"instances": [1,')).toMatch(/not valid JSON/);
    expect(rejects('[1,2,3]')).toMatch(/JSON object/);
    expect(rejects('{}')).toMatch(/needs "instances"/);
    expect(rejects('{"instances": [], "inputs": []}')).toMatch(/not both/);
    expect(rejects('{"instances": []}')).toMatch(/empty/);
    expect(rejects('{"instances": 5}')).toMatch(/must be an array/);
    expect(rejects('{"instances": [[1,2]]}')).toMatch(
      /instances\[0\] has 2 values; input "features" expects 3/,
    );
    expect(rejects('{"instances": [[1,2,3],[1,2]]}')).toMatch(/instances\[1\] has 2 values/);
    expect(rejects('{"instances": [1]}')).toMatch(/rank 1/);
    expect(rejects('{"instances": [[[1],[2],[3]]]}')).toMatch(/must be a number, got an array/);
    expect(rejects('{"instances": [[1,"x",3]]}')).toMatch(/instances\[0\]\[1\] must be a number, got "x"/);
    expect(rejects('{"instances": [[1,null,3]]}')).toMatch(/got null/);
    expect(rejects('{"instances": [[1,1e999,3]]}')).toMatch(/finite/);
    expect(rejects('{"instances": [{"a": [1,2], "b": 1.5}]}', multi)).toMatch(/32-bit integer/);
    expect(rejects('{"instances": [{"a": [1,2]}]}', multi)).toMatch(/missing input "b"/);
    expect(rejects('{"instances": [{"a": [1,2], "b": 1, "c": 2}]}', multi)).toMatch(/unknown input "c"/);
    expect(rejects('{"instances": [[1,2,3]], "signature_name": "other"}')).toMatch(/signature_name/);
    const limits = { ...DEFAULT_LIMITS, maxInstances: 2, maxElements: 5 };
    expect(rejects('{"instances": [[1,2,3],[1,2,3],[1,2,3]]}', single, limits)).toMatch(/limit is 2/);
    expect(rejects('{"instances": [[1,2,3],[1,2,3]]}', single, limits)).toMatch(/6 numbers, more than the 5/);
  });

  it('names the place of a bad value in every request form, however deep', () => {
    const image: Signature = {
      inputs: [{ name: 'pixels', dtype: 'float32', shape: [null, 2, 3] }],
      outputs: single.outputs,
    };
    expect(rejects('{"instances": [[[1,2,3],[4,5,6]], [[1,2,3],[4,"x",6]]]}', image)).toBe(
      'instances[1][1][1] must be a number, got "x"',
    );
    expect(rejects('{"instances": [[[1,2,3],[4,5,6]], [[1,2,3],[4,5]]]}', image)).toMatch(
      /^instances\[1\]\[1\] has 2 values; input "pixels" expects 3/,
    );
    expect(rejects('{"instances": [[[1,2,3],[4,5,6]], [[1,2,3],7]]}', image)).toMatch(
      /^instances\[1\]\[1\] must be an array/,
    );
    expect(rejects('{"instances": [{"pixels": [[1,2,3],[4,5,null]]}]}', image)).toBe(
      'instances[0].pixels[1][2] must be a number, got null',
    );
    expect(
      rejects('{"instances": [{"pixels": [[1,2,3],[4,5,6]]}, {"pixels": [[1,2,3],[4,true,6]]}]}', image),
    ).toBe('instances[1].pixels[1][1] must be a number, got true');
    expect(rejects('{"inputs": [[[1,2,3],[4,5,6]], [[1,2,3],[4,5,"y"]]]}', image)).toBe(
      'inputs.pixels[1][1][2] must be a number, got "y"',
    );
    expect(rejects('{"inputs": {"a": [[1,2],[3,4]], "b": [1, 2.5]}}', multi)).toBe(
      'inputs.b[1] must be a 32-bit integer for input "b", got 2.5',
    );
    expect(rejects('{"instances": [{"a": [1,2], "b": 1}, {"a": [1,"z"], "b": 1}]}', multi)).toBe(
      'instances[1].a[1] must be a number, got "z"',
    );
  });

  it('counts the number limit over all inputs of a request together', () => {
    const limits = { ...DEFAULT_LIMITS, maxElements: 5 };
    expect(rejects('{"instances": [{"a": [1,2], "b": 7}, {"a": [3,4], "b": 8}]}', multi, limits)).toMatch(
      /more than the 5 a request may hold in all its inputs/,
    );
  });

  it('refuses bodies over the size limit with 413', () => {
    expect(() => decodeBody('x'.repeat(11), false, { ...DEFAULT_LIMITS, maxBodyBytes: 10 })).toThrow(
      PayloadTooLargeError,
    );
    expect(decodeBody(Buffer.from('{"a":1}').toString('base64'), true, DEFAULT_LIMITS)).toBe('{"a":1}');
  });
});

describe('responses', () => {
  it('nests flat values into the tensor shape', () => {
    expect(nest([1, 2, 3, 4, 5, 6], [2, 3])).toEqual([
      [1, 2, 3],
      [4, 5, 6],
    ]);
    expect(nest([7], [])).toBe(7);
  });

  const sent = (answer: ReturnType<typeof predictResponse>) =>
    parseJsonWithNonFinite(answer.text()) as Record<string, unknown>;

  it('returns predictions per instance, named when there are several outputs, and the version', () => {
    const one = predictResponse(
      { format: 'row', batch: 2 },
      [{ name: 'p', shape: [2, 1], values: [0.1, 0.9] }],
      'm',
      4,
    );
    expect(sent(one)).toEqual({
      predictions: [[0.1], [0.9]],
      model_spec: { name: 'm', version: '4', signature_name: 'serving_default' },
    });
    const two = predictResponse(
      { format: 'row', batch: 2 },
      [
        { name: 'x', shape: [2, 1], values: [1, 2] },
        { name: 'y', shape: [2, 2], values: [3, 4, 5, 6] },
      ],
      'm',
      1,
    );
    expect(sent(two).predictions).toEqual([
      { x: [1], y: [3, 4] },
      { x: [2], y: [5, 6] },
    ]);
    const columnar = predictResponse(
      { format: 'columnar', batch: 2 },
      [{ name: 'p', shape: [2, 1], values: [0.1, 0.9] }],
      'm',
      4,
    );
    expect(sent(columnar).outputs).toEqual([[0.1], [0.9]]);
  });
});

describe('inference configuration', () => {
  const env = { AIAAS_BUCKET: 'b', AIAAS_MODEL: 'diabetes' };
  it('takes the fast path by default, can turn it off, and names a wrong setting', () => {
    expect(configFromEnv(env).fastPath).toBe('auto');
    expect(configFromEnv({ ...env, AIAAS_FAST_PATH: 'off' }).fastPath).toBe('off');
    expect(() => configFromEnv({ ...env, AIAAS_FAST_PATH: 'fast' })).toThrow(
      'AIAAS_FAST_PATH must be auto or off, got "fast"',
    );
  });
});
