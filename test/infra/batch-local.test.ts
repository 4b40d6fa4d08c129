import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BatchEvent, BatchJobInput, BatchResult } from '../../functions/shared/batch/events.js';
import { keys } from '../../functions/shared/registry/layout.js';
import { createRuntime } from '../../layers/tfjs-runtime/runtime.js';
import { buildFunction } from '../../scripts/build/bundle.js';
import {
  type LocalBatchProgress,
  NOT_EMULATED,
  runLocalBatchJob,
} from '../../scripts/local/batch/executor.js';
import { type LocalS3, startLocalS3 } from '../../scripts/local/s3.js';
import { linear, publishLinear } from '../support/models.js';

const MODEL = 'lin';
const W1 = [1, 2, 3] as const;
const W2 = [-4, 0.5, 7] as const;
const BATCH = { maxConcurrency: 3, rowsPerBatch: 40, toleratedFailurePercent: 0 };

let s3: LocalS3;
let dir: string;
let v1: number;
/** The inference bundle, built here with `npm run build`'s options (dist/ is rebuilt by others). */
let BUNDLE: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'aiaas-batch-local-'));
  BUNDLE = join(await buildFunction('inference', join(dir, 'bundle')), 'index.mjs');
  s3 = await startLocalS3({ directory: dir });
  const runtime = await createRuntime('cpu');
  v1 = (await publishLinear(runtime, s3.registry, MODEL, W1, 0.5, { promote: true })).version;
  // A newer version is live while the jobs run: they must still score with the one they pinned.
  await publishLinear(runtime, s3.registry, MODEL, W2, -1, { promote: true });
});

afterAll(async () => {
  await s3?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const text = async (key: string) => {
  const object = await s3.registry.store.get(key);
  if (!object) throw new Error(`no object ${key}`);
  return new TextDecoder().decode(object.body);
};

function jobInput(job: string, format: 'csv' | 'jsonl'): BatchJobInput {
  return {
    model: MODEL,
    version: v1,
    job,
    format,
    inputKey: keys.batchInput(MODEL, job, format),
    features: ['a', 'b', 'c'],
  };
}

function run(input: BatchJobInput, extra: Partial<Parameters<typeof runLocalBatchJob>[0]> = {}) {
  const progress: LocalBatchProgress[] = [];
  const logged: string[] = [];
  const result = runLocalBatchJob({
    model: { name: MODEL, timeoutSeconds: 30, fastPath: 'auto', batch: BATCH },
    input,
    s3: { endpoint: s3.endpoint, bucket: s3.bucket },
    bundle: BUNDLE,
    onProgress: (p) => progress.push(p),
    log: (line) => logged.push(line),
    retryDelayScale: 0.001,
    ...extra,
  });
  return { result, progress, logged };
}

/**
 * ResultWriter's manifest.json and its files' entries, by status, as the definition configures it
 * (Transformation COMPACT, OutputType JSONL): one JSON object per line; a succeeded batch is its
 * output (the BatchResult) alone, a failed or pending one its execution with Input, Error, Cause.
 */
async function resultFiles(job: string) {
  const listed = await s3.registry.store.list(`${keys.batchResults(MODEL, job)}/`);
  const manifests = listed.filter((o) => o.key.endsWith('/manifest.json'));
  expect(manifests).toHaveLength(1);
  const manifest = JSON.parse(await text(manifests[0]!.key)) as {
    DestinationBucket: string;
    MapRunArn: string;
    ResultFiles: Record<'SUCCEEDED' | 'FAILED' | 'PENDING', { Key: string; Size: number }[]>;
  };
  const entries = async (status: 'SUCCEEDED' | 'FAILED' | 'PENDING') =>
    (
      await Promise.all(
        manifest.ResultFiles[status].map(async (f) => {
          const body = await text(f.Key);
          expect(body.endsWith('\n')).toBe(true);
          return body
            .slice(0, -1)
            .split('\n')
            .map((line) => JSON.parse(line) as unknown);
        }),
      )
    ).flat();
  type Execution = { Status: string; Input: string; Output?: string; Error?: string; Cause?: string };
  return {
    manifestKey: manifests[0]!.key,
    manifest,
    succeeded: (await entries('SUCCEEDED')) as BatchResult[],
    failed: (await entries('FAILED')) as Execution[],
    pending: (await entries('PENDING')) as Execution[],
  };
}

describe('the local batch executor (the deployed definition, on s3rver, with the built bundle)', () => {
  it('scores a CSV job in batches with the pinned version, writes ResultWriter files, and runs the final step', async () => {
    const rows = ['a,b,c'];
    const bad = new Set([7, 93, 180]);
    for (let i = 0; i < 250; i++)
      rows.push(bad.has(i) ? `${i},not-a-number,1` : `${i},${i % 5},${(i % 3) - 1}`);
    await s3.registry.store.put(keys.batchInput(MODEL, 'csv-1', 'csv'), `${rows.join('\r\n')}\r\n`);

    const { result, progress, logged } = run(jobInput('csv-1', 'csv'));
    const done = await result;
    expect(done.error).toBeUndefined();
    expect(done.status).toBe('SUCCEEDED');
    expect(done.output).toEqual(
      expect.objectContaining({ model: MODEL, job: 'csv-1', rows: 250, failed: 3 }),
    );

    // ItemReader + ItemSelector + ItemBatcher: 40 rows a batch, each row once, with its index.
    const files = await resultFiles('csv-1');
    expect(files.manifest.DestinationBucket).toBe(s3.bucket);
    expect(files.failed).toEqual([]);
    expect(files.pending).toEqual([]);
    expect(files.succeeded).toHaveLength(Math.ceil(250 / 40));
    // COMPACT: a succeeded batch's entry is its output alone, not its rows again.
    const seen: number[] = [];
    for (const output of files.succeeded) {
      expect(Object.keys(output).sort()).toEqual(['results', 'version']);
      expect(output.version).toBe(v1);
      expect(output.results.length).toBeLessThanOrEqual(40);
      for (const scored of output.results) {
        seen.push(scored.index);
        if (bad.has(scored.index)) {
          expect(scored).toHaveProperty('error');
        } else {
          // The row is known from its index (a = index, b = index % 5, c = index % 3 - 1).
          const x = [scored.index, scored.index % 5, (scored.index % 3) - 1];
          const [value] = Object.values((scored as { outputs: Record<string, number[]> }).outputs);
          expect(value![0]).toBeCloseTo(linear(W1, 0.5, x), 3);
        }
      }
    }
    expect(seen.sort((x, y) => x - y)).toEqual(Array.from({ length: 250 }, (_, i) => i));

    // Progress: the row count once read, then rows done and failed after each batch.
    expect(progress[0]).toEqual(expect.objectContaining({ rows: 250, rowsDone: 0 }));
    expect(progress.at(-1)).toEqual(
      expect.objectContaining({ rows: 250, rowsDone: 250, rowsFailed: 3, batchesDone: 7, batchesFailed: 0 }),
    );
    // The final step wrote the job's files.
    expect(JSON.parse(await text(keys.batchManifest(MODEL, 'csv-1')))).toEqual(
      expect.objectContaining({ rows: 250, failed: 3, version: v1 }),
    );
    // What is not emulated is said, once per process.
    expect(logged).toHaveLength(1);
    for (const line of NOT_EMULATED) expect(logged[0]).toContain(line);
  });

  it('scores JSON Lines (the TF Serving row format), skipping blank lines', async () => {
    const lines = Array.from({ length: 30 }, (_, i) => JSON.stringify([i, 1, 2]));
    await s3.registry.store.put(
      keys.batchInput(MODEL, 'jsonl-1', 'jsonl'),
      `${lines.slice(0, 10).join('\n')}\n\n${lines.slice(10).join('\n')}\n`,
    );
    const { result, logged } = run(jobInput('jsonl-1', 'jsonl'));
    const done = await result;
    expect(done.status).toBe('SUCCEEDED');
    expect(logged).toEqual([]);
    const files = await resultFiles('jsonl-1');
    const scored = files.succeeded.flatMap((output) => output.results);
    expect(scored.map((r) => r.index).sort((x, y) => x - y)).toEqual(Array.from({ length: 30 }, (_, i) => i));
    // Line 11 (after the blank line) is row 10: [10, 1, 2].
    const [value] = Object.values(
      (scored.find((r) => r.index === 10) as { outputs: Record<string, number[]> }).outputs,
    );
    expect(value![0]).toBeCloseTo(linear(W1, 0.5, [10, 1, 2]), 3);
  });

  it('fails a JSON Lines job whose line is not JSON, as ItemReader does, and still runs the final step', async () => {
    await s3.registry.store.put(keys.batchInput(MODEL, 'jsonl-bad', 'jsonl'), '[1,2,3]\n[4,5,6]\n{oops\n');
    let assembled: unknown;
    const done = await run(jobInput('jsonl-bad', 'jsonl'), {
      assemble: async (event) => {
        assembled = event;
        return { ok: true };
      },
    }).result;
    expect(done.status).toBe('FAILED');
    expect(done.error).toBe('States.ItemReaderFailed');
    expect(done.cause).toMatch(/Line 3/);
    expect(assembled).toEqual(
      expect.objectContaining({
        map: { Error: 'States.ItemReaderFailed', Cause: expect.stringMatching(/Line 3/) },
      }),
    );
  });

  it('fails the job when more batches fail than tolerated, listing failed and pending batches', async () => {
    const rows = ['a,b,c', ...Array.from({ length: 200 }, (_, i) => `${i},1,1`)];
    await s3.registry.store.put(keys.batchInput(MODEL, 'tolerance-0', 'csv'), rows.join('\n'));
    const failing = async (event: unknown) => {
      const e = event as BatchEvent;
      if (e.Items[0]!.index === 0) throw Object.assign(new Error('boom'), { name: 'ValidationError' });
      return { version: v1, results: e.Items.map((i) => ({ index: i.index, outputs: { y: [1] } })) };
    };
    const strict = await run(jobInput('tolerance-0', 'csv'), {
      score: failing,
      model: { name: MODEL, timeoutSeconds: 30, fastPath: 'auto', batch: { ...BATCH, maxConcurrency: 1 } },
    }).result;
    expect(strict.status).toBe('FAILED');
    expect(strict.error).toBe('States.ExceedToleratedFailureThreshold');
    const files = await resultFiles('tolerance-0');
    expect(files.failed).toHaveLength(1);
    expect(files.failed[0]).toEqual(expect.objectContaining({ Status: 'FAILED', Error: 'ValidationError' }));
    expect(JSON.parse(files.failed[0]!.Cause!)).toEqual(
      expect.objectContaining({ errorType: 'ValidationError', errorMessage: 'boom' }),
    );
    // A failed batch keeps its Input (as with Transformation NONE): the final step names its rows.
    const failedInput = JSON.parse(files.failed[0]!.Input) as BatchEvent;
    expect(failedInput.Items.map((i) => i.index)).toEqual(Array.from({ length: 40 }, (_, i) => i));
    expect(failedInput.BatchInput).toEqual(expect.objectContaining({ version: v1, job: 'tolerance-0' }));
    expect(files.pending).toHaveLength(4);

    // 20 % tolerated: one failed batch of five (40 of 200 rows) does not fail the job.
    await s3.registry.store.put(keys.batchInput(MODEL, 'tolerance-20', 'csv'), rows.join('\n'));
    const { result, progress } = run(jobInput('tolerance-20', 'csv'), {
      score: failing,
      model: {
        name: MODEL,
        timeoutSeconds: 30,
        fastPath: 'auto',
        batch: { ...BATCH, toleratedFailurePercent: 20 },
      },
    });
    const lenient = await result;
    expect(lenient.status).toBe('SUCCEEDED');
    expect(progress.at(-1)).toEqual(
      expect.objectContaining({ rowsDone: 200, rowsFailed: 40, batchesFailed: 1 }),
    );
  });

  it("retries a batch on Lambda's throttling, as the definition's Retry says", async () => {
    await s3.registry.store.put(keys.batchInput(MODEL, 'retry', 'csv'), 'a,b,c\n1,2,3\n');
    let calls = 0;
    const done = await run(jobInput('retry', 'csv'), {
      score: async (event) => {
        calls++;
        if (calls < 3)
          throw Object.assign(new Error('Rate exceeded'), { name: 'Lambda.TooManyRequestsException' });
        return {
          version: v1,
          results: (event as BatchEvent).Items.map((i) => ({ index: i.index, outputs: { y: [1] } })),
        };
      },
    }).result;
    expect(done.status).toBe('SUCCEEDED');
    expect(calls).toBe(3);
  });
});
