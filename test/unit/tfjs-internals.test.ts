/**
 * The tfjs internals aiaas relies on (functions/shared/model/tfjs-internals.ts), probed on the
 * installed tfjs, cpu and wasm backends: a tfjs upgrade that breaks one fails here, naming the
 * member and what to check. And the version guard: on an untested version, or with a member
 * missing, models load through tfjs's public loader, predict the same, and the log says why once.
 */
import type { io, Tensor } from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { afterEach, beforeAll, beforeEach, describe, expect, it, type MockInstance, vi } from 'vitest';
import {
  artifactsToFiles,
  captureIOHandler,
  loadModel,
  signatureOf,
} from '../../functions/shared/model/artifacts.js';
import { loadReceived, receiveVersion } from '../../functions/shared/model/receive.js';
import {
  buildForLoading,
  embeddingInputDim,
  internalsProblem,
  TESTED_VERSIONS,
  type WasmHeap,
  wasmHeap,
} from '../../functions/shared/model/tfjs-internals.js';
import { loadLayersModelFast, WeightReceiver } from '../../functions/shared/model/weights.js';
import { ModelRegistry } from '../../functions/shared/registry/registry.js';
import type { TfRuntime } from '../../functions/shared/runtime/types.js';
import { createRuntime } from '../../layers/tfjs-runtime/runtime.js';
import { MemoryObjectStore } from '../support/memory-store.js';

const ADAPTER = 'functions/shared/model/tfjs-internals.ts';

let runtime: TfRuntime;
beforeAll(async () => {
  runtime = await createRuntime('wasm');
  expect(runtime.kind).toBe('wasm');
});

/** A small functional model (Dense and an Embedding branch), its weights set to known values. */
function buildModel({ tf, layers }: TfRuntime): LayersModel {
  const x = layers.input({ shape: [5], name: 'x' });
  const ids = layers.input({ shape: [3], name: 'ids' });
  const hidden = layers.layers.dense({ units: 7, activation: 'relu' }).apply(x);
  const embedded = layers.layers
    .flatten()
    .apply(layers.layers.embedding({ inputDim: 11, outputDim: 2 }).apply(ids));
  const merged = layers.layers.concatenate().apply([hidden, embedded] as never);
  const out = layers.layers.dense({ units: 2 }).apply(merged);
  const model = layers.model({ inputs: [x, ids], outputs: out as never });
  const values = model.weights.map((w, i) => {
    const size = w.shape.reduce((n: number, d) => n * (d ?? 1), 1);
    return tf.tensor(
      Array.from({ length: size }, (_, j) => Math.sin(i * 100 + j)),
      w.shape as number[],
    );
  });
  model.setWeights(values);
  tf.dispose(values);
  return model;
}

async function artifactsOf(model: LayersModel): Promise<io.ModelArtifacts> {
  const capture = captureIOHandler();
  await model.save(capture);
  return capture.artifacts!;
}

function predict({ tf }: TfRuntime, model: LayersModel): number[] {
  return tf.tidy(() => {
    const out = model.predict([
      tf.tensor2d([0.1, -0.2, 0.3, 0.4, -0.5, 1, 2, 3, -4, 5], [2, 5]),
      tf.tensor2d([0, 3, 10, 7, 1, 2], [2, 3]),
    ]) as Tensor;
    return Array.from(out.dataSync());
  });
}

/**
 * The runtime as if its tfjs were a tested version (so that, after an upgrade, the probes still say
 * whether the internals hold), with some of tfjs's exports replaced (a fake of another release).
 */
function variant(tf: Record<string, unknown> = {}, layers: Record<string, unknown> = {}): TfRuntime {
  const tested = `${TESTED_VERSIONS[0]}.0`;
  const over = (values: Record<string, unknown>) =>
    Object.fromEntries(Object.entries(values).map(([k, value]) => [k, { value }]));
  return {
    ...runtime,
    tf: Object.create(runtime.tf, over({ version_core: tested, ...tf })) as TfRuntime['tf'],
    layers: Object.create(runtime.layers, over({ version_layers: tested, ...layers })) as TfRuntime['layers'],
  };
}

describe.each(['cpu', 'wasm'] as const)(
  'the tfjs internals aiaas relies on, on the %s backend',
  (backend) => {
    beforeAll(async () => {
      expect(await runtime.tf.setBackend(backend)).toBe(true);
    });

    it('the installed tfjs is a version they were checked against, with every member present', () => {
      const { tf, layers } = runtime;
      const problem = internalsProblem(runtime);
      expect(
        problem,
        `tfjs-core ${tf.version_core}, tfjs-layers ${layers.version_layers}: ${problem}. Models now load ` +
          `through tfjs's slower public loader. Fix what the other tests in this file name; after a tfjs ` +
          `upgrade, once they pass, add its major.minor to TESTED_VERSIONS (now ${TESTED_VERSIONS.join(', ')}) ` +
          `in ${ADAPTER}.`,
      ).toBeUndefined();
    });

    it('serialization.SerializationMap.getMap().classNameMap holds [class, fromConfig] for the model classes and Zeros', () => {
      const map = runtime.tf.serialization.SerializationMap.getMap().classNameMap;
      for (const name of ['Sequential', 'Model', 'Functional', 'Zeros']) {
        const entry = map[name];
        expect(
          Array.isArray(entry) && typeof entry[0] === 'function' && typeof entry[1] === 'function',
          `tfjs's serialization registry (tfjs-core serialization.ts, SerializationMap.classNameMap) no longer ` +
            `maps "${name}" to [class, fromConfig]: buildForLoading in ${ADAPTER} swaps those entries.`,
        ).toBe(true);
      }
      const zeros = map.Zeros![0] as unknown as { prototype: { apply?: unknown } };
      expect(
        typeof zeros.prototype.apply,
        `tfjs-layers' Zeros initializer has no apply(shape, dtype) (initializers.ts): the placeholders in ${ADAPTER} override it.`,
      ).toBe('function');
    });

    it("fromConfig's fourth argument (fastWeightInit) reaches every layer, in a build that runs before modelFromJSON's first await", async () => {
      const { tf, layers } = runtime;
      const sequential = layers.sequential({
        layers: [
          layers.layers.dense({
            units: 4,
            inputShape: [3],
            kernelInitializer: 'ones',
            biasInitializer: 'ones',
          }),
        ],
      });
      const x = layers.input({ shape: [3] });
      const functional = layers.model({
        inputs: x,
        outputs: layers.layers
          .dense({ units: 2, kernelInitializer: 'ones', biasInitializer: 'ones' })
          .apply(x) as never,
      });
      for (const source of [sequential, functional]) {
        const topology = source.toJSON(null, false) as object;
        const built = await buildForLoading(variant(), topology, undefined)!;
        const sums = built.getWeights().map((w) => tf.tidy(() => tf.sum(tf.abs(w)).dataSync()[0]));
        expect(
          sums,
          `a ${source.getClassName()} built by buildForLoading (${ADAPTER}) ran its layers' own initializers: ` +
            `check that ${source.getClassName()}.fromConfig (tfjs-layers models.ts, engine/container.ts) still takes ` +
            `fastWeightInit as its 4th argument, that fast weight init still uses the 'zeros' initializer ` +
            '(Layer.addWeight), and that models.modelFromJSON without weights still deserializes before its first await.',
        ).toEqual(sums.map(() => 0));
        expect(built.toJSON(null, false), 'a model built for loading serializes as tfjs builds it').toEqual(
          topology,
        );
        built.dispose();
        source.dispose();
      }
    });

    it("Embedding's inputDim field holds the layer's input_dim", () => {
      const { layers } = runtime;
      const layer = layers.layers.embedding({ inputDim: 37, outputDim: 2 });
      expect(
        (layer as unknown as { inputDim?: unknown }).inputDim,
        `tfjs-layers' Embedding has no inputDim field any more (layers/embeddings.ts): embeddingInputDim in ${ADAPTER} ` +
          'then reads getConfig().inputDim (the public way); drop the field read.',
      ).toBe(37);
      expect(embeddingInputDim(layer)).toBe(37);
      expect(embeddingInputDim(layers.layers.dense({ units: 3 }))).toBeUndefined();
    });

    if (backend === 'wasm') {
      it('the wasm backend has makeOutput and typedArrayFromHeap, and the engine makeTensorFromTensorInfo', () => {
        const { tf } = runtime;
        const wasm = tf.backend() as unknown as Record<string, unknown>;
        for (const member of ['makeOutput', 'typedArrayFromHeap']) {
          expect(
            typeof wasm[member],
            `tfjs-backend-wasm's BackendWasm.${member} is gone (backend_wasm.ts): wasmHeap in ${ADAPTER} allocates ` +
              "weights in the heap and writes them with it; find what the backend's own kernels use now.",
          ).toBe('function');
        }
        expect(
          typeof tf.engine().makeTensorFromTensorInfo,
          `tfjs-core's Engine.makeTensorFromTensorInfo is gone (engine.ts): wasmHeap in ${ADAPTER} wraps heap memory with it.`,
        ).toBe('function');
      });

      it('a tensor allocated in the heap holds what is written at its bytes, also after the heap grows', () => {
        const { tf } = runtime;
        const heap = wasmHeap(variant().tf)!;
        expect(heap, `wasmHeap refused the wasm backend: ${internalsProblem(variant())}`).toBeDefined();
        const before = tf.memory().numTensors;
        const floats = heap.allocate([3, 5], 'float32');
        const ints = heap.allocate([4], 'int32');
        const written = Float32Array.from({ length: 15 }, (_, i) => i / 3 - 2);
        heap.bytesOf(floats).set(new Uint8Array(written.buffer));
        heap.bytesOf(ints).set(new Uint8Array(Int32Array.from([7, -8, 2 ** 30, 0]).buffer));
        const message =
          `BackendWasm.makeOutput / typedArrayFromHeap (tfjs-backend-wasm backend_wasm.ts) no longer give a tensor ` +
          `and a view of its own bytes in the heap: wasmHeap in ${ADAPTER} relies on it.`;
        expect(floats.dtype).toBe('float32');
        expect(floats.shape).toEqual([3, 5]);
        expect(Array.from(floats.dataSync()), message).toEqual(Array.from(written));
        expect(Array.from(ints.dataSync()), message).toEqual([7, -8, 2 ** 30, 0]);
        // Bigger than the heap, so it grows: the bytes must then be looked up again, and still be there.
        const memory = heap.bytesOf(floats).buffer;
        const big = heap.allocate([memory.byteLength / 4 + 1], 'float32');
        expect(heap.bytesOf(floats).buffer, 'the heap grew').not.toBe(memory);
        heap.bytesOf(floats).set(new Uint8Array(written.reverse().buffer));
        expect(Array.from(floats.dataSync()), message).toEqual(Array.from(written));
        tf.dispose([floats, ints, big]);
        expect(tf.memory().numTensors).toBe(before);
      });

      it("a model built for loading with the heap makes every weight a placeholder through the registry's Zeros", async () => {
        const source = buildModel(runtime);
        const real = wasmHeap(variant().tf)!;
        let allocated = 0;
        const counting: WasmHeap = {
          allocate: (shape, dtype) => {
            allocated++;
            return real.allocate(shape, dtype);
          },
          bytesOf: (tensor) => real.bytesOf(tensor),
        };
        const map = runtime.tf.serialization.SerializationMap.getMap().classNameMap;
        const snapshot = { ...map };
        const built = await buildForLoading(variant(), source.toJSON(null, false) as object, counting)!;
        expect(
          allocated,
          `buildForLoading (${ADAPTER}) made ${allocated} of ${built.weights.length} weights as placeholders: check ` +
            "that tfjs-layers' fast weight init still gets its initializer from the serialization registry's 'Zeros' " +
            'entry (getInitializer("zeros"), Layer.addWeight) and calls its apply(shape, dtype).',
        ).toBe(built.weights.length);
        expect({ ...map }, 'the serialization registry is restored after the build').toEqual(snapshot);
        built.dispose();
        source.dispose();
      });
    }
  },
);

describe.each(['cpu', 'wasm'] as const)('the version guard, on the %s backend', (backend) => {
  let warn: MockInstance<typeof console.warn>;
  let artifacts: io.ModelArtifacts;
  let expected: number[];

  beforeAll(async () => {
    expect(await runtime.tf.setBackend(backend)).toBe(true);
    const model = buildModel(runtime);
    artifacts = await artifactsOf(model);
    expected = predict(runtime, model);
    model.dispose();
  });
  beforeEach(() => {
    warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
  });
  afterEach(() => {
    warn.mockRestore();
  });

  const said = (pattern: RegExp) =>
    warn.mock.calls.map((c) => String(c[0])).filter((m) => m.startsWith('aiaas:') && pattern.test(m));

  /** Loads twice through the function's path: the same predictions, the reason said once. */
  async function loadsThroughTfjs(fake: TfRuntime, reason: RegExp) {
    const { tf } = runtime;
    expect(internalsProblem(fake)).toMatch(reason);
    expect(await loadLayersModelFast(fake, { ...artifacts }), 'the fast route is refused').toBeUndefined();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 2; i++) {
      const loaded = await loadModel(fake, { load: async () => ({ ...artifacts }) });
      expect(predict(runtime, loaded.model as LayersModel)).toEqual(expected);
      loaded.model.dispose();
    }
    expect(tf.memory().numTensors).toBe(before);
    expect(said(reason), 'the reason is logged, once').toHaveLength(1);
  }

  it('refuses the internals on a tfjs-core version they were not checked against', async () => {
    await loadsThroughTfjs(
      variant({ version_core: `9.${backend.length}.0` }),
      /tfjs-core 9\.\d\.0 is not a version/,
    );
  });

  it('refuses the internals on a tfjs-layers version they were not checked against', async () => {
    await loadsThroughTfjs(
      variant({}, { version_layers: `4.99.${backend.length}` }),
      /tfjs-layers 4\.99\.\d is not a version/,
    );
  });

  // Once: the reason is the same on both backends, and is said once per process.
  if (backend === 'cpu') {
    it('refuses the internals when the serialization registry has no Zeros entry', async () => {
      const { Zeros: _, ...classNameMap } = runtime.tf.serialization.SerializationMap.getMap().classNameMap;
      const serialization = Object.create(runtime.tf.serialization, {
        SerializationMap: { value: { getMap: () => ({ classNameMap }) } },
      });
      await loadsThroughTfjs(variant({ serialization }), /no Zeros initializer entry/);
    });
  }

  it('a version received through the registry loads from its bytes, the same model, when the version is untested', async () => {
    const fake = variant({ version_core: `8.${backend.length}.1` });
    const model = buildModel(runtime);
    const signature = signatureOf(runtime, model);
    model.dispose();
    const registry = new ModelRegistry(new MemoryObjectStore());
    const { version } = await registry.publish('m', artifactsToFiles(artifacts, 300), {
      format: 'layers-model',
      signature,
      metrics: {},
      source: { kind: 'publish', test: true },
      parent: null,
    });
    const received = await receiveVersion(registry, 'm', version, { runtimeFor: async () => fake });
    expect(received.weights, 'no weights received into tensors').toBeUndefined();
    const loaded = await loadReceived(fake, received);
    expect(predict(runtime, loaded.model as LayersModel)).toEqual(expected);
    loaded.model.dispose();
    expect(said(/tfjs-core 8\.\d\.1/)).toHaveLength(1);
  });

  if (backend === 'wasm') {
    it('without typedArrayFromHeap, weights are made the public way and the model predicts the same', async () => {
      const { tf } = runtime;
      const real = tf.backend();
      const lacking = Object.create(real, { typedArrayFromHeap: { value: undefined } });
      const fake = variant({ backend: () => lacking });
      expect(wasmHeap(fake.tf)).toBeUndefined();
      expect(internalsProblem(fake)).toMatch(/wasm backend has no typedArrayFromHeap/);
      const shards = artifactsToFiles(artifacts, 300)
        .filter((f) => f.name !== 'model.json')
        .map((f) => [f.name, f.bytes.byteLength] as const);
      expect(WeightReceiver.for(fake, artifacts, shards), 'no receiving into the heap').toBeUndefined();
      const before = tf.memory().numTensors;
      for (let i = 0; i < 2; i++) {
        const fast = await loadLayersModelFast(fake, { ...artifacts });
        expect(Object.values(fast!.paths)).not.toContain('heap');
        expect(predict(runtime, fast!.model)).toEqual(expected);
        fast!.model.dispose();
      }
      expect(tf.memory().numTensors).toBe(before);
      expect(said(/typedArrayFromHeap/), 'the reason is logged, once').toHaveLength(1);
    });

    it('with the internals trusted, nothing is said and the weights go to the heap', async () => {
      const fast = await loadLayersModelFast(variant(), { ...artifacts });
      expect(new Set(Object.values(fast!.paths))).toEqual(new Set(['heap']));
      expect(predict(runtime, fast!.model)).toEqual(expected);
      fast!.model.dispose();
      expect(said(/./)).toEqual([]);
    });
  }
});
