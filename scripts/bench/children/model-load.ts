// Model load on the Lambda's Node (24), beside its floor: a raw parallel GET of the same objects
// with the same reader. Ours is fetch, verify and build of a version given by number, as the
// function loads a version for tfjs: metadata.json, then every file in parallel, sha256-verified
// as it arrives, the weights written straight into their tensors in the wasm heap once model.json
// has said where (receiveVersion), then the model built around them. (The function starts from
// its alias pointer instead, which lists the files: one small GET before the shards either way.)
// Also, for information, a stricter floor: the same GETs, each body written into a buffer
// allocated (and touched) once for all samples, as ours lands in heap memory a previous load
// freed; it pays no page faults for fresh memory. Prints `{"raw": [...], "touched": [...],
// "load": [...]}` (ms).
import { AIAAS_BUCKET, AIAAS_S3_ENDPOINT, requireString } from '../../../functions/shared/env.js';
import { disposeModel } from '../../../functions/shared/model/artifacts.js';
import { loadReceived, receiveVersion } from '../../../functions/shared/model/receive.js';
import { keys } from '../../../functions/shared/registry/layout.js';
import { RegistryReader } from '../../../functions/shared/registry/registry.js';
import { S3ObjectReader } from '../../../functions/shared/registry/s3-reader.js';
import { createRuntime } from '../../../layers/tfjs-runtime/runtime.js';

const model = process.env.BENCH_MODEL!;
const version = Number(process.env.BENCH_VERSION);
const rounds = Number(process.env.BENCH_ROUNDS ?? 9);
const reader = new S3ObjectReader({
  bucket: requireString(process.env, AIAAS_BUCKET),
  endpoint: requireString(process.env, AIAAS_S3_ENDPOINT),
  region: 'us-east-1',
});
const registry = new RegistryReader(reader);
const runtime = await createRuntime('wasm');
const names = Object.keys((await registry.getMetadata(model, version)).files);

const raw = async () => {
  const started = performance.now();
  await Promise.all(names.map((n) => reader.get(keys.file(model, version, n))));
  return performance.now() - started;
};
const landing = new Map<string, Uint8Array>();
const touched = async () => {
  const started = performance.now();
  await Promise.all(
    names.map((n) =>
      reader.get(keys.file(model, version, n), {
        into: (length) => {
          let buffer = landing.get(n);
          if (buffer?.byteLength !== length) {
            buffer = new Uint8Array(length).fill(1);
            landing.set(n, buffer);
          }
          const target = buffer;
          return { write: (bytes, offset) => target.set(bytes, offset) };
        },
      }),
    ),
  );
  return performance.now() - started;
};
const load = async () => {
  const started = performance.now();
  const received = await receiveVersion(registry, model, version, { runtimeFor: async () => runtime });
  if (!received.weights) throw new Error('the weights were not received into tensors');
  const loaded = await loadReceived(runtime, received);
  const ms = performance.now() - started;
  disposeModel(loaded);
  return ms;
};

// s3rver stalls right after serving a large body, which S3 does not (docs/benchmarks.md, model
// load): every sample, floor and ours alike, starts with the server idle again.
const settle = () => new Promise((resolve) => setTimeout(resolve, 300));

// One warm-up of each (connections, JIT, the wasm heap's growth), then turns.
await raw();
await settle();
await touched();
await settle();
await load();
const samples = { raw: [] as number[], touched: [] as number[], load: [] as number[] };
for (let i = 0; i < rounds; i++) {
  await settle();
  samples.raw.push(await raw());
  await settle();
  samples.touched.push(await touched());
  await settle();
  samples.load.push(await load());
}
process.stdout.write(`${JSON.stringify(samples)}\n`);
process.exit(0);
