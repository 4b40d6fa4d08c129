import type { io, Tensor } from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  artifactsToFiles,
  captureIOHandler,
  filesToArtifacts,
  loadModel,
} from '../../functions/shared/model/artifacts.js';
import { decodeWeightTensors, loadLayersModelFast } from '../../functions/shared/model/weights.js';
import type { TfRuntime } from '../../functions/shared/runtime/types.js';
import { createRuntime } from '../../layers/tfjs-runtime/runtime.js';

let runtime: TfRuntime;
type Layer = InstanceType<TfRuntime['layers']['layers']['Layer']>;
let Offset: new (args: object) => Layer;

beforeAll(async () => {
  runtime = await createRuntime('wasm');
  expect(runtime.kind).toBe('wasm');
  Offset = defineOffsetLayer(runtime);
});

/** A deterministic pseudo-random stream, so every run tests the same values. */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/** Every weight set to values in [0.5, 1.5) (positive, so batch-norm variances stay valid). */
function randomize(model: LayersModel, seed: number) {
  const { tf } = runtime;
  const next = random(seed);
  const values = model.weights.map((w) => {
    const size = w.shape.reduce((n: number, d) => n * (d ?? 1), 1);
    const data = Array.from({ length: size }, () =>
      w.dtype === 'int32' ? Math.floor(next() * 9) - 4 : next() + 0.5,
    );
    return tf.tensor(data, w.shape as number[], w.dtype);
  });
  model.setWeights(values);
  tf.dispose(values);
}

/** A layer with an int32 weight (no built-in layer has one): adds it, cast to float, to its input. */
function defineOffsetLayer({ tf, layers }: TfRuntime): new (args: object) => Layer {
  class OffsetLayer extends layers.layers.Layer {
    static readonly className = 'AiaasTestOffset';
    private table?: ReturnType<Layer['addWeight']>;
    override build(inputShape: number | null | (number | null)[] | (number | null)[][]) {
      const shape = inputShape as number[];
      this.table = this.addWeight('table', [shape[shape.length - 1]!], 'int32', layers.initializers.zeros());
      this.built = true;
    }
    override call(inputs: Tensor | Tensor[]): Tensor {
      return tf.tidy(() =>
        tf.add(Array.isArray(inputs) ? inputs[0]! : inputs, tf.cast(this.table!.read(), 'float32')),
      );
    }
  }
  tf.serialization.registerClass(OffsetLayer);
  return OffsetLayer;
}

interface Case {
  readonly name: string;
  readonly build: (rt: TfRuntime) => LayersModel;
  readonly inputs: (rt: TfRuntime) => Tensor[];
}

const cases: Case[] = [
  {
    name: 'a dense network',
    build: ({ layers }) =>
      layers.sequential({
        layers: [
          layers.layers.dense({ units: 33, inputShape: [7], activation: 'relu' }),
          layers.layers.dense({ units: 17, activation: 'tanh' }),
          layers.layers.dense({ units: 3, activation: 'softmax' }),
        ],
      }),
    inputs: ({ tf }) => [
      tf.tensor2d(
        Array.from({ length: 21 }, (_, i) => Math.sin(i)),
        [3, 7],
      ),
    ],
  },
  {
    name: 'a two-input functional model with conv and batch norm',
    build: ({ layers }) => {
      const image = layers.input({ shape: [6, 6, 2], name: 'image' });
      const extra = layers.input({ shape: [5], name: 'extra' });
      let x = layers.layers.conv2d({ filters: 3, kernelSize: 3, activation: 'relu' }).apply(image);
      x = layers.layers.batchNormalization().apply(x);
      x = layers.layers.flatten().apply(x);
      const merged = layers.layers.concatenate().apply([x as never, extra]);
      const out = layers.layers.dense({ units: 2 }).apply(merged);
      return layers.model({ inputs: [image, extra], outputs: out as never });
    },
    inputs: ({ tf }) => [
      tf.tensor4d(
        Array.from({ length: 144 }, (_, i) => Math.cos(i)),
        [2, 6, 6, 2],
      ),
      tf.tensor2d(
        Array.from({ length: 10 }, (_, i) => i / 10),
        [2, 5],
      ),
    ],
  },
  {
    name: 'an LSTM',
    build: ({ layers }) =>
      layers.sequential({
        layers: [
          layers.layers.lstm({
            units: 5,
            inputShape: [4, 3],
            unitForgetBias: true,
            recurrentInitializer: 'glorotNormal',
          }),
          layers.layers.dense({ units: 1 }),
        ],
      }),
    inputs: ({ tf }) => [
      tf.tensor3d(
        Array.from({ length: 24 }, (_, i) => Math.sin(i * 0.7)),
        [2, 4, 3],
      ),
    ],
  },
  {
    name: 'a model with an int32 weight',
    build: ({ layers }) =>
      layers.sequential({
        layers: [layers.layers.dense({ units: 6, inputShape: [4] }), new Offset({})],
      }),
    inputs: ({ tf }) => [tf.tensor2d([1, 2, 3, 4, -1, -2, -3, -4], [2, 4])],
  },
];

async function artifactsOf(testCase: Case, seed: number): Promise<io.ModelArtifacts> {
  const model = testCase.build(runtime);
  randomize(model, seed);
  const capture = captureIOHandler();
  await model.save(capture);
  model.dispose();
  return capture.artifacts!;
}

/** The artifacts as the registry hands them over: files of `shardBytes` shards, each its own buffer. */
function throughFiles(artifacts: io.ModelArtifacts, shardBytes?: number): io.ModelArtifacts {
  const files = artifactsToFiles(artifacts, shardBytes);
  return filesToArtifacts(new Map(files.map((f) => [f.name, f.bytes.slice()])));
}

function predict(model: LayersModel, inputs: Tensor[]): number[][] {
  const { tf } = runtime;
  return tf.tidy(() => {
    const out = model.predict(inputs.length === 1 ? inputs[0]! : inputs);
    return (Array.isArray(out) ? out : [out]).map((t) => Array.from(t.dataSync()));
  });
}

/** Uint8/uint16-quantizes every float32 weight (as the tfjs converter does). */
function quantize(artifacts: io.ModelArtifacts, dtype: 'uint8' | 'uint16'): io.ModelArtifacts {
  const data = new Uint8Array(artifacts.weightData as ArrayBuffer);
  const levels = dtype === 'uint8' ? 255 : 65535;
  const specs: io.WeightsManifestEntry[] = [];
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const spec of artifacts.weightSpecs!) {
    const size = spec.shape.reduce((n, d) => n * d, 1);
    const values = new Float32Array(data.slice(offset, offset + size * 4).buffer);
    offset += size * 4;
    const min = Math.min(...values);
    const scale = (Math.max(...values) - min) / levels || 1;
    const q = dtype === 'uint8' ? new Uint8Array(size) : new Uint16Array(size);
    values.forEach((v, i) => {
      q[i] = Math.round((v - min) / scale);
    });
    chunks.push(new Uint8Array(q.buffer));
    specs.push({ ...spec, quantization: { dtype, min, scale } });
  }
  const total = chunks.reduce((n, c) => n + c.byteLength, 0);
  const weightData = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    weightData.set(c, at);
    at += c.byteLength;
  }
  return { ...artifacts, weightSpecs: specs, weightData: weightData.buffer };
}

describe.each(['cpu', 'wasm'] as const)('loading a layers model on the %s backend', (backend) => {
  beforeAll(async () => {
    expect(await runtime.tf.setBackend(backend)).toBe(true);
  });

  /** Loads the artifacts both ways and checks the models are the same, and that nothing leaks. */
  async function compare(testCase: Case, artifacts: () => io.ModelArtifacts) {
    const { tf, layers } = runtime;
    const before = tf.memory().numTensors;
    const inputs = testCase.inputs(runtime);
    const start = tf.memory().numTensors;
    const expected = await layers.loadLayersModel(tf.io.fromMemory(artifacts()));
    const afterTfjs = tf.memory().numTensors;
    const loaded = await loadModel(runtime, { load: async () => artifacts() });
    expect(loaded.format).toBe('layers-model');
    const ours = loaded.model as LayersModel;
    // Exactly the model's own tensors: no temporaries left behind.
    expect(tf.memory().numTensors - afterTfjs).toBe(afterTfjs - start);
    expect(predict(ours, inputs)).toEqual(predict(expected, inputs));
    // Serializes exactly as the tfjs-loaded model does (initializers included).
    expect(ours.toJSON(null, false)).toEqual(expected.toJSON(null, false));
    expect(ours.getWeights().map((w) => w.dtype)).toEqual(expected.getWeights().map((w) => w.dtype));
    expected.dispose();
    ours.dispose();
    tf.dispose(inputs);
    expect(tf.memory().numTensors).toBe(before);
  }

  for (const [i, testCase] of cases.entries()) {
    describe(testCase.name, () => {
      let artifacts: io.ModelArtifacts;
      beforeAll(async () => {
        artifacts = await artifactsOf(testCase, 17 + i);
      });

      it('predicts exactly what tfjs loads, from one buffer', async () => {
        await compare(testCase, () => ({ ...artifacts }));
      });

      it('predicts exactly what tfjs loads, with weights crossing 64-byte shards', async () => {
        await compare(testCase, () => throughFiles(artifacts, 64));
      });

      it('predicts exactly what tfjs loads, with unaligned 37-byte shards', async () => {
        await compare(testCase, () => throughFiles(artifacts, 37));
      });

      it('predicts exactly what tfjs loads, with uint8 and uint16 quantized weights (tfjs decodes them)', async () => {
        if (testCase.name.includes('int32')) return; // tfjs quantizes float32 weights only here
        for (const dtype of ['uint8', 'uint16'] as const) {
          await compare(testCase, () => throughFiles(quantize(artifacts, dtype), 64));
          const fast = await loadLayersModelFast(runtime, throughFiles(quantize(artifacts, dtype), 64));
          expect(new Set(Object.values(fast!.paths))).toEqual(new Set(['tfjs']));
          fast!.model.dispose();
        }
      });
    });
  }

  it('copies each weight straight into its tensor: the wasm heap, or a view over the shard on cpu', async () => {
    const { tf } = runtime;
    const artifacts = await artifactsOf(cases[0]!, 3);
    const one = await loadLayersModelFast(runtime, { ...artifacts });
    const crossing = await loadLayersModelFast(runtime, throughFiles(artifacts, 37));
    const before = tf.memory().numTensors;
    if (backend === 'wasm') {
      expect(new Set(Object.values(one!.paths))).toEqual(new Set(['heap']));
      expect(new Set(Object.values(crossing!.paths))).toEqual(new Set(['heap']));
    } else {
      expect(new Set(Object.values(one!.paths))).toEqual(new Set(['view']));
      expect(Object.values(crossing!.paths)).toContain('copy');
    }
    one!.model.dispose();
    crossing!.model.dispose();
    expect(tf.memory().numTensors).toBe(before - 12);
  });

  it('leaves the serialization registry as it found it, so models built later initialize normally', async () => {
    const { tf, layers } = runtime;
    const map = tf.serialization.SerializationMap.getMap().classNameMap;
    const snapshot = { ...map };
    const artifacts = await artifactsOf(cases[0]!, 5);
    (await loadModel(runtime, { load: async () => ({ ...artifacts }) })).model.dispose();
    expect({ ...map }).toEqual(snapshot);
    const fresh = layers.sequential({
      layers: [layers.layers.dense({ units: 64, inputShape: [64], biasInitializer: 'ones' })],
    });
    const [kernel, bias] = fresh.getWeights();
    expect(tf.tidy(() => tf.moments(kernel!).variance.arraySync())).toBeGreaterThan(0);
    expect(Array.from(bias!.dataSync())).toEqual(Array.from({ length: 64 }, () => 1));
    fresh.dispose();
  });

  it('leaves to tfjs what it does not handle: optimizer weights, string weights, no weights', async () => {
    const artifacts = await artifactsOf(cases[0]!, 7);
    const withGroup = {
      ...artifacts,
      weightSpecs: artifacts.weightSpecs!.map((s, i) =>
        i === 0 ? { ...s, group: 'optimizer' as const } : s,
      ),
    };
    expect(await loadLayersModelFast(runtime, withGroup)).toBeUndefined();
    const strings = {
      ...artifacts,
      weightSpecs: [...artifacts.weightSpecs!, { name: 's', shape: [1], dtype: 'string' as const }],
    };
    expect(await loadLayersModelFast(runtime, strings)).toBeUndefined();
    const { weightData: _, weightSpecs: __, ...topologyOnly } = artifacts;
    expect(await loadLayersModelFast(runtime, topologyOnly)).toBeUndefined();
    const loaded = await loadModel(runtime, { load: async () => topologyOnly });
    expect(loaded.model.weights.length).toBe(6);
    loaded.model.dispose();
  });

  it('throws on weight data shorter than the specs, leaking nothing', async () => {
    const { tf } = runtime;
    const artifacts = await artifactsOf(cases[0]!, 9);
    const short = { ...artifacts, weightData: (artifacts.weightData as ArrayBuffer).slice(0, 1000) };
    const before = tf.memory().numTensors;
    await expect(loadModel(runtime, { load: async () => short })).rejects.toThrow(
      /weight data holds 1000 bytes/,
    );
    expect(tf.memory().numTensors).toBe(before);
  });

  it('throws on weights that do not fit the model, leaking nothing', async () => {
    const { tf } = runtime;
    const artifacts = await artifactsOf(cases[0]!, 11);
    const renamed = {
      ...artifacts,
      weightSpecs: artifacts.weightSpecs!.map((s, i) => (i === 1 ? { ...s, name: 'nope/bias' } : s)),
    };
    const before = tf.memory().numTensors;
    await expect(loadModel(runtime, { load: async () => renamed })).rejects.toThrow(/nope\/bias/);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('decodes int32 and float32 weights across uneven shards exactly as tfjs does', () => {
    const { tf } = runtime;
    const specs: io.WeightsManifestEntry[] = [
      { name: 'a', shape: [3], dtype: 'int32' },
      { name: 'b', shape: [2, 5], dtype: 'float32' },
      { name: 'c', shape: [7], dtype: 'int32' },
      { name: 'd', shape: [0], dtype: 'float32' },
      { name: 'e', shape: [1], dtype: 'float32' },
    ];
    const all = new Uint8Array(4 * 21);
    const view = new DataView(all.buffer);
    for (let i = 0; i < 21; i++) {
      if (i < 3 || (i >= 13 && i < 20)) view.setInt32(i * 4, (i - 10) * 1_000_003, true);
      else view.setFloat32(i * 4, i / 7 - 1, true);
    }
    const expected = tf.io.decodeWeights(all.buffer, specs);
    for (const cuts of [[], [1, 2, 3, 50], [5, 9, 13, 17, 40, 41, 83], [84]]) {
      const shards: ArrayBuffer[] = [];
      let from = 0;
      for (const cut of [...cuts, all.byteLength]) {
        shards.push(all.slice(from, cut).buffer);
        from = cut;
      }
      const before = tf.memory().numTensors;
      const { tensors } = decodeWeightTensors(tf, specs, shards);
      for (const spec of specs) {
        expect(tensors[spec.name]!.dtype).toBe(spec.dtype);
        expect(tensors[spec.name]!.shape).toEqual(spec.shape);
        expect(Array.from(tensors[spec.name]!.dataSync())).toEqual(
          Array.from(expected[spec.name]!.dataSync()),
        );
      }
      tf.dispose(Object.values(tensors));
      expect(tf.memory().numTensors).toBe(before);
    }
    tf.dispose(Object.values(expected));
  });
});
