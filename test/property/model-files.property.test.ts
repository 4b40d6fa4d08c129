/**
 * Model files are untrusted input (fast-check). Random and adversarial model folders (manifest
 * paths with `..`, absolute and Windows paths, symbolic links to files and folders inside and
 * outside, shards too long or short, missing files, random JSON and bytes as model.json) and
 * random and adversarial `.keras` archives (real, random, truncated and lying entries, zip bombs
 * as weights and as extra entries, damaged archives) always end in a correct read or a typed
 * ValidationError naming the file; a folder never yields a byte of a file outside it (a sentinel
 * secret beside it, sometimes of exactly the right length); and reading a sample of the archives in
 * a fresh process never grows its memory by 100 MB.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { deflateRawSync } from 'node:zlib';
import fc from 'fast-check';
import { unzipSync } from 'fflate';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ValidationError } from '../../functions/shared/errors.js';
import { convertKeras } from '../../functions/shared/keras/convert.js';
import { readModelFromDisk } from '../../functions/shared/model/folder.js';
import { buildZip, zerosDeflated } from '../support/zip.js';

const MEMORY_BOUND = 100 * 2 ** 20;
const SECRET = new TextEncoder().encode('aws_secret_access_key=SENTINEL-0123456789abcdef0123456789ab');
/** A dense 3 → 2 layer: kernel [3, 2] and bias [2], float32, 32 bytes. */
const SPECS = [
  { name: 'dense/kernel', shape: [3, 2], dtype: 'float32' },
  { name: 'dense/bias', shape: [2], dtype: 'float32' },
];
const WEIGHTS = new Uint8Array(new Float32Array([1, 2, 3, 4, 5, 6, 0.5, -0.5]).buffer);
const TOPOLOGY = {
  class_name: 'Sequential',
  config: {
    name: 'seq',
    layers: [{ class_name: 'Dense', config: { name: 'dense', units: 2, batch_input_shape: [null, 3] } }],
  },
};

const keras = new Uint8Array(
  readFileSync(resolve(import.meta.dirname, '../fixtures/keras/functional.keras')),
);
const kerasInside = unzipSync(keras);

let base: string;
let bomb: Uint8Array;
let count = 0;
beforeAll(async () => {
  base = mkdtempSync(join(tmpdir(), 'aiaas-model-files-'));
  writeFileSync(join(base, 'credentials'), SECRET);
  mkdirSync(join(base, 'outside'));
  // Outside files of every length a shard can need, so a link out is refused by the path rule alone.
  for (let n = 0; n <= WEIGHTS.length + 8; n++)
    writeFileSync(join(base, `outside/part-${n}.bin`), SECRET.subarray(0, n));
  bomb = await zerosDeflated(1024);
});
afterAll(() => rmSync(base, { recursive: true, force: true }));

// ---- folders ---------------------------------------------------------------------------------

const KINDS = [
  'ok',
  'link-in',
  'dotdot',
  'absolute',
  'backslash',
  'link-out',
  'dir-link-out',
  'missing',
] as const;
type Kind = (typeof KINDS)[number];

const shardArb = fc.record({
  kind: fc.oneof({ weight: 4, arbitrary: fc.constantFrom<Kind>('ok', 'link-in') }, fc.constantFrom(...KINDS)),
  sub: fc.boolean(),
  delta: fc.oneof(
    { weight: 4, arbitrary: fc.constant(0) },
    fc.integer({ min: -8, max: 8 }),
    fc.constant(4096),
  ),
  cut: fc.nat({ max: WEIGHTS.length }),
});
const folderArb = fc.record({
  shards: fc.array(shardArb, { minLength: 1, maxLength: 3 }),
  model: fc.oneof(
    { weight: 6, arbitrary: fc.constant<'valid'>('valid') },
    fc.json().map((text) => ({ text })),
    fc.uint8Array({ maxLength: 64 }).map((bytes) => ({ bytes })),
    // A real manifest shape around hostile values.
    fc.anything().map((weights) => ({
      text:
        JSON.stringify({ modelTopology: TOPOLOGY, weightsManifest: [{ paths: ['x.bin'], weights }] }) ?? '',
    })),
  ),
});

interface BuiltFolder {
  readonly dir: string;
  readonly paths: string[];
  readonly valid: boolean;
  /** The weight bytes as written, shard after shard. */
  readonly written: Uint8Array;
}

type FolderSpec = typeof folderArb extends fc.Arbitrary<infer T> ? T : never;

function buildFolder(spec: FolderSpec): BuiltFolder {
  const dir = join(base, `model-${++count}`);
  mkdirSync(join(dir, 'w'), { recursive: true });
  const cuts = [...spec.shards.map((s) => s.cut).slice(1), 0, WEIGHTS.length].sort((a, b) => a - b);
  // model.json states a weight group's size, not each shard's (tfjs concatenates a group's shards),
  // so shards cut elsewhere that add up to the group's size are a valid model: of the bytes written.
  let valid = spec.model === 'valid';
  const contents: Uint8Array[] = [];
  const paths = spec.shards.map((shard, i) => {
    const part = WEIGHTS.subarray(cuts[i]!, i === spec.shards.length - 1 ? WEIGHTS.length : cuts[i + 1]!);
    const length = Math.max(0, part.length + shard.delta);
    if (shard.kind !== 'ok' && shard.kind !== 'link-in') valid = false;
    const content = new Uint8Array(length);
    content.set(part.subarray(0, length));
    contents.push(content);
    const name = `${shard.sub ? 'w/' : ''}shard-${i}.bin`;
    switch (shard.kind) {
      case 'ok':
        writeFileSync(join(dir, name), content);
        return name;
      case 'link-in':
        writeFileSync(join(dir, `real-${i}.bin`), content);
        symlinkSync(shard.sub ? `../real-${i}.bin` : `real-${i}.bin`, join(dir, name));
        return name;
      case 'dotdot':
        return shard.sub ? 'w/../../credentials' : '../credentials';
      case 'absolute':
        return join(base, 'credentials');
      case 'backslash':
        return shard.sub ? 'w\\..\\..\\credentials' : '..\\credentials';
      case 'link-out':
        symlinkSync(
          shard.sub ? join(base, `outside/part-${length}.bin`) : `../outside/part-${length}.bin`,
          join(dir, name),
        );
        return name;
      case 'dir-link-out':
        symlinkSync(join(base, 'outside'), join(dir, `out-${i}`));
        return `out-${i}/part-${length}.bin`;
      default:
        // missing: named, never written.
        return name;
    }
  });
  const model = spec.model;
  const bytes =
    model === 'valid'
      ? JSON.stringify({
          format: 'layers-model',
          modelTopology: TOPOLOGY,
          weightsManifest: [{ paths, weights: SPECS }],
        })
      : 'text' in model
        ? model.text
        : model.bytes;
  writeFileSync(join(dir, 'model.json'), bytes);
  const written = Uint8Array.from(contents.flatMap((c) => [...c]));
  if (written.length !== WEIGHTS.length) valid = false;
  return { dir, paths, valid, written };
}

function weightBytes(data: unknown): Uint8Array {
  if (data === undefined) return new Uint8Array(0);
  const parts = (Array.isArray(data) ? data : [data]) as ArrayBuffer[];
  return Uint8Array.from(parts.flatMap((p) => [...new Uint8Array(p)]));
}

function containsSecret(bytes: Uint8Array): boolean {
  const secret = Buffer.from(SECRET.subarray(0, 8));
  return Buffer.from(bytes).includes(secret);
}

describe('model folders', () => {
  it('read exactly their own shards or are refused naming a file, never yielding a byte from outside', async () => {
    await fc.assert(
      fc.asyncProperty(folderArb, async (spec) => {
        const folder = buildFolder(spec);
        const outcome = await readModelFromDisk(folder.dir).then(
          (artifacts) => ({ artifacts }),
          (error: unknown) => ({ error }),
        );
        if ('artifacts' in outcome) {
          const bytes = weightBytes(outcome.artifacts.weightData);
          expect(containsSecret(bytes)).toBe(false);
          expect(folder.valid).toBe(true);
          expect(bytes).toEqual(folder.written);
          return;
        }
        const error = outcome.error as Error;
        expect(error).toBeInstanceOf(ValidationError);
        expect(folder.valid, error.message).toBe(false);
        const named = ['model.json', ...folder.paths].some((p) => error.message.includes(p));
        expect(named, error.message).toBe(true);
        expect(error.message).not.toMatch(/\n/);
      }),
      { numRuns: 300 },
    );
  });
});

// ---- .keras archives ----------------------------------------------------------------------------

const NAMES = ['config.json', 'model.weights.h5', 'metadata.json', 'assets/vocab.txt', '../../etc/passwd'];
const CONTENTS = ['config.json', 'model.weights.h5', 'metadata.json', 'random', 'bomb', 'truncated'] as const;

const entryArb = fc.record({
  name: fc.oneof({ weight: 5, arbitrary: fc.constantFrom(...NAMES) }, fc.string({ maxLength: 12 })),
  content: fc.constantFrom(...CONTENTS),
  random: fc.uint8Array({ maxLength: 200 }),
  method: fc.constantFrom(0, 8),
  lie: fc.option(fc.oneof(fc.nat({ max: 2 ** 32 - 1 }), fc.constant(2 ** 30), fc.nat({ max: 100_000 })), {
    freq: 3,
  }),
  cut: fc.double({ min: 0, max: 1, noNaN: true }),
});
type EntrySpec = typeof entryArb extends fc.Arbitrary<infer T> ? T : never;

const archiveArb = fc.record({
  entries: fc.oneof(
    // Mostly a real model's entries, with something added or changed.
    fc
      .array(entryArb, { maxLength: 2 })
      .map((extra) => [
        { name: 'config.json', content: 'config.json', method: 0 } as Partial<EntrySpec>,
        { name: 'model.weights.h5', content: 'model.weights.h5', method: 8 },
        ...extra,
      ]),
    fc.array(entryArb, { maxLength: 5 }),
  ),
  truncate: fc.oneof(
    { weight: 4, arbitrary: fc.constant(null) },
    fc.integer({ min: 0, max: 999 }).map((n) => n / 1000),
  ),
  flips: fc.oneof(
    { weight: 3, arbitrary: fc.constant([]) },
    fc.array(
      fc.tuple(
        fc.integer({ min: 0, max: 999 }).map((n) => n / 1000),
        fc.integer({ min: 1, max: 255 }),
      ),
      {
        maxLength: 3,
      },
    ),
  ),
});

type ArchiveSpec = typeof archiveArb extends fc.Arbitrary<infer T> ? T : never;

function buildArchive(spec: ArchiveSpec): Uint8Array {
  const entries = (spec.entries as Partial<EntrySpec>[]).map((e) => {
    const content = e.content ?? 'random';
    let data: Uint8Array;
    let size: number;
    let method = e.method ?? 0;
    if (content === 'bomb') {
      method = 8;
      data = bomb.subarray(0, Math.max(2, Math.floor((e.cut ?? 1) * bomb.length)));
      size = 2 ** 30;
    } else {
      const raw =
        content === 'random'
          ? (e.random ?? new Uint8Array(0))
          : content === 'truncated'
            ? kerasInside['model.weights.h5']!.subarray(0, Math.floor((e.cut ?? 0.5) * 30_000))
            : kerasInside[content]!;
      size = raw.length;
      data = method === 8 ? new Uint8Array(deflateRawSync(raw)) : raw;
    }
    return { name: e.name ?? 'x', data, method, size: e.lie ?? size };
  });
  let archive = buildZip(entries);
  for (const [at, xor] of spec.flips) {
    const i = Math.floor(at * (archive.length - 1));
    archive[i] = archive[i]! ^ xor;
  }
  if (spec.truncate !== null) archive = archive.subarray(0, Math.floor(spec.truncate * archive.length));
  return archive;
}

describe('.keras archives', () => {
  it('convert or are refused with a typed error naming the archive', async () => {
    await fc.assert(
      fc.asyncProperty(archiveArb, async (spec) => {
        const archive = buildArchive(spec);
        const file = `model-${++count}.keras`;
        const outcome = await convertKeras(archive, file).then(
          (conversion) => ({ conversion }),
          (error: unknown) => ({ error }),
        );
        if ('conversion' in outcome) {
          expect(outcome.conversion.artifacts.weightSpecs?.length).toBeGreaterThan(0);
          return;
        }
        const error = outcome.error as Error;
        expect(error, String(error)).toBeInstanceOf(ValidationError);
        expect(error.message.startsWith(file), error.message).toBe(true);
        expect(error.message).not.toMatch(/\n/);
      }),
      { numRuns: 200 },
    );
  });

  it('never grow a fresh process’s memory by 100 MB, bombs included', () => {
    const files = fc.sample(archiveArb, { numRuns: 40, seed: 1616 }).map((spec, i) => {
      const file = join(base, `sample-${i}.keras`);
      writeFileSync(file, buildArchive(spec));
      return file;
    });
    // The bombs as weights and as an extra entry, whatever the sample drew.
    const stored = (name: string) => ({ name, data: kerasInside[name]! });
    writeFileSync(
      join(base, 'sample-bomb.keras'),
      buildZip([stored('config.json'), { name: 'model.weights.h5', data: bomb, method: 8, size: 2 ** 30 }]),
    );
    writeFileSync(
      join(base, 'sample-extra.keras'),
      buildZip([
        stored('config.json'),
        stored('model.weights.h5'),
        { name: 'assets/x', data: bomb, method: 8, size: 1000 },
        { name: 'assets/y', data: bomb, method: 8, size: 2 ** 30 },
      ]),
    );
    files.push(join(base, 'sample-bomb.keras'), join(base, 'sample-extra.keras'));
    const child = spawnSync(
      process.execPath,
      ['--import', 'tsx', resolve(import.meta.dirname, '../support/read-model-memory.ts'), ...files],
      { encoding: 'utf8', timeout: 180_000 },
    );
    expect(child.status, child.stderr).toBe(0);
    const results = child.stdout
      .trim()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map(
        (l) =>
          JSON.parse(l) as { file: string; ok: boolean; name?: string; message?: string; growth: number },
      );
    expect(results).toHaveLength(files.length);
    for (const r of results) {
      const name = r.file.split('/').at(-1)!;
      expect(r.growth, `${name}: ${r.message}`).toBeLessThan(MEMORY_BOUND);
      if (!r.ok) expect(r.message!.startsWith(name), r.message).toBe(true);
    }
    expect(results.filter((r) => !r.ok).length).toBeGreaterThan(0);
  });
});
