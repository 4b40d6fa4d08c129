/**
 * A batch job end to end on the local stack (issue 20's acceptance): `aiaas batch` (the built CLI,
 * a child process) checks and uploads a 100,000-row CSV of the example model's schema with 1 % of
 * its rows malformed, and starts the job through the Step Functions API of the local stack, which
 * runs the deployed definition on the local executor: the built inference bundle scores the
 * batches, the final step writes the output. Every good row's prediction equals a direct predict
 * of the same version (all rows in-process through the function's own loading code, a sample over
 * HTTP from the running function), every malformed row is in failures.csv with its line, and a
 * promotion in the middle of the job does not change which version scored it.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from '../../cli/paths.js';
import type { Executor } from '../../functions/inference/executor.js';
import { loadVersion } from '../../functions/inference/version-load.js';
import { loadManifest, type ModelSpec } from '../../functions/shared/manifest.js';
import { keys } from '../../functions/shared/registry/layout.js';
import { RegistryReader } from '../../functions/shared/registry/registry.js';
import { retrain } from '../../functions/shared/training/retrain.js';
import { generateDiabetesCsv, PIMA_HEADER } from '../../functions/shared/training/synthetic.js';
import { createRuntime } from '../../layers/tfjs-runtime/runtime.js';
import type { LocalBatchProgress } from '../../scripts/local/batch/executor.js';
import { LOCAL_CREDENTIALS } from '../../scripts/local/s3.js';
import { type StepFunctionsApi, startStepFunctionsApi } from '../../scripts/local/step-functions-api.js';
import { runCli } from '../support/cli.js';
import { startTestStack, type TestStack } from '../support/stack.js';

const ROWS = 100_000;
const MODEL = 'diabetes';
const manifest = loadManifest(join(ROOT, 'models/manifest.json'));
const base = manifest.models.find((m) => m.name === MODEL)!;
const FEATURES = base.definition!.features;
/** Malformed values, each with the problem its error must name. */
const MALFORMED: readonly [string, RegExp][] = [
  ['abc', /"abc" is not a number/],
  ['', /is empty/],
  ['1e999', /beyond float32's range/],
  ['NaN', /"NaN" is not a number/],
  ['0x1F', /"0x1F" is not a number/],
  ['12..5', /"12..5" is not a number/],
];

let stack: TestStack;
let sfn: StepFunctionsApi;
let dir: string;
let v1: number;
let v2: number;
/** The CSV's data rows and, for each malformed one, its column and expected problem. */
let rows: string[][];
const malformed = new Map<number, { column: string; problem: RegExp }>();
/** When the alias moved to v2, and how far the job was then. */
let promotion: Promise<{ at: number; rowsDone: number; total?: number }> | undefined;

const spec = (seed: number): ModelSpec => ({
  ...base,
  definition: { ...base.definition!, fit: { ...base.definition!.fit, epochs: 5, seed } },
});

const env = () => ({
  AIAAS_BUCKET: stack.s3.bucket,
  AIAAS_S3_ENDPOINT: stack.s3.endpoint,
  AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId,
  AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey,
  AWS_REGION: 'us-east-1',
  AWS_ENDPOINT_URL_SFN: sfn.url,
  AIAAS_ACTOR: 'batch-test',
});

/** A version loaded in this process exactly as the function loads it (fast path or tfjs alike). */
async function executorOf(version: number): Promise<Executor> {
  const registry = new RegistryReader(stack.s3.registry.store);
  const served = await loadVersion(
    { model: MODEL, alias: 'test', version, seq: 0, eventId: '', updatedAt: '', etag: '' },
    {
      registry,
      model: MODEL,
      runtime: () => createRuntime('wasm'),
      fastPath: 'auto',
      log: { info() {}, warn() {}, error() {} },
    },
  );
  return served.executor;
}

/** Predictions of `executor` for the given rows' features, as the function writes them. */
function predict(executor: Executor, batch: readonly string[][]): string[] {
  const values = new Float32Array(batch.length * FEATURES.length);
  batch.forEach((row, r) => {
    FEATURES.forEach((f, k) => {
      values[r * FEATURES.length + k] = Number(row[PIMA_HEADER.indexOf(f as (typeof PIMA_HEADER)[number])]);
    });
  });
  const [out] = executor.predict([
    {
      name: executor.signature.inputs[0]!.name,
      dtype: 'float32',
      shape: [batch.length, FEATURES.length],
      values,
    },
  ]);
  return Array.from(out!.values, (v) => String(v));
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'aiaas-batch-'));
  stack = await startTestStack({ aliasCheckSeconds: 1 });
  const registry = stack.s3.registry;
  await registry.putDataset(MODEL, 'synthetic.csv', new TextEncoder().encode(generateDiabetesCsv(400)));
  const runtime = await createRuntime('wasm');
  const first = await retrain({ registry, spec: spec(42), runtime, promote: 'always' });
  const second = await retrain({ registry, spec: spec(7), runtime, promote: 'never', force: true });
  if (first.status === 'unchanged' || second.status === 'unchanged') throw new Error('nothing trained');
  v1 = first.version;
  v2 = second.version;

  // 100,000 rows of the example model's schema; every 100th (from row 37) malformed in one column.
  const text = generateDiabetesCsv(ROWS, 1234);
  rows = text
    .trimEnd()
    .split('\n')
    .slice(1)
    .map((line) => line.split(','));
  for (let i = 37; i < ROWS; i += 100) {
    const k = (i * 7) % FEATURES.length;
    const [value, problem] = MALFORMED[i % MALFORMED.length]!;
    const column = FEATURES[k]!;
    rows[i]![PIMA_HEADER.indexOf(column as (typeof PIMA_HEADER)[number])] = value;
    malformed.set(i, { column, problem });
  }
  writeFileSync(
    join(dir, 'scores.csv'),
    `${PIMA_HEADER.join(',')}\n${rows.map((r) => r.join(',')).join('\n')}\n`,
  );

  sfn = await startStepFunctionsApi({
    s3: stack.s3,
    registry,
    manifest,
    log: () => {},
    // Promote v2 once the first batches are done: the rest of the job runs after the move.
    onProgress: (_job: string, progress: LocalBatchProgress) => {
      if (promotion || progress.rowsDone === 0) return;
      const rowsDone = progress.rowsDone;
      promotion = registry
        .setAlias(MODEL, 'live', v2, { why: 'promoted mid-job by the batch test' })
        .then(() => ({
          at: Date.now(),
          rowsDone,
          ...(progress.rows !== undefined ? { total: progress.rows } : {}),
        }));
    },
  });
}, 90_000);

afterAll(async () => {
  await sfn?.settled();
  await sfn?.close();
  await stack?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('aiaas batch on the local stack', () => {
  it('refuses a CSV whose header lacks a feature, naming the column, before uploading anything', async () => {
    writeFileSync(join(dir, 'short.csv'), 'pregnancies,glucose\n1,2\n');
    const result = await runCli(env(), ['batch', MODEL, join(dir, 'short.csv'), '--job', 'short-header']);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/The CSV header has no column "blood_pressure", "skin_thickness"/);
    expect(await stack.s3.registry.store.list(keys.batchJob(MODEL, 'short-header'))).toEqual([]);
  });

  it('scores 100,000 rows with the pinned version: good rows as a direct predict, malformed rows in failures.csv with their lines, a mid-job promotion changing nothing', async () => {
    // A direct predict of v1 by the running function (the alias serves v1 until the job starts).
    const live = await executorOf(v1);
    const sample = Array.from({ length: 300 }, (_, s) => s * 331).filter((i) => !malformed.has(i));
    const res = await stack.call(
      'POST',
      `/v1/models/${MODEL}:predict`,
      JSON.stringify({
        instances: sample.map((i) =>
          FEATURES.map((f) => Number(rows[i]![PIMA_HEADER.indexOf(f as (typeof PIMA_HEADER)[number])])),
        ),
      }),
    );
    expect(res.headers.get('x-aiaas-model-version')).toBe(String(v1));
    const overHttp = (res.json.predictions as number[][]).map((p) => String(p[0]));
    expect(overHttp).toEqual(
      predict(
        live,
        sample.map((i) => rows[i]!),
      ),
    );

    const outFile = join(dir, 'out.csv');
    const result = await runCli(env(), ['batch', MODEL, join(dir, 'scores.csv'), '-o', outFile]);
    expect(result.stderr).not.toMatch(/^aiaas:/m);
    expect(result.code).toBe(0);
    const job = /^Job (\S+): diabetes v(\d+) \(live\)/m.exec(result.stdout);
    expect(job?.[2]).toBe(String(v1));
    const id = job![1]!;
    expect(result.stdout).toContain('Done: 100,000 rows, 99,000 scored, 1,000 failed, by v');
    expect(result.stdout).toContain(`output:   s3://${stack.s3.bucket}/batch/${MODEL}/${id}/output.csv`);

    // The promotion happened while the job ran, and the function now serves v2.
    const moved = await promotion!;
    expect(moved.rowsDone).toBeLessThan(ROWS);
    const manifestJson = JSON.parse(
      new TextDecoder().decode((await stack.s3.registry.store.get(keys.batchManifest(MODEL, id)))!.body),
    );
    expect(Date.parse(manifestJson.endedAt)).toBeGreaterThan(moved.at);
    expect((await stack.s3.registry.getAlias(MODEL, 'live'))?.version).toBe(v2);
    expect(manifestJson).toMatchObject({ version: v1, rows: ROWS, succeeded: 99_000, failed: 1_000 });

    // Every row once, in input order; every good row's prediction that of v1 (not v2).
    const output = parse(readFileSync(outFile)) as string[][];
    expect(output).toHaveLength(ROWS + 1);
    expect(output[0]!.slice(0, PIMA_HEADER.length)).toEqual([...PIMA_HEADER]);
    expect(output[0]).toHaveLength(PIMA_HEADER.length + 1);
    const good = rows.map((_, i) => i).filter((i) => !malformed.has(i));
    const expected = predict(
      live,
      good.map((i) => rows[i]!),
    );
    const other = predict(
      await executorOf(v2),
      good.map((i) => rows[i]!),
    );
    let differsFromV2 = 0;
    good.forEach((i, g) => {
      const line = output[i + 1]!;
      expect(line.slice(0, PIMA_HEADER.length)).toEqual(rows[i]);
      if (line[PIMA_HEADER.length] !== expected[g]) {
        expect.fail(`row ${i}: ${line[PIMA_HEADER.length]} is not v${v1}'s ${expected[g]}`);
      }
      if (expected[g] !== other[g]) differsFromV2++;
    });
    // The two versions differ, so a row scored by v2 could not have passed.
    expect(differsFromV2).toBeGreaterThan(good.length / 2);

    // Every malformed row in failures.csv, with its line and the column and problem.
    const failures = parse(
      new TextDecoder().decode((await stack.s3.registry.store.get(keys.batchFailures(MODEL, id)))!.body),
      { columns: true },
    ) as { line: string; index: string; reason: string }[];
    expect(failures).toHaveLength(malformed.size);
    for (const f of failures) {
      const bad = malformed.get(Number(f.index));
      expect(bad, `row ${f.index} is not malformed`).toBeDefined();
      expect(Number(f.line)).toBe(Number(f.index) + 2);
      expect(f.reason).toContain(`column "${bad!.column}"`);
      expect(f.reason).toMatch(bad!.problem);
      expect(output[Number(f.index) + 1]![PIMA_HEADER.length]).toBe('');
    }

    // status and ls read the job back.
    const status = await runCli(env(), ['batch', 'status', id]);
    expect(status.stdout).toMatch(new RegExp(`Job ${id}: diabetes v${v1}, succeeded`));
    expect(status.stdout).toContain('Done: 100,000 rows');
    const ls = await runCli(env(), ['batch', 'ls', MODEL]);
    expect(ls.stdout).toMatch(new RegExp(`${id} .* v${v1} +succeeded +100,000 +1,000`));
  }, 110_000);

  it('scores JSON Lines from an S3 URI under batch/<model>/ with the version asked for, one output line per input line', async () => {
    const instances = Array.from({ length: 40 }, (_, i) =>
      rows[i * 3]!.slice(0, FEATURES.length).map(Number),
    );
    const lines = instances.map((x) => JSON.stringify(x));
    lines[5] = JSON.stringify([1, 2, 3]);
    lines[9] = JSON.stringify([1, 2, 3, 4, 5, 6, 7, 'x']);
    const key = `batch/${MODEL}/inputs/small.jsonl`;
    await stack.s3.registry.store.put(key, `${lines.join('\n')}\n`);
    const result = await runCli(env(), [
      'batch',
      MODEL,
      `s3://${stack.s3.bucket}/${key}`,
      '--version',
      String(v1),
    ]);
    expect(result.stderr).not.toMatch(/^aiaas:/m);
    const id = /^Job (\S+): diabetes v(\d+),/m.exec(result.stdout)?.[1];
    expect(result.stdout).toMatch(new RegExp(`^Job ${id}: diabetes v${v1}, input s3://[^ ]+/${key}$`, 'm'));
    const output = new TextDecoder()
      .decode((await stack.s3.registry.store.get(keys.batchOutput(MODEL, id!, 'jsonl')))!.body)
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as unknown);
    expect(output).toHaveLength(40);
    // The instances hold the first features of each row, in the CSV's column order.
    const expected = predict(
      await executorOf(v1),
      instances.map((x) => [...x.map(String), '0']),
    );
    output.forEach((line, i) => {
      if (i === 5)
        expect(line).toEqual({ error: expect.stringMatching(/^instance has 3 values; input .* expects 8/) });
      else if (i === 9) expect(line).toEqual({ error: 'instance[7] must be a number, got "x"' });
      else expect(String((line as number[])[0])).toBe(expected[i]);
    });
    const failures = new TextDecoder().decode(
      (await stack.s3.registry.store.get(keys.batchFailures(MODEL, id!)))!.body,
    );
    expect(
      failures
        .split('\n')
        .slice(1, 3)
        .map((l) => l.split(',').slice(0, 2).join(',')),
    ).toEqual(['6,5', '10,9']);
  }, 60_000);
});
