/**
 * A sharded model read from the local S3 server (s3rver) by the inference function's reader, its
 * weights received straight into wasm tensors: the same predictions as tfjs's own load of the same
 * files, every shard through a sink, and a corrupt shard refused without a tensor left behind.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Tensor } from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IntegrityError } from '../../functions/shared/errors.js';
import {
  artifactsToFiles,
  captureIOHandler,
  disposeModel,
  loadModel,
  signatureOf,
} from '../../functions/shared/model/artifacts.js';
import { loadReceived, receiveVersion } from '../../functions/shared/model/receive.js';
import { keys } from '../../functions/shared/registry/layout.js';
import { RegistryReader } from '../../functions/shared/registry/registry.js';
import { S3ObjectReader } from '../../functions/shared/registry/s3-reader.js';
import type { GetOptions } from '../../functions/shared/registry/store.js';
import type { TfRuntime } from '../../functions/shared/runtime/types.js';
import { createRuntime } from '../../layers/tfjs-runtime/runtime.js';
import { LOCAL_CREDENTIALS, type LocalS3, startLocalS3 } from '../../scripts/local/s3.js';

let dir: string;
let s3: LocalS3;
let runtime: TfRuntime;
let reader: S3ObjectReader;
/** Files of each read that went to a sink. */
const sunk: string[] = [];

beforeAll(async () => {
  runtime = await createRuntime('wasm');
  expect(runtime.kind).toBe('wasm');
  dir = mkdtempSync(join(tmpdir(), 'aiaas-receive-'));
  s3 = await startLocalS3({ directory: dir });
  reader = new S3ObjectReader({
    bucket: s3.bucket,
    endpoint: s3.endpoint,
    credentials: LOCAL_CREDENTIALS,
    region: 'us-east-1',
  });
  const get = reader.get.bind(reader);
  reader.get = async (key: string, options?: GetOptions) => {
    const object = await get(key, options);
    if (object?.sunk) sunk.push(key.slice(key.lastIndexOf('/') + 1));
    return object;
  };
});
afterAll(async () => {
  reader?.destroy();
  await s3?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** A conv + dense model of 85 kB of weights, published in 16 kB shards (6 of them). */
async function publishSharded(model: string) {
  const { tf, layers } = runtime;
  const net = layers.sequential({
    layers: [
      layers.layers.conv2d({ inputShape: [8, 8, 3], filters: 16, kernelSize: 3, activation: 'relu' }),
      layers.layers.flatten(),
      layers.layers.dense({ units: 36, activation: 'tanh' }),
      layers.layers.dense({ units: 2 }),
    ],
  });
  net.setWeights(
    net.weights.map((w, i) => {
      const size = w.shape.reduce((n: number, d) => n * (d ?? 1), 1);
      return tf.tensor(
        Array.from({ length: size }, (_, j) => Math.cos(i * 7919 + j) / 4),
        w.shape as number[],
      );
    }),
  );
  const capture = captureIOHandler();
  await net.save(capture);
  const signature = signatureOf(runtime, net);
  net.dispose();
  const files = artifactsToFiles(capture.artifacts!, 16 * 1024);
  const metadata = await s3.registry.publish(model, files, {
    format: 'layers-model',
    signature,
    metrics: {},
    source: { kind: 'publish', test: true },
    parent: null,
  });
  return { version: metadata.version, artifacts: capture.artifacts!, shards: files.length - 1 };
}

const input = () =>
  runtime.tf.tensor4d(
    Array.from({ length: 2 * 8 * 8 * 3 }, (_, i) => Math.sin(i)),
    [2, 8, 8, 3],
  );

function predict(model: LayersModel): number[] {
  const { tf } = runtime;
  return tf.tidy(() => Array.from((model.predict(input()) as Tensor).dataSync()));
}

describe('weights received straight into tensors from s3rver', () => {
  it('predicts what tfjs loads from the same files, every shard through a sink', async () => {
    const { tf } = runtime;
    const { version, artifacts, shards } = await publishSharded('sharded');
    expect(shards).toBeGreaterThan(5);
    const registry = new RegistryReader(reader);
    const before = tf.memory().numTensors;
    sunk.length = 0;
    const received = await receiveVersion(registry, 'sharded', version, { runtimeFor: async () => runtime });
    expect(received.weights).toBeDefined();
    expect([...received.files.keys()]).toEqual(['model.json']);
    expect(sunk.length).toBe(shards);
    const ours = await loadReceived(runtime, received);
    const theirs = await loadModel(runtime, { load: async () => artifacts });
    expect(predict(ours.model as LayersModel)).toEqual(predict(theirs.model as LayersModel));
    expect(ours.signature).toEqual(theirs.signature);
    disposeModel(ours);
    disposeModel(theirs);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('refuses a shard changed in the registry (IntegrityError), leaving no tensor behind', async () => {
    const { tf } = runtime;
    const { version, shards } = await publishSharded('tampered');
    const name = `group1-shard3of${shards}.bin`;
    const key = keys.file('tampered', version, name);
    const original = (await s3.registry.store.get(key))!.body;
    const changed = original.slice();
    changed[100]! ^= 1;
    await s3.registry.store.put(key, changed);
    const registry = new RegistryReader(reader);
    const before = tf.memory().numTensors;
    const reading = receiveVersion(registry, 'tampered', version, { runtimeFor: async () => runtime });
    await expect(reading).rejects.toBeInstanceOf(IntegrityError);
    await expect(reading).rejects.toThrow(`${name} does not match its sha256`);
    expect(tf.memory().numTensors).toBe(before);
  });
});
