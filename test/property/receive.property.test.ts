/**
 * Weights received straight into tensors (receiveVersion, WeightReceiver) against the model they
 * came from, whatever the shard size, however the bodies are cut into chunks, in whatever order
 * files and chunks arrive relative to model.json and the runtime, and with reads retried half way.
 */
import { createHash } from 'node:crypto';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { IntegrityError } from '../../functions/shared/errors.js';
import { artifactsToFiles, captureIOHandler, signatureOf } from '../../functions/shared/model/artifacts.js';
import { loadReceived, receiveVersion } from '../../functions/shared/model/receive.js';
import { ModelRegistry } from '../../functions/shared/registry/registry.js';
import type { GetOptions, StoredObject } from '../../functions/shared/registry/store.js';
import type { TfRuntime } from '../../functions/shared/runtime/types.js';
import { createRuntime } from '../../layers/tfjs-runtime/runtime.js';
import { MemoryObjectStore } from '../support/memory-store.js';

let runtime: TfRuntime;
beforeAll(async () => {
  runtime = await createRuntime('wasm');
  expect(runtime.kind).toBe('wasm');
});

/** How one read of one file goes: its chunk sizes, how long each waits, and a failed first attempt. */
interface Delivery {
  readonly chunk: number;
  readonly waits: readonly number[];
  /** Bytes of garbage a first attempt writes before it fails (the reader then retries from 0). */
  readonly failedAfter?: number;
}

/**
 * An ObjectStore that honours `into` the way S3ObjectReader does, but cuts each body into chunks of
 * the test's choosing and lets other reads run between them; or ignores `into`, as stores may.
 */
class ChunkingStore extends MemoryObjectStore {
  honoursInto = true;
  corrupt: string | undefined;
  longer: string | undefined;
  deliveries: Delivery[] = [];
  private next = 0;

  override async get(key: string, options: GetOptions = {}): Promise<StoredObject | undefined> {
    const object = await super.get(key);
    if (!object) return object;
    let body = object.body;
    if (this.corrupt && key.includes(this.corrupt)) {
      body = body.slice();
      body[body.length >> 1]! ^= 0xff;
    }
    if (this.longer && key.includes(this.longer)) body = new Uint8Array([...body, 1, 2, 3, 4, 5]);
    const delivery = this.deliveries[this.next++ % Math.max(1, this.deliveries.length)] ?? {
      chunk: 1 << 20,
      waits: [0],
    };
    const sink = this.honoursInto ? options.into?.(body.byteLength) : undefined;
    const sha256 = options.sha256 ? createHash('sha256').update(body).digest('hex') : undefined;
    if (!sink) return { ...object, body, ...(sha256 ? { sha256 } : {}) };
    const pause = async (i: number) => {
      for (let n = delivery.waits[i % delivery.waits.length] ?? 0; n > 0; n--) await Promise.resolve();
      if ((delivery.waits[i % delivery.waits.length] ?? 0) > 3) await new Promise(setImmediate);
    };
    if (delivery.failedAfter !== undefined) {
      const garbage = new Uint8Array(Math.min(delivery.failedAfter, body.byteLength)).fill(0xa5);
      for (let at = 0, i = 0; at < garbage.byteLength; at += delivery.chunk, i++) {
        sink.write(garbage.subarray(at, at + delivery.chunk), at);
        await pause(i);
      }
    }
    for (let at = 0, i = 0; at < body.byteLength; at += delivery.chunk, i++) {
      await pause(i);
      sink.write(body.subarray(at, at + delivery.chunk), at);
    }
    return {
      body: new Uint8Array(0),
      etag: object.etag,
      sunk: { bytes: body.byteLength },
      ...(sha256 ? { sha256 } : {}),
    };
  }
}

/** A small dense network with distinct weights, published with shards of `shardBytes`. */
async function publish(store: ChunkingStore, units: readonly number[], inputs: number, shardBytes: number) {
  const { tf, layers } = runtime;
  const net = layers.sequential();
  units.forEach((u, i) => {
    net.add(layers.layers.dense({ units: u, ...(i === 0 ? { inputShape: [inputs] } : {}) }));
  });
  net.setWeights(
    net.weights.map((w, i) => {
      const size = w.shape.reduce((n: number, d) => n * (d ?? 1), 1);
      return tf.tensor(
        Array.from({ length: size }, (_, j) => Math.sin(i * 1000 + j) * 3),
        w.shape as number[],
      );
    }),
  );
  const capture = captureIOHandler();
  await net.save(capture);
  const expected = net.getWeights().map((w) => Array.from(w.dataSync()));
  const signature = signatureOf(runtime, net);
  net.dispose();
  const registry = new ModelRegistry(store);
  const metadata = await registry.publish('m', artifactsToFiles(capture.artifacts!, shardBytes), {
    format: 'layers-model',
    signature,
    metrics: {},
    source: { kind: 'publish', test: true },
    parent: null,
  });
  return { registry, version: metadata.version, expected };
}

const weightsOf = (model: LayersModel) => model.getWeights().map((w) => Array.from(w.dataSync()));

describe('receiving weights straight into tensors', () => {
  it('builds the very model that was published, however its bodies arrive', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 1, max: 9 }), { minLength: 1, maxLength: 3 }),
        fc.integer({ min: 1, max: 7 }),
        fc.integer({ min: 4, max: 700 }),
        fc.array(
          fc.record({
            chunk: fc.integer({ min: 1, max: 300 }),
            waits: fc.array(fc.integer({ min: 0, max: 6 }), { minLength: 1, maxLength: 5 }),
            failedAfter: fc.option(fc.integer({ min: 0, max: 500 }), { nil: undefined }),
          }),
          { minLength: 1, maxLength: 6 },
        ),
        fc.integer({ min: 0, max: 6 }),
        fc.boolean(),
        async (units, inputs, shardBytes, deliveries, runtimeWaits, honoursInto) => {
          const { tf } = runtime;
          const store = new ChunkingStore();
          const { registry, version, expected } = await publish(store, units, inputs, shardBytes);
          store.deliveries = deliveries;
          store.honoursInto = honoursInto;
          const before = tf.memory().numTensors;
          const received = await receiveVersion(registry, 'm', version, {
            runtimeFor: async () => {
              for (let n = runtimeWaits; n > 0; n--) await new Promise(setImmediate);
              return runtime;
            },
          });
          expect(received.weights).toBeDefined();
          expect([...received.files.keys()]).toEqual(['model.json']);
          const loaded = await loadReceived(runtime, received);
          expect(weightsOf(loaded.model as LayersModel)).toEqual(expected);
          loaded.model.dispose();
          expect(tf.memory().numTensors).toBe(before);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('keeps the bytes, exact, when the weights are not for tfjs or the runtime does not start', async () => {
    const store = new ChunkingStore();
    const { registry, version } = await publish(store, [7, 3], 5, 64);
    store.deliveries = [
      { chunk: 13, waits: [0, 2, 5] },
      { chunk: 50, waits: [1], failedAfter: 30 },
    ];
    const published = await registry.readVersion('m', version);
    for (const runtimeFor of [() => undefined, () => Promise.reject(new Error('no wasm here'))]) {
      const received = await receiveVersion(registry, 'm', version, { runtimeFor });
      expect(received.weights).toBeUndefined();
      expect([...received.files.keys()].sort()).toEqual([...published.files.keys()].sort());
      for (const [name, bytes] of published.files) {
        expect(Buffer.from(received.files.get(name)!).equals(Buffer.from(bytes)), name).toBe(true);
      }
    }
  });

  it('rejects a corrupt shard with IntegrityError and frees what it had received', async () => {
    const { tf } = runtime;
    const store = new ChunkingStore();
    const { registry, version } = await publish(store, [16, 4], 6, 100);
    store.deliveries = [{ chunk: 17, waits: [1, 0, 3] }];
    store.corrupt = 'group1-shard2of';
    const before = tf.memory().numTensors;
    const reading = receiveVersion(registry, 'm', version, { runtimeFor: async () => runtime });
    await expect(reading).rejects.toBeInstanceOf(IntegrityError);
    await expect(reading).rejects.toThrow(/group1-shard2of\d+\.bin does not match its sha256/);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('rejects a shard longer than listed without writing past it, and frees what it had received', async () => {
    const { tf } = runtime;
    const store = new ChunkingStore();
    const { registry, version } = await publish(store, [16, 4], 6, 100);
    store.deliveries = [{ chunk: 64, waits: [0, 2] }];
    store.longer = 'group1-shard1of';
    const before = tf.memory().numTensors;
    const reading = receiveVersion(registry, 'm', version, { runtimeFor: async () => runtime });
    await expect(reading).rejects.toThrow(
      /group1-shard1of\d+\.bin does not match its sha256 \(105 bytes, expected 100\)/,
    );
    expect(tf.memory().numTensors).toBe(before);
  });
});
