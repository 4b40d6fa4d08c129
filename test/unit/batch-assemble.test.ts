/**
 * A batch job's final step (functions/shared/batch/assemble.ts, functions/batch/finish.ts): whatever
 * order and grouping the batches ran in, and whichever failed, the output lists every input row
 * once, in input order, with its own prediction; every failed row is in failures.csv with its line
 * in the input file. Property-tested over random batchings; the final step itself over a memory
 * store holding ResultWriter's files as Step Functions writes them.
 */
import { parse } from 'csv-parse/sync';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { finishJob } from '../../functions/batch/finish.js';
import {
  assembleCsv,
  assembleJsonl,
  collectOutcomes,
  type Located,
} from '../../functions/shared/batch/assemble.js';
import type {
  BatchAssembleEvent,
  BatchJobInput,
  BatchRowResult,
} from '../../functions/shared/batch/events.js';
import { parseResultFile, ScoredRows } from '../../functions/shared/batch/results.js';
import { IntegrityError, ValidationError } from '../../functions/shared/errors.js';
import { isBatchKey, keys } from '../../functions/shared/registry/layout.js';
import { csvItems } from '../../scripts/local/batch/item-reader.js';
import { MemoryObjectStore } from '../support/memory-store.js';

/** JSON.parse's own message for `text`. */
function jsonError(text: string): string {
  try {
    JSON.parse(text);
  } catch (error) {
    return (error as Error).message;
  }
  return '';
}

const utf8 = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

/** A row's prediction, known from its index. */
const prediction = (index: number) => ((index * 7919) % 1000) / 1000 + 0.0001;

interface Plan {
  readonly rows: number;
  /** Batches of row indexes (a random partition), each succeeded / failed whole / never ran. */
  readonly batches: { indexes: number[]; fate: 'ok' | 'failed' | 'pending' }[];
  /** Rows the model refused. */
  readonly bad: Set<number>;
}

const plans = fc
  .integer({ min: 1, max: 250 })
  .chain((rows) =>
    fc.record({
      rows: fc.constant(rows),
      order: fc.shuffledSubarray(
        Array.from({ length: rows }, (_, i) => i),
        { minLength: rows, maxLength: rows },
      ),
      cuts: fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 1, maxLength: 300 }),
      fates: fc.array(fc.constantFrom('ok', 'ok', 'ok', 'failed', 'pending'), {
        minLength: 300,
        maxLength: 300,
      }),
      bad: fc.uniqueArray(fc.integer({ min: 0, max: rows - 1 }), { maxLength: rows }),
    }),
  )
  .map(({ rows, order, cuts, fates, bad }): Plan => {
    const batches: Plan['batches'] = [];
    let at = 0;
    for (let k = 0; at < rows; k++) {
      const size = cuts[k % cuts.length]!;
      batches.push({ indexes: order.slice(at, at + size), fate: fates[k % fates.length] as 'ok' });
      at += size;
    }
    return { rows, batches, bad: new Set(bad) };
  });

const BATCH_INPUT = { model: 'm', version: 3, job: 'j', format: 'csv', features: [] };

/** A succeeded batch's output: the function's BatchResult. */
function batchOutput(plan: Plan, indexes: readonly number[]) {
  return {
    version: 3,
    results: indexes.map(
      (index): BatchRowResult =>
        plan.bad.has(index)
          ? { index, error: `bad row ${index}, "quoted", with commas` }
          : { index, outputs: { score: [prediction(index)] } },
    ),
  };
}

/**
 * The children ResultWriter would record for `plan`, as it records them: with Transformation NONE
 * (Input and Output as JSON strings), or COMPACT (a succeeded child as its output alone; failed and
 * pending ones as with NONE).
 */
function children(plan: Plan, compact = false) {
  const located = (fate: string): Located[] =>
    plan.batches
      .filter((b) => b.fate === fate)
      .map((b, n) => ({
        where: `${fate} ${n}`,
        child:
          compact && fate === 'ok'
            ? batchOutput(plan, b.indexes)
            : {
                Status: fate.toUpperCase(),
                Input: JSON.stringify({
                  Items: b.indexes.map((index) => ({ index, row: {} })),
                  BatchInput: BATCH_INPUT,
                }),
                ...(fate === 'ok' ? { Output: JSON.stringify(batchOutput(plan, b.indexes)) } : {}),
                ...(fate === 'failed'
                  ? {
                      Error: 'Lambda.Unknown',
                      Cause: JSON.stringify({ errorMessage: 'the function crashed' }),
                    }
                  : {}),
              },
      }));
  return { succeeded: located('ok'), failed: located('failed'), pending: located('pending') };
}

/** What a row's outcome must be. */
function expected(plan: Plan, index: number): 'ok' | 'bad' | 'failed' | 'pending' {
  const fate = plan.batches.find((b) => b.indexes.includes(index))!.fate;
  if (fate !== 'ok') return fate;
  return plan.bad.has(index) ? 'bad' : 'ok';
}

describe('assembling a job', () => {
  it('writes every CSV row once, in input order, and each failure with its line (index + 2)', () => {
    fc.assert(
      fc.property(plans, (plan) => {
        const input = `id,x\n${Array.from({ length: plan.rows }, (_, i) => `${i},"v,${i}"`).join('\n')}\n`;
        const done = assembleCsv(input, collectOutcomes(3, children(plan)));
        const lines = parse(utf8(done.output)) as string[][];
        const scored = plan.batches.some((b) => b.fate === 'ok' && b.indexes.some((i) => !plan.bad.has(i)));
        expect(lines[0]).toEqual(scored ? ['id', 'x', 'score'] : ['id', 'x']);
        expect(lines).toHaveLength(plan.rows + 1);
        const failedLines = new Map(done.failedRows.map((f) => [f.index, f]));
        for (let i = 0; i < plan.rows; i++) {
          expect(lines[i + 1]!.slice(0, 2)).toEqual([String(i), `v,${i}`]);
          const fate = expected(plan, i);
          if (fate === 'ok') {
            expect(Number(lines[i + 1]![2])).toBe(prediction(i));
            expect(failedLines.has(i)).toBe(false);
          } else {
            expect(lines[i + 1]![2]).toBe(scored ? '' : undefined);
            expect(failedLines.get(i)?.line).toBe(i + 2);
            expect(failedLines.get(i)?.reason).toMatch(
              fate === 'bad'
                ? /^bad row/
                : fate === 'failed'
                  ? /failed: Lambda.Unknown: the function crashed/
                  : /never ran/,
            );
          }
        }
        expect(done.succeeded + done.failed).toBe(plan.rows);
        const failures = parse(done.failures, { columns: true }) as {
          line: string;
          index: string;
          reason: string;
        }[];
        expect(failures.map((f) => Number(f.index))).toEqual(done.failedRows.map((f) => f.index));
        expect(failures.map((f) => Number(f.line))).toEqual(done.failedRows.map((f) => f.index + 2));
        expect(new Set(failures.map((f) => f.index)).size).toBe(failures.length);
      }),
      { numRuns: 60 },
    );
  });

  it('writes one JSON line per input line, in order, and each failure with its line (index + 1)', () => {
    fc.assert(
      fc.property(plans, (plan) => {
        const input = Array.from({ length: plan.rows }, (_, i) => JSON.stringify([i, 1])).join('\n');
        const done = assembleJsonl(input, collectOutcomes(3, children(plan)));
        const lines = utf8(done.output)
          .trimEnd()
          .split('\n')
          .map((l) => JSON.parse(l) as unknown);
        expect(lines).toHaveLength(plan.rows);
        for (let i = 0; i < plan.rows; i++) {
          if (expected(plan, i) === 'ok') expect(lines[i]).toEqual([prediction(i)]);
          else {
            expect(lines[i]).toEqual({ error: expect.any(String) });
            expect(done.failedRows.find((f) => f.index === i)?.line).toBe(i + 1);
          }
        }
        expect(done.succeeded + done.failed).toBe(plan.rows);
      }),
      { numRuns: 60 },
    );
  });

  it("reads ResultWriter's COMPACT entries (a succeeded batch's output alone) as its NONE ones", () => {
    fc.assert(
      fc.property(plans, (plan) => {
        const compact = collectOutcomes(3, children(plan, true));
        expect(compact).toEqual(collectOutcomes(3, children(plan)));
        expect(compact.rows.size).toBe(plan.rows);
      }),
    );
  });

  it('assembles the same from COMPACT lines read without JSON.parse as from the parsed ones', () => {
    fc.assert(
      fc.property(plans, (plan) => {
        const parsed = children(plan, true);
        const lines = parsed.succeeded.map((e) => JSON.stringify(e.child)).join('\n');
        const scanned = {
          ...parsed,
          succeeded: parseResultFile(lines, 'k').map((child, i) => ({ child, where: `ok ${i}` })),
        };
        expect(scanned.succeeded.every((e) => e.child instanceof ScoredRows)).toBe(true);
        const input = `id\n${Array.from({ length: plan.rows }, (_, i) => i).join('\n')}\n`;
        expect(assembleCsv(input, collectOutcomes(3, scanned))).toEqual(
          assembleCsv(input, collectOutcomes(3, parsed)),
        );
        expect(assembleJsonl(input, collectOutcomes(3, scanned))).toEqual(
          assembleJsonl(input, collectOutcomes(3, parsed)),
        );
      }),
      { numRuns: 60 },
    );
  });

  it('assembles the same from scanned lines as from parsed ones whatever they hold: rows twice, other outputs, other versions', () => {
    const rows = fc.array(
      fc.oneof(
        fc.record({
          index: fc.nat({ max: 12 }),
          outputs: fc.constantFrom('p', 'p', 'q').map((name) => ({ [name]: [prediction(name.length)] })),
        }),
        fc.record({ index: fc.nat({ max: 12 }), error: fc.constantFrom('bad', 'say "x", y') }),
      ),
      { maxLength: 6 },
    );
    const files = fc.array(fc.record({ version: fc.constantFrom(3, 3, 4), results: rows }), { maxLength: 5 });
    fc.assert(
      fc.property(files, fc.nat({ max: 10 }), (lines, n) => {
        const text = lines.map((l) => JSON.stringify(l)).join('\n');
        const located = (children: unknown[]) => ({
          succeeded: children.map((child, i) => ({
            child: child as Located['child'],
            where: `k entry ${i}`,
          })),
          failed: [],
          pending: [],
        });
        const scanned = located(parseResultFile(text, 'k'));
        const parsed = located(lines);
        const input = `id\n${Array.from({ length: n }, (_, i) => i).join('\n')}\n`;
        expect(assembleCsv(input, collectOutcomes(3, scanned))).toEqual(
          assembleCsv(input, collectOutcomes(3, parsed)),
        );
        expect(assembleJsonl(input, collectOutcomes(3, scanned))).toEqual(
          assembleJsonl(input, collectOutcomes(3, parsed)),
        );
      }),
      { numRuns: 300 },
    );
  });

  it('keeps the last result a row is given, and counts results naming rows beyond the input', () => {
    const file = [
      '{"version":3,"results":[{"index":0,"outputs":{"score":[0.5]}},{"index":1,"outputs":{"score":[0.5]}}]}',
      '{"version":3,"results":[{"index":1,"error":"refused"},{"index":0,"outputs":{"score":[0.25]}}]}',
      '{"version":3,"results":[{"index":7,"outputs":{"score":[1]}},{"index":9007199254740991,"error":"x"}]}',
      '{"version":3, "results":[{"index":8,"outputs":{"score":[1]}}]}',
    ].join('\n');
    for (const entries of [parseResultFile(file, 'k'), file.split('\n').map((l) => JSON.parse(l))]) {
      const succeeded = entries.map((child, i) => ({ child, where: `k entry ${i}` }));
      const done = assembleCsv('a\nx\ny\n', collectOutcomes(3, { succeeded, failed: [], pending: [] }));
      expect(utf8(done.output)).toBe('a,score\nx,0.25\ny,\n');
      expect(done.failedRows).toEqual([{ line: 3, index: 1, reason: 'refused' }]);
      expect(done.notes).toEqual(["3 results name rows beyond the input's 2 rows"]);
    }
  });

  it('names the output columns after the first scored row, leaving empty the cells of rows without them', () => {
    const file = [
      '{"version":3,"results":[{"index":0,"outputs":{"p":[0.5]}},{"index":1,"outputs":{"q":[0.25]}}]}',
      '{"version":3,"results":[{"index":2,"outputs":{"p":[1]}}]}',
    ].join('\n');
    const succeeded = parseResultFile(file, 'k').map((child, i) => ({ child, where: `k entry ${i}` }));
    const outcomes = collectOutcomes(3, { succeeded, failed: [], pending: [] });
    expect(utf8(assembleCsv('a\nx\ny\nz\n', outcomes).output)).toBe('a,p\nx,0.5\ny,\nz,1\n');
    expect(utf8(assembleJsonl('1\n2\n3\n', outcomes).output)).toBe('[0.5]\n\n[1]\n');
  });

  it('counts a row scored by another version than the job pinned as failed', () => {
    const plan: Plan = { rows: 2, batches: [{ indexes: [0, 1], fate: 'ok' }], bad: new Set() };
    const done = assembleCsv('a\n1\n2\n', collectOutcomes(4, children(plan)));
    expect(done.failed).toBe(2);
    expect(done.failedRows[0]!.reason).toBe("scored by version 3, not the job's version 4");
  });

  it('counts an empty line as a row, as the ItemReader does, and gives rows spanning lines their first line', () => {
    const plan: Plan = {
      rows: 4,
      batches: [{ indexes: [0, 1, 2, 3], fate: 'ok' }],
      bad: new Set([0, 1, 2, 3]),
    };
    const done = assembleCsv('a,b\n\n1,"x\ny"\n2,z\n3,w\n', collectOutcomes(3, children(plan)));
    expect(done.rows).toBe(4);
    expect(done.failedRows.map((f) => f.line)).toEqual([2, 3, 5, 6]);
  });

  it("reads the CSV's records as the ItemReader does (quotes, backslash escapes, CR, LF), so each row's index is its record", () => {
    // Text made of the characters that decide where records and fields end.
    const texts = fc
      .array(fc.constantFrom('a', 'b', '1', ',', '"', '\\', '\n', '\r', ' '), { maxLength: 80 })
      .map((chars) => `h1,h2\n${chars.join('')}`);
    fc.assert(
      fc.property(texts, (text) => {
        const items = csvItems(text);
        const all = Array.from({ length: items.length }, (_, i) => i);
        // Each row scored with its own index as its prediction: the output says which record got which.
        const plan: Plan = { rows: items.length, batches: [{ indexes: all, fate: 'ok' }], bad: new Set() };
        const done = assembleCsv(text, collectOutcomes(3, children(plan)));
        expect(done.rows).toBe(items.length);
        // Each output row, read as plain CSV: the fields the ItemReader read, then the prediction.
        const out = (parse(utf8(done.output)) as string[][]).slice(1);
        expect(out).toEqual(items.map((item, i) => [item.h1, item.h2, String(prediction(i))]));
      }),
      { numRuns: 300 },
    );
  });
});

describe('the final step', () => {
  const job: BatchJobInput = {
    model: 'm',
    version: 3,
    job: 'j',
    format: 'csv',
    inputKey: keys.batchInput('m', 'j', 'csv'),
    features: [],
  };
  const results = keys.batchResults('m', 'j');
  const plan: Plan = {
    rows: 5,
    batches: [
      { indexes: [3, 4], fate: 'ok' },
      { indexes: [0, 1], fate: 'failed' },
      { indexes: [2], fate: 'ok' },
    ],
    bad: new Set([4]),
  };

  /**
   * ResultWriter's files as Step Functions writes them, a file per kind: with Transformation NONE
   * and OutputType JSON (the default), or COMPACT and JSONL (what the construct configures).
   */
  async function stored(layout: 'NONE/JSON' | 'COMPACT/JSONL' = 'COMPACT/JSONL'): Promise<MemoryObjectStore> {
    const store = new MemoryObjectStore();
    const compact = layout === 'COMPACT/JSONL';
    const { succeeded, failed } = children(plan, compact);
    const file = (entries: Located[]) =>
      compact
        ? entries.map((e) => `${JSON.stringify(e.child)}\n`).join('')
        : JSON.stringify(entries.map((e) => e.child));
    await store.put(job.inputKey, 'x\n10\n11\n12\n13\n14\n');
    await store.put(`${results}/run-1/SUCCEEDED_0.json`, file(succeeded));
    await store.put(`${results}/run-1/FAILED_0.json`, file(failed));
    await store.put(
      `${results}/run-1/manifest.json`,
      JSON.stringify({
        DestinationBucket: 'bucket',
        MapRunArn: 'arn:aws:states:us-east-1:1:mapRun:x/y:z',
        ResultFiles: {
          FAILED: [{ Key: `${results}/run-1/FAILED_0.json`, Size: 1 }],
          PENDING: [],
          SUCCEEDED: [{ Key: `${results}/run-1/SUCCEEDED_0.json`, Size: 1 }],
        },
      }),
    );
    return store;
  }
  const event = (map: BatchAssembleEvent['map']): BatchAssembleEvent => ({
    job,
    startedAt: '2026-12-06T12:00:00.000Z',
    map,
  });
  const text = async (store: MemoryObjectStore, key: string) =>
    new TextDecoder().decode((await store.get(key))!.body);

  it.each(['NONE/JSON', 'COMPACT/JSONL'] as const)(
    'writes the output, failures.csv and manifest.json under the job (ResultWriter %s)',
    async (layout) => {
      const store = await stored(layout);
      const summary = await finishJob(
        event({ ResultWriterDetails: { Bucket: 'bucket', Key: `${results}/run-1/manifest.json` } }),
        { store, bucket: 'bucket', now: () => new Date('2026-12-06T12:00:05.000Z') },
      );
      expect(summary).toMatchObject({ rows: 5, succeeded: 2, failed: 3, output: 'batch/m/j/output.csv' });
      expect(await text(store, 'batch/m/j/output.csv')).toBe(
        `x,score\n10,\n11,\n12,${prediction(2)}\n13,${prediction(3)}\n14,\n`,
      );
      expect((await text(store, 'batch/m/j/failures.csv')).split('\n').map((l) => l.split(',')[0])).toEqual([
        'line',
        '2',
        '3',
        '6',
        '',
      ]);
      const manifest = JSON.parse(await text(store, 'batch/m/j/manifest.json'));
      expect(manifest).toMatchObject({
        status: 'succeeded',
        version: 3,
        rows: 5,
        succeeded: 2,
        failed: 3,
        durationMs: 5000,
        failedBatches: [
          { rows: 2, firstLine: 2, lastLine: 3, error: 'Lambda.Unknown', cause: 'the function crashed' },
        ],
        failedRows: [
          { line: 2, index: 0 },
          { line: 3, index: 1 },
          { line: 6, index: 4 },
        ],
      });
    },
  );

  it('refuses a ResultWriter file it cannot read, naming the file and the entry', async () => {
    const run = async (body: string) => {
      const store = await stored();
      await store.put(`${results}/run-1/SUCCEEDED_0.json`, body);
      return finishJob(
        event({ ResultWriterDetails: { Bucket: 'bucket', Key: `${results}/run-1/manifest.json` } }),
        { store, bucket: 'bucket' },
      );
    };
    const key = `${results}/run-1/SUCCEEDED_0.json`;
    await expect(run('{"version":3,"results":[]}\n{oops\n')).rejects.toThrow(
      new IntegrityError(`${key} line 2 is not valid JSON: ${jsonError('{oops')}`),
    );
    await expect(run('{"version":3,"results":[]}\n{"version":3}\n')).rejects.toThrow(
      `${key} entry 1: Output is not a batch result ({version, results})`,
    );
    await expect(run('{"version":3,"results":[]}\nnull\n')).rejects.toThrow(
      `${key}: entry 1 is not a child execution`,
    );
    // A NONE entry whose Output is not a batch result is refused too, not read as a COMPACT one.
    await expect(run(JSON.stringify([{ Status: 'SUCCEEDED', Output: '{"results":[]}' }]))).rejects.toThrow(
      `${key} entry 0: Output is not a batch result`,
    );
  });

  it('still writes the output when the Map failed, finding ResultWriter manifest itself, and records the error', async () => {
    const store = await stored();
    await finishJob(event({ Error: 'States.ExceedToleratedFailureThreshold', Cause: 'too many' }), {
      store,
      bucket: 'bucket',
    });
    const manifest = JSON.parse(await text(store, 'batch/m/j/manifest.json'));
    expect(manifest).toMatchObject({
      status: 'failed',
      mapError: { error: 'States.ExceedToleratedFailureThreshold', cause: 'too many' },
      succeeded: 2,
    });
  });

  it('refuses keys outside the job: ResultWriter elsewhere, an input outside batch/<model>/', async () => {
    const store = await stored();
    await expect(
      finishJob(event({ ResultWriterDetails: { Bucket: 'bucket', Key: 'models/m/x/manifest.json' } }), {
        store,
        bucket: 'bucket',
      }),
    ).rejects.toThrow(ValidationError);
    await expect(
      finishJob(
        { ...event({ Error: 'x' }), job: { ...job, inputKey: 'batch/m/../other/input.csv' } },
        { store, bucket: 'bucket' },
      ),
    ).rejects.toThrow(/is not under batch\/m\//);
    await expect(finishJob(event({ Error: 'x' }), { store, bucket: 'bucket', model: 'n' })).rejects.toThrow(
      /finishes jobs of model "n"/,
    );
  });
});

describe('batch keys', () => {
  it('keeps every job key under batch/<model>/<job>/ and refuses names that would leave it', () => {
    expect(keys.batchInput('m', 'j-1', 'csv')).toBe('batch/m/j-1/input.csv');
    expect(keys.batchResults('m', 'j-1')).toBe('batch/m/j-1/results');
    expect(() => keys.batchInput('m', '../x', 'csv')).toThrow(/Invalid batch job id/);
    expect(() => keys.batchOutput('m', 'j', 'exe')).toThrow(/Invalid batch format/);
    expect(() => keys.batchJob('M/../n', 'j')).toThrow(/Invalid model name/);
    expect(isBatchKey('m', 'batch/m/any/where.csv')).toBe(true);
    for (const key of [
      'batch/m/',
      'batch/n/x.csv',
      'batch/m/../n/x.csv',
      'batch/m//x',
      'batch/m/x\u0000',
      'models/m/x',
    ]) {
      expect(isBatchKey('m', key), key).toBe(false);
    }
  });
});
