/**
 * Publishing a TF.js model folder treats it as untrusted input: every weight path stays inside the
 * folder (no `..`, no absolute path, no symbolic link out), and every shard is exactly as long as
 * its weights need. What would be published never holds a byte of a file outside the folder.
 */
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { publishFromDisk } from '../../cli/publish.js';
import { ValidationError } from '../../functions/shared/errors.js';
import { captureIOHandler } from '../../functions/shared/model/artifacts.js';
import { readModelFromDisk } from '../../functions/shared/model/folder.js';
import { ModelRegistry } from '../../functions/shared/registry/registry.js';
import type { TfRuntime } from '../../functions/shared/runtime/types.js';
import { createRuntime } from '../../layers/tfjs-runtime/runtime.js';
import { MemoryObjectStore } from '../support/memory-store.js';

let runtime: TfRuntime;
let base: string;
let topology: unknown;
/** A dense 3 → 2 layer's weights: kernel [3, 2] and bias [2], float32: 32 bytes. */
const SPECS = [
  { name: 'dense/kernel', shape: [3, 2], dtype: 'float32' },
  { name: 'dense/bias', shape: [2], dtype: 'float32' },
];
const WEIGHTS = new Uint8Array(new Float32Array([1, 2, 3, 4, 5, 6, 0.5, -0.5]).buffer);
/** Bytes that must never leave their file: a credentials file beside the model folder. */
const SECRET = new TextEncoder().encode('aws_secret_access_key=SENTINEL-0123456789abcdef0123456789ab');

beforeAll(async () => {
  runtime = await createRuntime('cpu');
  const net = runtime.layers.sequential({
    layers: [runtime.layers.layers.dense({ units: 2, inputShape: [3], name: 'dense' })],
  });
  const capture = captureIOHandler();
  await net.save(capture);
  net.dispose();
  topology = capture.artifacts!.modelTopology;
  base = mkdtempSync(join(tmpdir(), 'aiaas-folder-'));
  writeFileSync(join(base, 'credentials'), SECRET);
  mkdirSync(join(base, 'outside'));
  writeFileSync(join(base, 'outside/shard.bin'), SECRET.subarray(0, 32));
});
afterAll(() => rmSync(base, { recursive: true, force: true }));

let count = 0;
/** A fresh model folder under `base` with model.json listing `paths` and `specs`. */
function folder(paths: unknown[], specs: unknown[] = SPECS, files: Record<string, Uint8Array> = {}): string {
  const dir = join(base, `model-${++count}`);
  mkdirSync(dir);
  writeFileSync(
    join(dir, 'model.json'),
    JSON.stringify({
      format: 'layers-model',
      modelTopology: topology,
      weightsManifest: [{ paths, weights: specs }],
    }),
  );
  for (const [name, bytes] of Object.entries(files)) {
    mkdirSync(join(dir, name, '..'), { recursive: true });
    writeFileSync(join(dir, name), bytes);
  }
  return dir;
}

function weightBytes(data: unknown): Uint8Array {
  const parts = (Array.isArray(data) ? data : [data]) as ArrayBuffer[];
  return Uint8Array.from(parts.flatMap((p) => [...new Uint8Array(p)]));
}

async function refusal(dir: string): Promise<ValidationError> {
  const error = await readModelFromDisk(dir).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ValidationError);
  return error as ValidationError;
}

describe('readModelFromDisk', () => {
  it('reads a folder whose shards are inside it, in subfolders too, and through links that stay inside', async () => {
    const dir = folder(['weights/a.bin', 'b.bin'], SPECS, {
      'weights/a.bin': WEIGHTS.subarray(0, 20),
      'real-b.bin': WEIGHTS.subarray(20),
    });
    symlinkSync(join(dir, 'real-b.bin'), join(dir, 'b.bin'));
    const artifacts = await readModelFromDisk(dir);
    expect(weightBytes(artifacts.weightData)).toEqual(WEIGHTS);
    expect(artifacts.weightSpecs).toEqual(SPECS);
    expect(weightBytes((await readModelFromDisk(join(dir, 'model.json'))).weightData)).toEqual(WEIGHTS);
  });

  it('refuses ".." and absolute paths, naming the path, before reading anything', async () => {
    const traversal = await refusal(folder(['../credentials']));
    expect(traversal.message).toMatch(/"\.\.\/credentials" leaves the model folder/);
    const deep = await refusal(folder(['sub/../../credentials'], SPECS, { 'sub/x': new Uint8Array(1) }));
    expect(deep.message).toMatch(/sub\/\.\.\/\.\.\/credentials" leaves the model folder/);
    const absolute = await refusal(folder([join(base, 'credentials')]));
    expect(absolute.message).toMatch(/credentials" is an absolute path/);
    for (const path of [
      'C:\\Users\\me\\.aws\\credentials',
      '\\\\server\\share\\x',
      'file:///etc/passwd',
      '',
    ]) {
      expect((await refusal(folder([path]))).message).toMatch(/absolute path|not a file name/);
    }
  });

  it('refuses a shard that is, or lies under, a symbolic link leading out of the folder', async () => {
    const file = folder(['shard.bin']);
    symlinkSync(join(base, 'outside/shard.bin'), join(file, 'shard.bin'));
    expect((await refusal(file)).message).toMatch(
      /weight shard shard\.bin .*resolves outside the model folder/,
    );
    const dir = folder(['weights/shard.bin']);
    symlinkSync(join(base, 'outside'), join(dir, 'weights'));
    expect((await refusal(dir)).message).toMatch(/weights\/shard\.bin .*resolves outside the model folder/);
    // model.json itself, in a folder given by name, is held to the same rule.
    const linked = join(base, `model-${++count}`);
    mkdirSync(linked);
    symlinkSync(
      join(folder(['x.bin'], SPECS, { 'x.bin': WEIGHTS }), 'model.json'),
      join(linked, 'model.json'),
    );
    expect((await refusal(linked)).message).toMatch(/model\.json resolves outside the model folder/);
  });

  it('refuses a shard longer or shorter than its weights need, naming the file and both lengths', async () => {
    const longer = new Uint8Array(4096);
    longer.set(WEIGHTS);
    expect((await refusal(folder(['shard.bin'], SPECS, { 'shard.bin': longer }))).message).toMatch(
      /weight shard shard\.bin is 4096 bytes, but the weights .*model\.json lists need 32 bytes in it/,
    );
    expect(
      (await refusal(folder(['shard.bin'], SPECS, { 'shard.bin': WEIGHTS.subarray(0, 31) }))).message,
    ).toMatch(/weight shard shard\.bin is 31 bytes, .* need 32 bytes/);
    // Two shards: the one that runs past the weights is named.
    const two = await refusal(
      folder(['a.bin', 'b.bin'], SPECS, { 'a.bin': WEIGHTS.subarray(0, 16), 'b.bin': new Uint8Array(40) }),
    );
    expect(two.message).toMatch(
      /weight shard b\.bin is 40 bytes, .* need 16 bytes in it \(weight group 1: 56 bytes in 2 shards, needs 32\)/,
    );
  });

  it('sizes quantized and int32 weights by their stored dtype', async () => {
    const specs = [
      {
        name: 'dense/kernel',
        shape: [3, 2],
        dtype: 'float32',
        quantization: { dtype: 'uint8', scale: 0.1, min: 0 },
      },
      { name: 'dense/bias', shape: [2], dtype: 'float32', quantization: { dtype: 'float16' } },
      { name: 'step', shape: [], dtype: 'int32' },
    ];
    const ok = await readModelFromDisk(folder(['q.bin'], specs, { 'q.bin': new Uint8Array(6 + 4 + 4) }));
    expect(weightBytes(ok.weightData).length).toBe(14);
    expect((await refusal(folder(['q.bin'], specs, { 'q.bin': new Uint8Array(32) }))).message).toMatch(
      /q\.bin is 32 bytes, .* need 14 bytes/,
    );
  });

  it('refuses missing shards, non-files, bad specs and broken model.json with the file named', async () => {
    expect((await refusal(folder(['gone.bin']))).message).toMatch(
      /Cannot read weight shard gone\.bin named in .*model\.json: ENOENT/,
    );
    const dirShard = folder(['sub'], SPECS, { 'sub/x': new Uint8Array(1) });
    expect((await refusal(dirShard)).message).toMatch(/weight shard sub .* is not a regular file/);
    expect(
      (await refusal(folder(['s.bin'], [{ name: 'w', shape: [-1], dtype: 'float32' }]))).message,
    ).toMatch(/weightsManifest\[0\]\.weights\[0\] \(w\) has shape \[-1\]/);
    expect((await refusal(folder(['s.bin'], [{ name: 'w', shape: [1], dtype: 'float64' }]))).message).toMatch(
      /unknown dtype "float64"/,
    );
    expect((await refusal(folder([42]))).message).toMatch(/paths\[0\] is not a file name/);
    const twice = folder(['a.bin', 'a.bin'], SPECS, { 'a.bin': WEIGHTS.subarray(0, 16) });
    expect((await refusal(twice)).message).toMatch(/weight shard a\.bin is listed twice in .*model\.json/);
    expect((await refusal(folder([]))).message).toMatch(
      /weightsManifest\[0\] lists weights that need 32 bytes, but names no shard/,
    );
    const broken = join(base, `model-${++count}`);
    mkdirSync(broken);
    writeFileSync(join(broken, 'model.json'), '{"modelTopology": ');
    expect((await refusal(broken)).message).toMatch(/model\.json is not valid JSON/);
    expect((await refusal(join(base, 'nowhere'))).message).toMatch(
      /Cannot read .*nowhere\/model\.json: ENOENT/,
    );
  });

  it('publishes nothing of a file outside the folder, whatever the manifest says', async () => {
    const store = new MemoryObjectStore();
    const registry = new ModelRegistry(store, { actor: 'test' });
    const attempts = [
      folder(['../credentials']),
      folder([join(base, 'credentials')]),
      folder(['../outside/shard.bin']),
    ];
    const linked = folder(['w.bin']);
    symlinkSync(join(base, 'credentials'), join(linked, 'w.bin'));
    attempts.push(linked);
    for (const dir of attempts) {
      await expect(publishFromDisk(registry, runtime, dir, { model: 'm' })).rejects.toThrow(ValidationError);
    }
    const good = await publishFromDisk(registry, runtime, folder(['w.bin'], SPECS, { 'w.bin': WEIGHTS }), {
      model: 'm',
    });
    expect(good.metadata.version).toBe(1);
    const secret = Buffer.from(SECRET.subarray(0, 16));
    for (const [key, object] of store.objects) {
      expect(Buffer.from(object.body).includes(secret), key).toBe(false);
    }
  });
});
