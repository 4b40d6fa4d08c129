/**
 * Requests that passed validation and then threw (inside tfjs, or while formatting an error) were
 * answered 500. Each is now a 400 that names the problem, or a correct answer, through the real
 * handler on an in-memory registry: tfjs on the cpu backend, and the fast path where it applies.
 */
import type { io } from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseJsonWithNonFinite } from '../../functions/inference/json.js';
import type { TfRuntime } from '../../functions/shared/runtime/types.js';
import { createRuntime } from '../../layers/tfjs-runtime/runtime.js';
import { serveModel } from '../support/serve-model.js';

let runtime: TfRuntime;
beforeAll(async () => {
  runtime = await createRuntime('cpu');
});

const body = (res: { body: string }) => parseJsonWithNonFinite(res.body) as Record<string, unknown>;

describe('a deeply nested value echoed in an error', () => {
  it('answers 400, not a stack overflow, for a signature_name nested 200,000 deep', async () => {
    const { layers } = runtime;
    const served = await serveModel(
      runtime,
      layers.sequential({ layers: [layers.layers.dense({ inputShape: [3], units: 1 })] }),
    );
    const deep = (open: string, close: string) =>
      `{"instances": [[1,2,3]], "signature_name": ${open.repeat(200_000)}1${close.repeat(200_000)}}`;
    for (const text of [deep('[', ']'), deep('{"a":', '}')]) {
      const res = await served.predict(text);
      expect(res.statusCode).toBe(400);
      expect(body(res).error).toMatch(/^signature_name must be a string, got an (array|object)$/);
    }
    expect(served.errors).toEqual([]);
  });
});

describe('ids outside an Embedding layer', () => {
  // util/json_tensor.cc has no such check: TF's own Gather answers INVALID_ARGUMENT (a 400) for an
  // index out of range; tfjs throws instead, so aiaas checks the ids before tfjs sees them.
  async function embedding(dtype: 'int32' | 'float32') {
    const { layers } = runtime;
    const input = layers.input({ shape: [3], dtype, name: 'ids' });
    const embedded = layers.layers.embedding({ inputDim: 5, outputDim: 2 }).apply(input);
    const flat = layers.layers.flatten().apply(embedded);
    const out = layers.layers.dense({ units: 1 }).apply(flat);
    return serveModel(runtime, layers.model({ inputs: input, outputs: out as never }));
  }

  it('records the vocabulary in the signature', async () => {
    const served = await embedding('int32');
    expect(served.signature.inputs[0]).toEqual({
      name: 'ids',
      dtype: 'int32',
      shape: [null, 3],
      vocabularySize: 5,
    });
  });

  it('answers 400 naming the instance and the range for an id too large or negative (int32 input)', async () => {
    const served = await embedding('int32');
    expect((await served.predict('{"instances": [[0, 4, 2]]}')).statusCode).toBe(200);
    const tooLarge = await served.predict('{"instances": [[0, 4, 2], [1, 5, 0]]}');
    expect(tooLarge.statusCode).toBe(400);
    expect(body(tooLarge).error).toBe(
      'instances[1][1] is 5, not an id of input "ids": it feeds an Embedding of 5 entries, so ids are integers from 0 to 4',
    );
    const negative = await served.predict('{"inputs": {"ids": [[-1, 0, 0]]}}');
    expect(negative.statusCode).toBe(400);
    expect(body(negative).error).toMatch(/^inputs\.ids\[0\]\[0\] is -1, not an id .* from 0 to 4$/);
    expect(served.errors).toEqual([]);
  });

  it('checks a float input the way tfjs casts it (truncated), and refuses NaN', async () => {
    const served = await embedding('float32');
    expect(served.signature.inputs[0]!.vocabularySize).toBe(5);
    expect((await served.predict('{"instances": [[0, 4.5, -0.5]]}')).statusCode).toBe(200);
    for (const bad of [
      '[[0, 5, 1]]',
      '[[0, -1, 1]]',
      '[[0, 1e30, 1]]',
      '[[0, NaN, 1]]',
      '[[Infinity, 0, 1]]',
    ]) {
      const res = await served.predict(`{"instances": ${bad}}`);
      expect(res.statusCode, bad).toBe(400);
      expect(body(res).error, bad).toMatch(/^instances\[0\]\[[01]\] .*(from 0 to 4|float32's range)/);
    }
    expect(served.errors).toEqual([]);
  });

  it('finds an Embedding behind layers that only move values (Reshape, Flatten)', async () => {
    const { layers } = runtime;
    const model = layers.sequential({
      layers: [
        layers.layers.reshape({ inputShape: [2, 2], targetShape: [4] }),
        layers.layers.embedding({ inputDim: 3, outputDim: 2 }),
        layers.layers.flatten(),
        layers.layers.dense({ units: 1 }),
      ],
    });
    const served = await serveModel(runtime, model);
    expect(served.signature.inputs[0]!.vocabularySize).toBe(3);
    expect((await served.predict('{"instances": [[[0, 1], [2, 3]]]}')).statusCode).toBe(400);
    expect((await served.predict('{"instances": [[[0, 1], [2, 2]]]}')).statusCode).toBe(200);
  });
});

describe('a model that takes one number per instance (input shape [-1])', () => {
  // TF Serving's own example (g3doc/api_rest.md, "Example"): half_plus_three answers
  // {"instances": [1.0, 2.0, 5.0]} with {"predictions": [3.5, 4.0, 5.5]}.
  function halfPlusThreeLayers() {
    const { tf, layers } = runtime;
    const input = layers.input({ batchShape: [null], name: 'x' });
    const column = layers.layers.reshape({ targetShape: [1] }).apply(input);
    const dense = layers.layers.dense({ units: 1, name: 'half_plus_three' });
    const out = layers.layers.reshape({ targetShape: [] }).apply(dense.apply(column));
    const model = layers.model({ inputs: input, outputs: out as never });
    dense.setWeights([tf.tensor2d([[0.5]]), tf.tensor1d([3])]);
    return model;
  }

  /** The same model as TF Serving ships it: a graph (x * 0.5 + 3) on a rank-1 placeholder. */
  function halfPlusThreeGraph(): io.ModelArtifacts {
    const float = { type: 'DT_FLOAT' };
    const scalar = { tensor: { dtype: 'DT_FLOAT', tensorShape: {} } };
    return {
      format: 'graph-model',
      generatedBy: 'aiaas test (hand-written GraphDef)',
      convertedBy: null,
      modelTopology: {
        node: [
          {
            name: 'x',
            op: 'Placeholder',
            attr: { dtype: float, shape: { shape: { dim: [{ size: '-1' }] } } },
          },
          { name: 'a', op: 'Const', attr: { dtype: float, value: scalar } },
          { name: 'b', op: 'Const', attr: { dtype: float, value: scalar } },
          { name: 'Mul', op: 'Mul', input: ['x', 'a'], attr: { T: float } },
          { name: 'y', op: 'AddV2', input: ['Mul', 'b'], attr: { T: float } },
        ],
        versions: { producer: 1 },
      },
      weightSpecs: [
        { name: 'a', shape: [], dtype: 'float32' },
        { name: 'b', shape: [], dtype: 'float32' },
      ],
      weightData: new Float32Array([0.5, 3]).buffer,
    };
  }

  const spec = '"model_spec":{"name":"m","version":"1","signature_name":"serving_default"}';
  for (const [name, build, fastPath] of [
    ['layers model on the fast path', halfPlusThreeLayers, 'auto'],
    ['layers model on tfjs', halfPlusThreeLayers, 'off'],
    ['graph model on tfjs', halfPlusThreeGraph, 'auto'],
  ] as const) {
    it(`answers as TF Serving does (${name})`, async () => {
      const served = await serveModel(runtime, build(), { fastPath });
      expect(served.signature.inputs[0]!.shape).toEqual([null]);
      const row = await served.predict('{"instances": [1.0, 2.0, 5.0]}');
      expect([row.statusCode, row.body]).toEqual([200, `{"predictions":[3.5,4.0,5.5],${spec}}`]);
      const columnar = await served.predict('{"inputs": [1.0, 2.0, 5.0]}');
      expect([columnar.statusCode, columnar.body]).toEqual([200, `{"outputs":[3.5,4.0,5.5],${spec}}`]);
      const one = await served.predict('{"instances": [-6]}');
      expect([one.statusCode, one.body]).toEqual([200, `{"predictions":[0.0],${spec}}`]);
      expect(served.errors).toEqual([]);
    });
  }

  it('still answers a row of numbers per instance for a model of shape [-1, n]', async () => {
    const { tf, layers } = runtime;
    const dense = layers.layers.dense({ inputShape: [3], units: 1 });
    const model = layers.sequential({ layers: [dense] });
    dense.setWeights([tf.tensor2d([[1], [2], [3]]), tf.tensor1d([0.5])]);
    for (const fastPath of ['auto', 'off'] as const) {
      const served = await serveModel(runtime, model, { fastPath });
      const res = await served.predict('{"instances": [[1, 1, 1], [0, 0, 2]]}');
      expect(res.body).toBe(`{"predictions":[[6.5],[6.5]],${spec}}`);
    }
  });
});

describe('sizes and dtypes the layers cannot take', () => {
  it('answers 400 for a free length too short for a convolution or that a reshape cannot split', async () => {
    const { layers } = runtime;
    const l = layers.layers;
    const conv = layers.sequential({
      layers: [l.conv1d({ inputShape: [null, 2], filters: 2, kernelSize: 3 }), l.globalMaxPooling1d({})],
    });
    const served = await serveModel(runtime, conv);
    expect((await served.predict('{"instances": [[[1, 2], [3, 4], [5, 6]]]}')).statusCode).toBe(200);
    const short = await served.predict('{"instances": [[[1, 2], [3, 4]]]}');
    expect(short.statusCode).toBe(400);
    expect(body(short).error).toMatch(
      /^This model cannot take inputs of these shapes \("conv1d_.*_input" \[1, 2, 2\]\): layer "conv1d_.*" would make shape \[1, 0, 2\]/,
    );
    const input = layers.input({ shape: [null, 3], name: 'x' });
    const halves = l.reshape({ targetShape: [-1, 2] }).apply(input);
    const reshape = layers.model({
      inputs: input,
      outputs: l.globalAveragePooling1d({}).apply(halves) as never,
    });
    const split = await serveModel(runtime, reshape, { fastPath: 'off' });
    expect((await split.predict('{"instances": [[[1, 2, 3], [4, 5, 6]]]}')).statusCode).toBe(200);
    const odd = await split.predict('{"instances": [[[1, 2, 3]]]}');
    expect(odd.statusCode).toBe(400);
    expect(body(odd).error).toMatch(/"x" \[1, 1, 3\]\): layer "reshape.*" does not take shape \[1, 1, 3\]/);
    expect([...served.errors, ...split.errors]).toEqual([]);
  });

  it('refuses at publish a model that fails on every request (a kernel larger than its input, int32 into softmax)', async () => {
    const { layers } = runtime;
    const l = layers.layers;
    const tooSmall = layers.sequential({
      layers: [l.conv1d({ inputShape: [2, 1], filters: 1, kernelSize: 3 })],
    });
    await expect(serveModel(runtime, tooSmall)).rejects.toThrow(
      /^The model can compute nothing: layer ".*" would make shape \[1, 0, 1\] from \[1, 2, 1\]$/,
    );
    const ints = layers.input({ shape: [2], dtype: 'int32' });
    const softmax = layers.model({
      inputs: ints,
      outputs: l.activation({ activation: 'softmax' }).apply(ints) as never,
    });
    await expect(serveModel(runtime, softmax)).rejects.toThrow(
      /^The model fails on every request \(here, one of zeros\): .*must be float32 tensor, but got int32/,
    );
  });

  it('does not serve such a version when it was published without the check: 503, not a 500 per request', async () => {
    const { layers } = runtime;
    const { MemoryObjectStore } = await import('../support/memory-store.js');
    const { ModelRegistry } = await import('../../functions/shared/registry/registry.js');
    const { artifactsToFiles, captureIOHandler } = await import('../../functions/shared/model/artifacts.js');
    const { createHandler } = await import('../../functions/inference/handler.js');
    const { DEFAULT_LIMITS } = await import('../../functions/inference/api.js');
    const ints = layers.input({ shape: [2], dtype: 'int32', name: 'x' });
    const softmax = layers.model({
      inputs: ints,
      outputs: layers.layers.activation({ activation: 'softmax' }).apply(ints) as never,
    });
    const capture = captureIOHandler();
    await softmax.save(capture);
    const registry = new ModelRegistry(new MemoryObjectStore());
    const metadata = await registry.publish('m', artifactsToFiles(capture.artifacts!), {
      format: 'layers-model',
      signature: {
        inputs: [{ name: 'x', dtype: 'int32', shape: [null, 2] }],
        outputs: [{ name: 'y', dtype: 'float32', shape: [null, 2] }],
      },
      metrics: {},
      source: { kind: 'publish', test: true },
      parent: null,
    });
    await registry.setAlias('m', 'live', metadata.version);
    const logged: string[] = [];
    const handler = createHandler(
      {
        bucket: 't',
        model: 'm',
        alias: 'live',
        aliasCheckSeconds: 60,
        limits: DEFAULT_LIMITS,
        fastPath: 'off',
      },
      {
        store: registry.store,
        runtime: async () => runtime,
        log: {
          info() {},
          warn() {},
          error: (message, extra) => logged.push(`${message} ${JSON.stringify(extra)}`),
        },
      },
    );
    const res = await handler({
      rawPath: '/v1/models/m:predict',
      body: '{"instances": [[1, 2]]}',
      requestContext: { http: { method: 'POST' } },
    });
    expect(res.statusCode).toBe(503);
    expect(logged.join('\n')).toMatch(/fails on every request/);
    expect(logged.join('\n')).not.toMatch(/unexpected error/);
  });
});
