/**
 * The built CLI (`bin/aiaas.mjs`) refuses untrusted model files and training data before it
 * touches the registry: one line on stderr naming the file and the problem, exit code 2. The
 * registry it is pointed at is a closed loopback port, so any attempt to reach it would fail the
 * test with a different message.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from '../../cli/paths.js';
import { generateDiabetesCsv } from '../../functions/shared/training/synthetic.js';
import { type CliResult, runCli } from '../support/cli.js';
import { buildZip, zerosDeflated } from '../support/zip.js';

let work: string;

function aiaas(...args: string[]): Promise<CliResult> {
  return runCli(
    {
      AIAAS_S3_ENDPOINT: 'http://127.0.0.1:9',
      AIAAS_BUCKET: 'aiaas-untrusted-test',
      AWS_ACCESS_KEY_ID: 'test',
      AWS_SECRET_ACCESS_KEY: 'test',
      AWS_REGION: 'us-east-1',
      AIAAS_MANIFEST: join(ROOT, 'models/manifest.json'),
    },
    args,
  );
}

/** Expects a refusal: exit 2 and exactly one line on stderr, matching `pattern`. */
async function expectRefused(args: string[], pattern: RegExp) {
  const res = await aiaas(...args);
  expect(res.code, `${args.join(' ')}: ${res.stderr}`).toBe(2);
  const lines = res.stderr.trim().split('\n');
  expect(lines, args.join(' ')).toHaveLength(1);
  expect(lines[0]).toMatch(pattern);
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'aiaas-cli-untrusted-'));
  writeFileSync(join(work, 'credentials'), 'aws_secret_access_key=SENTINEL');
  mkdirSync(join(work, 'model'));
  writeFileSync(
    join(work, 'model/model.json'),
    JSON.stringify({
      format: 'layers-model',
      modelTopology: { class_name: 'Sequential', config: { layers: [] } },
      weightsManifest: [
        { paths: ['../credentials'], weights: [{ name: 'w', shape: [2], dtype: 'float32' }] },
      ],
    }),
  );
  const h5 = readFileSync(join(ROOT, 'test/fixtures/keras/functional.h5'));
  writeFileSync(join(work, 'model.h5'), h5.subarray(0, 3000));
  const damaged = Buffer.from(h5);
  for (let i = 100; i < 2000; i++) damaged[i] = (i * 7919) & 0xff;
  writeFileSync(join(work, 'damaged.h5'), damaged);
  writeFileSync(
    join(work, 'bomb.keras'),
    buildZip([
      { name: 'config.json', data: new TextEncoder().encode('{}') },
      { name: 'model.weights.h5', data: await zerosDeflated(1024), method: 8, size: 2 ** 30 },
    ]),
  );
  const csv = generateDiabetesCsv(50).split('\n');
  writeFileSync(join(work, 'no-label.csv'), csv.map((l) => l.split(',').slice(0, -1).join(',')).join('\n'));
  csv[7] = csv[7]!.replace(/^[^,]*,[^,]*/, (m) => `${m.split(',')[0]},high`);
  writeFileSync(join(work, 'bad-row.csv'), csv.join('\n'));
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('aiaas publish refuses untrusted model files in one line', () => {
  it('a manifest path leaving the folder', async () => {
    await expectRefused(
      ['publish', join(work, 'model'), '--model', 'stolen'],
      /^aiaas: .*model\.json: weightsManifest\[0\]\.paths\[0\] "\.\.\/credentials" leaves the model folder/,
    );
  });

  it('a truncated and a damaged .h5, without HDF5 error stacks', async () => {
    await expectRefused(
      ['publish', join(work, 'model.h5'), '--model', 'broken'],
      /^aiaas: model\.h5 is not a readable HDF5 file \(truncated or damaged\): the file is 3000 bytes/,
    );
    await expectRefused(
      ['publish', join(work, 'damaged.h5'), '--model', 'broken'],
      /^aiaas: damaged\.h5 is not a readable HDF5 file \(truncated or damaged\): unable to open file/,
    );
  });

  it('a .keras zip bomb', async () => {
    await expectRefused(
      ['publish', join(work, 'bomb.keras'), '--model', 'bomb'],
      /^aiaas: bomb\.keras: entry model\.weights\.h5 would inflate .* to 1\.0 GiB .*zip bomb$/,
    );
  });
});

describe('aiaas dataset put checks a CSV against the model before uploading', () => {
  it('refuses a header without the label, and a row that is not numbers, naming file, line and column', async () => {
    await expectRefused(
      ['dataset', 'put', 'diabetes', join(work, 'no-label.csv')],
      /^aiaas: no-label\.csv: the header \(line 1\) lacks column outcome/,
    );
    await expectRefused(
      ['dataset', 'put', 'diabetes', join(work, 'bad-row.csv')],
      /^aiaas: bad-row\.csv line 8, column 2 \(glucose\): glucose is not a number: "high"$/,
    );
  });

  it('refuses data for a model the manifest gives no columns for', async () => {
    await expectRefused(
      ['dataset', 'put', 'unknown-model', join(work, 'bad-row.csv')],
      /^aiaas: Cannot check .*bad-row\.csv for unknown-model: the manifest has no "definition"/,
    );
  });
});
