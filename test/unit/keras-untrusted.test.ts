/**
 * Keras files are untrusted input: a zip bomb is refused before it is inflated (or as soon as it
 * inflates past what it declared), with the process's memory growth measured in a fresh process;
 * a truncated, damaged, empty or garbage file is refused naming the file and what is wrong, with
 * nothing of HDF5's error stack on stderr.
 */
import { spawnSync } from 'node:child_process';
import fs, { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { unzipSync } from 'fflate';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ValidationError } from '../../functions/shared/errors.js';
import { convertKeras, KerasFormatError, KerasWeightsError } from '../../functions/shared/keras/convert.js';
import { buildZip, zerosDeflated } from '../support/zip.js';

const fixtures = resolve(import.meta.dirname, '../fixtures/keras');
const h5 = new Uint8Array(readFileSync(join(fixtures, 'functional.h5')));
const keras = new Uint8Array(readFileSync(join(fixtures, 'functional.keras')));
const inside = unzipSync(keras);
/** The bound on the process's memory growth while a bomb is refused. */
const MEMORY_BOUND = 100 * 2 ** 20;

let work: string;
let bomb: Uint8Array;
beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'aiaas-keras-untrusted-'));
  bomb = await zerosDeflated(1024); // ~1 MB, inflating to 1 GiB
  expect(bomb.length).toBeLessThan(1.1e6);
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

const stored = (name: string) => ({ name, data: inside[name]! });

async function refusal(bytes: Uint8Array, file: string, options = {}): Promise<ValidationError> {
  const error = await convertKeras(bytes, file, options).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error, file).toBeInstanceOf(ValidationError);
  return error as ValidationError;
}

interface Outcome {
  readonly ok: boolean;
  readonly name?: string;
  readonly message?: string;
  /** Peak RSS during the read minus RSS before it (an upper bound, see read-model-memory.ts). */
  readonly growth: number;
}

/** What `aiaas publish <file>` does with each file, read in one fresh process, and how its memory grew. */
function readInFreshProcess(files: Record<string, Uint8Array>): Record<string, Outcome> {
  const paths = Object.entries(files).map(([name, bytes]) => {
    writeFileSync(join(work, name), bytes);
    return join(work, name);
  });
  const child = spawnSync(
    process.execPath,
    ['--import', 'tsx', resolve(import.meta.dirname, '../support/read-model-memory.ts'), ...paths],
    { encoding: 'utf8', timeout: 120_000 },
  );
  expect(child.status, child.stderr).toBe(0);
  const lines = child.stdout
    .trim()
    .split('\n')
    .filter((l) => l.startsWith('{'));
  expect(lines).toHaveLength(paths.length);
  return Object.fromEntries(
    lines.map((line) => {
      const { file, ...outcome } = JSON.parse(line) as Outcome & { file: string };
      return [file.split('/').at(-1)!, outcome];
    }),
  );
}

describe('a .keras zip bomb (1 MB inflating to 1 GiB)', () => {
  let outcomes: Record<string, Outcome>;
  beforeAll(() => {
    outcomes = readInFreshProcess({
      // As the weights, its size declared.
      'bomb.keras': buildZip([
        stored('metadata.json'),
        stored('config.json'),
        { name: 'model.weights.h5', data: bomb, method: 8, size: 2 ** 30 },
      ]),
      // As an entry a model does not need, beside a real model.
      'extra.keras': buildZip([
        stored('metadata.json'),
        stored('config.json'),
        stored('model.weights.h5'),
        { name: 'assets/padding.bin', data: bomb, method: 8, size: 2 ** 30 },
      ]),
      // As the weights, its header lying about its size.
      'liar.keras': buildZip([
        stored('metadata.json'),
        stored('config.json'),
        { name: 'model.weights.h5', data: bomb, method: 8, size: 40_000 },
      ]),
    });
  });

  it('as model.weights.h5 is refused before inflating, memory growth < 100 MB', () => {
    const result = outcomes['bomb.keras']!;
    expect(result.growth).toBeLessThan(MEMORY_BOUND);
    expect(result.ok).toBe(false);
    expect(result.name).toBe('ArchiveError');
    expect(result.message).toMatch(
      /^bomb\.keras: entry model\.weights\.h5 would inflate 1\.0 MiB to 1\.0 GiB \(ratio \d+:1, over the 100:1 limit\): refused as a possible zip bomb$/,
    );
  });

  it('as an extra entry the model does not need is refused, memory growth < 100 MB', () => {
    const result = outcomes['extra.keras']!;
    expect(result.growth).toBeLessThan(MEMORY_BOUND);
    expect(result.ok).toBe(false);
    expect(result.message).toMatch(/^extra\.keras: entry assets\/padding\.bin would inflate .* to 1\.0 GiB/);
  });

  it('whose header lies about its size is stopped once it inflates past it, memory growth < 100 MB', () => {
    const result = outcomes['liar.keras']!;
    expect(result.growth).toBeLessThan(MEMORY_BOUND);
    expect(result.ok).toBe(false);
    expect(result.message).toMatch(
      /^liar\.keras: entry model\.weights\.h5 inflates to more than the 40000 bytes its header declares/,
    );
  });
});

describe('.keras limits', () => {
  it('a real .keras still converts, and entries a model does not need are never inflated', async () => {
    expect((await convertKeras(keras, 'functional.keras')).artifacts.weightSpecs?.length).toBeGreaterThan(0);
    const liarNobodyReads = buildZip([
      stored('config.json'),
      stored('model.weights.h5'),
      { name: 'assets/notes.txt', data: bomb.subarray(0, 4000), method: 8, size: 10 },
    ]);
    expect(
      (await convertKeras(liarNobodyReads, 'assets.keras')).artifacts.weightSpecs?.length,
    ).toBeGreaterThan(0);
  });

  it('refuses what breaks the configured limits, naming the limit', async () => {
    const total = await refusal(keras, 'functional.keras', { limits: { maxBytes: 20_000 } });
    expect(total.message).toMatch(
      /functional\.keras: its 3 entries would inflate to .*, over the 19\.5 KiB limit \(AIAAS_KERAS_MAX_BYTES\)/,
    );
    const json = await refusal(keras, 'functional.keras', { limits: { maxJsonBytes: 1000 } });
    expect(json.message).toMatch(/entry config\.json would inflate to 8\.8 KiB, over its 1000 bytes limit/);
    const weights = await refusal(h5, 'functional.h5', { limits: { maxBytes: 200 } });
    expect(weights).toBeInstanceOf(KerasWeightsError);
    expect(weights.message).toMatch(
      /functional\.h5: weight .* declares shape \[.*\], which takes the weights over the 200 bytes limit \(AIAAS_KERAS_MAX_BYTES\)/,
    );
    const twice = buildZip([stored('config.json'), stored('model.weights.h5'), stored('model.weights.h5')]);
    expect((await refusal(twice, 'twice.keras')).message).toMatch(
      /twice\.keras holds two entries named model\.weights\.h5/,
    );
  });
});

describe('a broken Keras file is refused naming the file and the problem', () => {
  /** Runs `body` and returns what HDF5 (or anyone) wrote to stderr through fs.writeSync meanwhile. */
  async function stderrDuring(body: () => Promise<unknown>): Promise<string> {
    const original = fs.writeSync;
    let written = '';
    fs.writeSync = ((fd: number, buffer: unknown, ...rest: unknown[]) => {
      if (fd === 2)
        written += String(typeof buffer === 'string' ? buffer : Buffer.from(buffer as Uint8Array));
      return (original as (...a: unknown[]) => number)(fd, buffer, ...rest);
    }) as typeof fs.writeSync;
    try {
      await body();
    } finally {
      fs.writeSync = original;
    }
    return written;
  }

  it('a truncated .h5', async () => {
    for (const length of [8, 100, 2000, h5.length >> 1, h5.length - 1]) {
      const error = await refusal(h5.subarray(0, length), 'model.h5');
      expect(error).toBeInstanceOf(KerasFormatError);
      expect(error.message).toMatch(/^model\.h5 is not a readable HDF5 file \(truncated or damaged\): /);
      expect(error.message).not.toMatch(/name not defined/);
    }
  });

  it('a damaged .h5, without HDF5 error stacks on stderr', async () => {
    const damaged = new Uint8Array(h5);
    // Damage in the object headers and in the middle of the data: either way the file is named.
    for (let i = 2000; i < 4000; i++) damaged[i] = (i * 7919) & 0xff;
    const opening = new Uint8Array(h5);
    for (let i = 100; i < 2000; i++) opening[i] = (i * 7919) & 0xff;
    const errors: ValidationError[] = [];
    const stderr = await stderrDuring(async () => {
      errors.push(await refusal(opening, 'model.h5'), await refusal(damaged, 'model.h5'));
    });
    expect(errors[0]!.message).toMatch(
      /^model\.h5 is not a readable HDF5 file \(truncated or damaged\): unable to open file/,
    );
    expect(errors[1]!.message).toMatch(
      /^model\.h5( is not a readable HDF5 file \(truncated or damaged\): \w|: )/,
    );
    expect(stderr).toBe('');
  });

  it('a truncated .keras, and a .keras holding a truncated model.weights.h5', async () => {
    for (const length of [4, 100, keras.length >> 1, keras.length - 1]) {
      const error = await refusal(keras.subarray(0, length), 'model.keras');
      expect(error.message).toMatch(
        /^model\.keras is a zip file that cannot be read \(truncated or damaged\): /,
      );
    }
    const weights = inside['model.weights.h5']!;
    const cut = buildZip([
      stored('config.json'),
      { name: 'model.weights.h5', data: weights.subarray(0, 3000) },
    ]);
    expect((await refusal(cut, 'model.keras')).message).toMatch(
      /^model\.keras: model\.weights\.h5 is not a readable HDF5 file \(truncated or damaged\): the file is 3000 bytes, its HDF5 superblock says \d+$/,
    );
    const deflated = buildZip([
      stored('config.json'),
      { name: 'model.weights.h5', data: bomb.subarray(0, 500), method: 8, size: 1000 },
    ]);
    expect((await refusal(deflated, 'model.keras')).message).toMatch(
      /^model\.keras: entry model\.weights\.h5 (cannot be inflated|inflates to \d+ bytes, not the 1000)/,
    );
  });

  it('garbage bytes and an empty file', async () => {
    const garbage = new Uint8Array(4096).map((_, i) => (i * 131 + 7) & 0xff);
    expect((await refusal(garbage, 'model.h5')).message).toMatch(/^model\.h5 is not a Keras model/);
    const hdf5Garbage = new Uint8Array(4096).map((_, i) => (i * 131 + 7) & 0xff);
    hdf5Garbage.set([0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a]);
    expect((await refusal(hdf5Garbage, 'model.h5')).message).toMatch(
      /^model\.h5 is not a readable HDF5 file \(truncated or damaged\)/,
    );
    const zipGarbage = new Uint8Array(4096).map((_, i) => (i * 131 + 7) & 0xff);
    zipGarbage.set([0x50, 0x4b, 0x03, 0x04]);
    expect((await refusal(zipGarbage, 'model.keras')).message).toMatch(
      /^model\.keras is a zip file that cannot be read/,
    );
    expect((await refusal(new Uint8Array(0), 'empty.h5')).message).toBe(
      'empty.h5 is empty (0 bytes): not a Keras model',
    );
  });
});

describe('an HDF5 file that names other files', () => {
  // external.h5 stores its kernel in /tmp/aiaas-keras-external-secret.bin (HDF5 external storage;
  // test/fixtures/keras/make_external.py). Read from the real disk, those bytes would be published.
  const secretPath = '/tmp/aiaas-keras-external-secret.bin';
  const secret = new Float32Array([1234.5, -777.25, 31337, 42.125, 9001, -0.5, 65536, 8.875]);

  it('never reads them: the conversion fails or its weights hold none of their bytes', async () => {
    writeFileSync(secretPath, new Uint8Array(secret.buffer));
    try {
      const bytes = new Uint8Array(readFileSync(join(fixtures, 'external.h5')));
      const outcome = await convertKeras(bytes, 'external.h5').then(
        (converted) => ({ converted }),
        (error: unknown) => ({ error }),
      );
      if ('error' in outcome) {
        expect(outcome.error).toBeInstanceOf(ValidationError);
        expect((outcome.error as Error).message).toMatch(/^external\.h5 /);
        return;
      }
      const data = outcome.converted.artifacts.weightData;
      const weights = Buffer.concat(
        (Array.isArray(data) ? data : data ? [data] : []).map((b) => Buffer.from(b)),
      );
      expect(weights.includes(Buffer.from(secret.buffer, 0, 8))).toBe(false);
    } finally {
      rmSync(secretPath, { force: true });
    }
  });
});
