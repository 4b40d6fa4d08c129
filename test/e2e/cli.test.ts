/**
 * The `aiaas` CLI as users run it (`bin/aiaas.mjs`, the built bundle) against the local stack:
 * publish (TF.js folder and Keras files), versions, promote, history, rollback, predict, dataset,
 * retrain, and one-line errors with a non-zero exit.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from '../../cli/paths.js';
import { artifactsToFiles, captureIOHandler } from '../../functions/shared/model/artifacts.js';
import { generateDiabetesCsv } from '../../functions/shared/training/synthetic.js';
import { createRuntime } from '../../layers/tfjs-runtime/runtime.js';
import { LOCAL_CREDENTIALS } from '../../scripts/local/s3.js';
import { type CliResult, runCli } from '../support/cli.js';
import { SHARED, startTestStack, type TestStack } from '../support/stack.js';

const H5 = join(SHARED, 'models/keras-h5-diabetes/model.h5');
const KERAS3 = join(SHARED, 'models/keras3-bn-diabetes/model.keras');
const hasH5 = existsSync(H5);
if (!hasH5) console.warn(`[skipped] Keras fixture cases: ${H5} is absent (no ../shared here)`);

let stack: TestStack;
let work: string;

function aiaas(...args: string[]): Promise<CliResult> {
  return runCli(
    {
      AIAAS_S3_ENDPOINT: stack.s3.endpoint,
      AIAAS_BUCKET: stack.s3.bucket,
      AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey,
      AWS_REGION: 'us-east-1',
      AIAAS_ACTOR: 'cli-test',
      AIAAS_MANIFEST: join(work, 'manifest.json'),
    },
    args,
  );
}

beforeAll(async () => {
  // The `-tfjs` models serve the same files with the fast path off, to compare the two.
  stack = await startTestStack({
    aliasCheckSeconds: 1,
    fastPath: { 'keras-h5-tfjs': 'off', 'keras3-bn-tfjs': 'off' },
  });
  work = mkdtempSync(join(tmpdir(), 'aiaas-cli-'));
  // A TF.js model folder as tensorflowjs_converter or model.save('file://...') would leave it.
  const runtime = await createRuntime('cpu');
  const net = runtime.layers.sequential({
    layers: [runtime.layers.layers.dense({ units: 1, inputShape: [8] })],
  });
  const capture = captureIOHandler();
  await net.save(capture);
  // The local stack's functions share this process's tfjs engine: leave no variables behind.
  net.dispose();
  for (const file of artifactsToFiles(capture.artifacts!)) writeFileSync(join(work, file.name), file.bytes);
  // The manifest, with the example model trained briefly.
  const manifest = JSON.parse(readFileSync(join(ROOT, 'models/manifest.json'), 'utf8'));
  manifest.models[0].definition.fit.epochs = 3;
  writeFileSync(join(work, 'manifest.json'), JSON.stringify(manifest));
  writeFileSync(join(work, 'data.csv'), generateDiabetesCsv(200));
});
afterAll(async () => {
  await stack?.close();
  rmSync(work, { recursive: true, force: true });
});

describe('aiaas CLI', () => {
  it('publishes a TF.js folder, promotes, lists versions, shows history, rolls back', async () => {
    const first = await aiaas('publish', work, '--model', 'tiny', '--promote');
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toMatch(/Published tiny v1/);
    expect(first.stdout).toMatch(/Promoted tiny@live: none → v1/);
    expect((await aiaas('publish', join(work, 'model.json'), '--model', 'tiny')).stdout).toMatch(
      /Published tiny v2/,
    );
    expect((await aiaas('promote', 'tiny', '2', '--why', 'second')).stdout).toMatch(/tiny@live: v1 → v2/);

    const versions = JSON.parse((await aiaas('versions', 'tiny', '--json')).stdout);
    expect(
      versions.versions.map((v: { version: number; aliases: string[] }) => [v.version, v.aliases]),
    ).toEqual([
      [1, []],
      [2, ['live']],
    ]);
    const history = JSON.parse((await aiaas('history', 'tiny', '--json')).stdout);
    expect(history.events.map((e: { to: number; who: string; why: string }) => [e.to, e.who, e.why])).toEqual(
      [
        [1, 'cli-test', `published from ${work.split('/').at(-1)}`],
        [2, 'cli-test', 'second'],
      ],
    );
    expect((await aiaas('rollback', 'tiny')).stdout).toMatch(/rolled back: v2 → v1/);
    expect((await aiaas('history', 'tiny')).stdout).toMatch(/rollback\s+v2 → v1/);
  });

  it('predicts through the local function URL', async () => {
    const res = await aiaas('predict', 'tiny', '--url', stack.server.url, '--data', '[[1,2,3,4,5,6,7,8]]');
    expect(res.code, res.stderr).toBe(0);
    expect(JSON.parse(res.stdout).predictions).toHaveLength(1);
  });

  it("sends and prints TF Serving's non-finite tokens as they are", async () => {
    // A NaN feature makes a NaN prediction; JSON.parse/stringify would refuse the request or print null.
    const res = await aiaas('predict', 'tiny', '--url', stack.server.url, '--data', '[[NaN,2,3,4,5,6,7,8]]');
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toMatch(/"predictions":\[\[NaN\]\]/);
  });

  it('uploads a dataset and retrains with progress, gate decision and report', async () => {
    expect((await aiaas('dataset', 'put', 'diabetes', join(work, 'data.csv'))).stdout).toMatch(
      /datasets\/diabetes\/data\.csv/,
    );
    expect((await aiaas('dataset', 'ls', 'diabetes')).stdout).toMatch(
      /datasets\/diabetes\/data\.csv\s+\d+ bytes/,
    );
    const res = await aiaas('retrain', 'diabetes');
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toMatch(/diabetes v1: trained on 200 rows/);
    expect(res.stdout).toMatch(/promoted diabetes@live: none → v1/);
    expect(res.stdout).toMatch(/training report: models\/diabetes\/reports\/1\/training-report\.svg/);
    expect(res.stderr).toMatch(/epoch/);
    expect((await aiaas('retrain', 'diabetes')).stdout).toMatch(/nothing to do/);
    await aiaas('dataset', 'put', 'diabetes', join(work, 'data.csv'), '--name', 'extra.csv');
    const replaced = await aiaas('dataset', 'put', 'diabetes', join(work, 'data.csv'), '--replace');
    expect(replaced.stdout).toMatch(/Removed datasets\/diabetes\/extra\.csv/);
    expect((await aiaas('dataset', 'ls', 'diabetes')).stdout).not.toMatch(/extra\.csv/);
    expect((await aiaas('dataset', 'rm', 'diabetes', 'nope.csv')).code).not.toBe(0);
    const saved = await aiaas('report', 'diabetes', '--out', join(work, 'report.svg'));
    expect(saved.code, saved.stderr).toBe(0);
    expect(readFileSync(join(work, 'report.svg'), 'utf8')).toMatch(/<svg[\s\S]*val_loss[\s\S]*<\/svg>\s*$/);
  });

  it('fails with one clear line and a non-zero exit', async () => {
    for (const args of [
      ['promote', 'tiny', '0'],
      ['promote', 'tiny', '99'],
      ['publish', join(work, 'nope'), '--model', 'x'],
      ['publish', work, '--model', '../etc'],
      ['versions', 'Bad Name'],
      ['predict', 'tiny', '--url', stack.server.url, '--data', '{"instances": [[1]]}'],
    ]) {
      const res = await aiaas(...args);
      expect(res.code, args.join(' ')).not.toBe(0);
      expect(res.stderr.trim().split('\n'), args.join(' ')).toHaveLength(1);
      expect(res.stderr).not.toMatch(/\n\s+at /);
    }
  });

  it.runIf(hasH5)('publishes Keras .h5 and .keras files and serves the reference outputs', async () => {
    const h5 = await aiaas('publish', H5, '--model', 'keras-h5', '--promote');
    expect(h5.code, h5.stderr).toBe(0);
    expect(h5.stderr).toMatch(/optimizer state ignored/);
    const k3 = await aiaas('publish', KERAS3, '--model', 'keras3-bn', '--promote');
    expect(k3.code, k3.stderr).toBe(0);
    const reference = JSON.parse(
      readFileSync(join(ROOT, 'test/fixtures/keras/reference-outputs.json'), 'utf8'),
    );
    for (const [file, model] of [
      [H5, 'keras-h5-tfjs'],
      [KERAS3, 'keras3-bn-tfjs'],
    ] as const) {
      const res = await aiaas('publish', file, '--model', model, '--promote');
      expect(res.code, res.stderr).toBe(0);
    }
    // Both are small dense networks (the .keras one with BatchNormalization and Dropout): the fast
    // path serves them, and gives Keras's own outputs, as tfjs does.
    for (const [model, key, runtime] of [
      ['keras-h5', 'keras-h5-diabetes', 'fast-path'],
      ['keras3-bn', 'keras3-bn-diabetes', 'fast-path'],
      ['keras-h5-tfjs', 'keras-h5-diabetes', 'wasm'],
      ['keras3-bn-tfjs', 'keras3-bn-diabetes', 'wasm'],
    ] as const) {
      const metadata = await stack.call('GET', `/v1/models/${model}/metadata`);
      expect((metadata.json.aiaas as { runtime: string }).runtime, model).toBe(runtime);
      const ref = reference[key] as { inputs: number[][]; outputs: number[][] };
      const inputs = ref.inputs;
      const res = await stack.call(
        'POST',
        `/v1/models/${model}:predict`,
        JSON.stringify({ instances: inputs }),
      );
      expect(res.status, res.text).toBe(200);
      const predictions = res.json.predictions as number[][];
      ref.outputs.forEach((expected, i) => {
        expect(Math.abs(predictions[i]![0]! - expected[0]!), `${model} row ${i}`).toBeLessThan(1e-5);
      });
    }
    // The authors' expectations for the .h5: [0, 1] after rounding.
    const authors = await stack.call(
      'POST',
      '/v1/models/keras-h5:predict',
      JSON.stringify({
        instances: [
          [1, 93, 70, 31, 0, 30.4, 0.315, 23],
          [1, 126, 60, 0, 0, 30.1, 0.349, 47],
        ],
      }),
    );
    expect((authors.json.predictions as number[][]).map((p) => Math.round(p[0]!))).toEqual([0, 1]);
  });
});
