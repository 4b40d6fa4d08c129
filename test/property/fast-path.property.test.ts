/**
 * The fast path must answer what tfjs answers for the same model: random dense networks (every
 * layer kind and activation the fast path takes, Sequential and functional, weights split across
 * shards at odd offsets) are built and saved with tfjs-layers, compiled by the fast path, and
 * compared with tfjs's own predictions on the cpu and wasm backends. Rank-1 inputs and outputs (one
 * number per instance, as TF Serving's half_plus_three takes and gives) go through Reshape layers.
 * Whatever the fast path does not take must come back as a reason, never as a wrong answer.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  artifactsToFiles,
  captureIOHandler,
  parseModelJson,
  signatureOf,
} from '../../functions/shared/model/artifacts.js';
import { FastModel } from '../../functions/shared/model/fast-model.js';
import { compileFastPath, fastPathReason } from '../../functions/shared/model/fast-path.js';
import type { TfRuntime } from '../../functions/shared/runtime/types.js';
import { createRuntime } from '../../layers/tfjs-runtime/runtime.js';

type LayerArgs =
  | { kind: 'dense'; units: number; activation: string; useBias: boolean }
  | { kind: 'activation'; activation: string }
  | { kind: 'dropout' }
  | { kind: 'batchNorm'; center: boolean; scale: boolean }
  | { kind: 'leakyRelu'; alpha: number }
  | { kind: 'relu'; maxValue?: number }
  | { kind: 'elu' }
  | { kind: 'softmax' };

const ACTIVATIONS = [
  'linear',
  'relu',
  'relu6',
  'elu',
  'selu',
  'sigmoid',
  'hardSigmoid',
  'tanh',
  'softmax',
  'softplus',
  'softsign',
  'swish',
];

const layerArb: fc.Arbitrary<LayerArgs> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('dense' as const),
      units: fc.integer({ min: 1, max: 12 }),
      activation: fc.constantFrom(...ACTIVATIONS),
      useBias: fc.boolean(),
    }),
  },
  fc.record({ kind: fc.constant('activation' as const), activation: fc.constantFrom(...ACTIVATIONS) }),
  fc.record({ kind: fc.constant('dropout' as const) }),
  fc.record({ kind: fc.constant('batchNorm' as const), center: fc.boolean(), scale: fc.boolean() }),
  fc.record({
    kind: fc.constant('leakyRelu' as const),
    alpha: fc.double({ min: 0.01, max: 0.5, noNaN: true }),
  }),
  fc.record(
    { kind: fc.constant('relu' as const), maxValue: fc.double({ min: 0.5, max: 6, noNaN: true }) },
    { requiredKeys: ['kind'] },
  ),
  fc.record({ kind: fc.constant('elu' as const) }),
  fc.record({ kind: fc.constant('softmax' as const) }),
);

const networkArb: fc.Arbitrary<Network> = fc.record({
  inputWidth: fc.integer({ min: 1, max: 10 }),
  layers: fc.array(layerArb, { minLength: 1, maxLength: 5 }),
  functional: fc.boolean(),
  shardBytes: fc.integer({ min: 5, max: 200 }),
  rows: fc.integer({ min: 1, max: 6 }),
  seed: fc.integer({ min: 0, max: 1_000_000 }),
  rankOneInput: fc.boolean(),
  rankOneOutput: fc.boolean(),
});

type Network = {
  inputWidth: number;
  layers: LayerArgs[];
  functional: boolean;
  shardBytes: number;
  rows: number;
  seed: number;
  /** Input shape [-1] (one number per instance), reshaped to [-1, 1] for the layers. */
  rankOneInput: boolean;
  /** When the last width is 1, a Reshape to [-1] (one number per instance) ends the network. */
  rankOneOutput: boolean;
};

/** The width of a network's last layer. */
function lastWidth(net: Network): number {
  const dense = net.layers.filter((l) => l.kind === 'dense');
  return dense.length > 0 ? (dense[dense.length - 1] as { units: number }).units : inputWidthOf(net);
}
const inputWidthOf = (net: Network) => (net.rankOneInput ? 1 : net.inputWidth);
const scalarOut = (net: Network) => net.rankOneOutput && lastWidth(net) === 1;

function makeLayer(runtime: TfRuntime, args: LayerArgs, seed: number) {
  const l = runtime.layers.layers;
  const init = runtime.layers.initializers;
  switch (args.kind) {
    case 'dense':
      return l.dense({
        units: args.units,
        activation: args.activation as never,
        useBias: args.useBias,
        kernelInitializer: init.randomNormal({ seed, stddev: 0.8 }),
        biasInitializer: init.randomNormal({ seed: seed + 1, stddev: 0.5 }),
      });
    case 'activation':
      return l.activation({ activation: args.activation as never });
    case 'dropout':
      return l.dropout({ rate: 0.5 });
    case 'batchNorm':
      return l.batchNormalization({
        center: args.center,
        scale: args.scale,
        gammaInitializer: init.randomUniform({ minval: 0.5, maxval: 2, seed }),
        betaInitializer: init.randomNormal({ seed: seed + 1 }),
        movingMeanInitializer: init.randomNormal({ seed: seed + 2 }),
        movingVarianceInitializer: init.randomUniform({ minval: 0.1, maxval: 3, seed: seed + 3 }),
      });
    case 'leakyRelu':
      return l.leakyReLU({ alpha: args.alpha });
    case 'relu':
      return l.reLU(args.maxValue === undefined ? {} : { maxValue: args.maxValue });
    case 'elu':
      return l.elu();
    case 'softmax':
      return l.softmax();
  }
}

/** Builds, saves and reloads the files of a network as the registry would hold them. */
async function saved(runtime: TfRuntime, net: Network) {
  const { layers } = runtime;
  let model: ReturnType<typeof layers.model>;
  const shape = net.rankOneInput ? [] : [net.inputWidth];
  if (net.functional) {
    const input = layers.input({ shape, name: 'features' });
    let out = net.rankOneInput
      ? (layers.layers.reshape({ targetShape: [1] }).apply(input) as typeof input)
      : input;
    net.layers.forEach((args, i) => {
      out = makeLayer(runtime, args, net.seed + 10 * i).apply(out) as typeof input;
    });
    if (scalarOut(net)) out = layers.layers.reshape({ targetShape: [] }).apply(out) as typeof input;
    model = layers.model({ inputs: input, outputs: out });
  } else {
    const sequential = layers.sequential();
    sequential.add(layers.layers.inputLayer({ inputShape: shape }));
    if (net.rankOneInput) sequential.add(layers.layers.reshape({ targetShape: [1] }));
    net.layers.forEach((args, i) => {
      sequential.add(makeLayer(runtime, args, net.seed + 10 * i));
    });
    if (scalarOut(net)) sequential.add(layers.layers.reshape({ targetShape: [] }));
    model = sequential;
  }
  const capture = captureIOHandler();
  await model.save(capture);
  const files = artifactsToFiles(capture.artifacts!, net.shardBytes);
  const byName = new Map(files.map((f) => [f.name, f.bytes]));
  return { model, byName, signature: signatureOf(runtime, model as never) };
}

function randomRows(rows: number, width: number, seed: number): Float32Array {
  let s = seed || 1;
  const out = new Float32Array(rows * width);
  for (let i = 0; i < out.length; i++) {
    s = (s * 48271) % 2147483647;
    out[i] = (s / 2147483647) * 8 - 4;
  }
  return out;
}

for (const backend of ['cpu', 'wasm'] as const) {
  describe(`fast path vs tfjs (${backend})`, () => {
    let runtime: TfRuntime;
    beforeAll(async () => {
      // One tfjs engine per process: start it on wasm (which sets the .wasm path), then switch.
      runtime = await createRuntime('wasm');
      expect(await runtime.tf.setBackend(backend)).toBe(true);
      expect(runtime.tf.getBackend()).toBe(backend);
    });
    afterAll(async () => {
      await runtime.tf.setBackend('cpu');
    });

    it('computes what tfjs computes, for any dense chain it compiles', async () => {
      await fc.assert(
        fc.asyncProperty(networkArb, async (net) => {
          const { model, byName, signature } = await saved(runtime, net);
          try {
            const compiled = compileFastPath(parseModelJson(byName.get('model.json')!), byName, signature);
            if (!('model' in compiled)) throw new Error(`not compiled: ${compiled.reason}`);
            const width = inputWidthOf(net);
            const x = randomRows(net.rows, width, net.seed);
            const shape = net.rankOneInput ? [net.rows] : [net.rows, width];
            const [fast] = compiled.model.predict([{ values: x, shape }]);
            // predictOnBatch: tfjs's predict() refuses a rank-1 input (it reshapes it to [n, 1]).
            const out = runtime.tf.tidy(() => {
              const y = model.predictOnBatch(runtime.tf.tensor(x, shape)) as never as {
                shape: number[];
                dataSync(): Float32Array;
              };
              return { shape: y.shape, values: y.dataSync() };
            });
            const expected = out.values;
            expect(fast!.shape).toEqual(out.shape);
            expect(fast!.values.length).toBe(expected.length);
            for (let i = 0; i < expected.length; i++) {
              const e = expected[i]!;
              expect(Math.abs(fast!.values[i]! - e)).toBeLessThanOrEqual(1e-5 + 1e-4 * Math.abs(e));
            }
          } finally {
            model.dispose();
          }
        }),
        { numRuns: backend === 'cpu' ? 120 : 60 },
      );
    });
  });
}

describe('fast path refusals', () => {
  let runtime: TfRuntime;
  beforeAll(async () => {
    runtime = await createRuntime('wasm');
    expect(await runtime.tf.setBackend('cpu')).toBe(true);
  });

  async function compile(build: () => ReturnType<TfRuntime['layers']['sequential']>, max?: number) {
    const model = build();
    const capture = captureIOHandler();
    await model.save(capture);
    const signature = signatureOf(runtime, model as never);
    model.dispose();
    const byName = new Map(artifactsToFiles(capture.artifacts!).map((f) => [f.name, f.bytes]));
    const json = parseModelJson(byName.get('model.json')!);
    return { result: compileFastPath(json, byName, signature, max), topology: fastPathReason(json, max) };
  }

  it('names the layer that keeps a model on tfjs', async () => {
    const { result, topology } = await compile(() =>
      runtime.layers.sequential({
        layers: [
          runtime.layers.layers.conv1d({ inputShape: [6, 2], filters: 2, kernelSize: 2 }),
          runtime.layers.layers.flatten(),
          runtime.layers.layers.dense({ units: 1 }),
        ],
      }),
    );
    expect(result).toEqual({ reason: 'input of rank 3' });
    expect(topology).toBe('input of rank 3');
  });

  it('keeps big models on tfjs, whose kernels are faster there', async () => {
    const { result, topology } = await compile(
      () =>
        runtime.layers.sequential({ layers: [runtime.layers.layers.dense({ inputShape: [30], units: 10 })] }),
      100,
    );
    expect(result).toEqual({ reason: '310 weights (the fast path takes up to 100)' });
    expect(topology).toBe('310 weights (the fast path takes up to 100)');
  });

  it('refuses branching networks', async () => {
    const { layers } = runtime;
    const input = layers.input({ shape: [4] });
    const a = layers.layers.dense({ units: 3 }).apply(input);
    const b = layers.layers.dense({ units: 3 }).apply(input);
    const out = layers.layers.add().apply([a, b] as never);
    const model = layers.model({ inputs: input, outputs: out as never });
    const { result } = await compile(() => model as never);
    expect('reason' in result && result.reason).toMatch(/chain/);
  });

  it('refuses quantized weights', async () => {
    const model = runtime.layers.sequential({
      layers: [runtime.layers.layers.dense({ inputShape: [2], units: 1 })],
    });
    const capture = captureIOHandler();
    await model.save(capture);
    const signature = signatureOf(runtime, model as never);
    model.dispose();
    const json = parseModelJson(artifactsToFiles(capture.artifacts!)[0]!.bytes);
    const weights = json.weightsManifest[0]!.weights.map((w) => ({
      ...w,
      dtype: 'float32' as const,
      quantization: { dtype: 'uint8' as const, scale: 1, min: 0 },
    }));
    const quantized = { ...json, weightsManifest: [{ ...json.weightsManifest[0]!, weights }] };
    expect(compileFastPath(quantized, new Map(), signature)).toEqual({
      reason: expect.stringMatching(/quantized/),
    });
  });

  it('leaves a model whose signature does not match its layers to tfjs', async () => {
    const model = runtime.layers.sequential({
      layers: [runtime.layers.layers.dense({ inputShape: [3], units: 1 })],
    });
    const capture = captureIOHandler();
    await model.save(capture);
    model.dispose();
    const byName = new Map(artifactsToFiles(capture.artifacts!).map((f) => [f.name, f.bytes]));
    const signature = {
      inputs: [{ name: 'x', dtype: 'float32' as const, shape: [null, 4] }],
      outputs: [{ name: 'y', dtype: 'float32' as const, shape: [null, 1] }],
    };
    expect(compileFastPath(parseModelJson(byName.get('model.json')!), byName, signature)).toEqual({
      reason: 'the input shape [null, 4] does not match the layers',
    });
  });

  it('does not change the caller’s input', () => {
    const signature = {
      inputs: [{ name: 'x', dtype: 'float32' as const, shape: [null, 2] }],
      outputs: [{ name: 'y', dtype: 'float32' as const, shape: [null, 2] }],
    };
    const model = new FastModel(signature, 0, 2, [
      {
        out: 2,
        inPlace: true,
        run: (x: Float32Array) => {
          x[0] = 99;
          return x;
        },
      },
    ] as never);
    const values = new Float32Array([1, 2]);
    model.predict([{ values, shape: [1, 2] }]);
    expect([...values]).toEqual([1, 2]);
  });
});
