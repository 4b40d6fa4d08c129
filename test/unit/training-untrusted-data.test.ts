/**
 * Training data is untrusted input. `dataset put` checks a CSV against the model's columns before
 * uploading (checkCsv), naming the file, line and column at fault; retraining skips an object it
 * cannot use at all, reports it in the run's result, its log and the version's metadata, and goes
 * on with the others, failing clearly only when nothing usable is left.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { ValidationError } from '../../functions/shared/errors.js';
import { type ModelSpec, parseManifest } from '../../functions/shared/manifest.js';
import { ModelRegistry } from '../../functions/shared/registry/registry.js';
import type { TfRuntime } from '../../functions/shared/runtime/types.js';
import { checkCsv } from '../../functions/shared/training/csv.js';
import { loadDataset } from '../../functions/shared/training/dataset.js';
import { retrain } from '../../functions/shared/training/retrain.js';
import { generateDiabetesCsv, PIMA_HEADER } from '../../functions/shared/training/synthetic.js';
import { createRuntime } from '../../layers/tfjs-runtime/runtime.js';
import { MemoryObjectStore } from '../support/memory-store.js';

const spec: ModelSpec = parseManifest({
  models: [
    {
      name: 'diabetes',
      retrain: { schedule: 'rate(1 day)' },
      definition: {
        features: PIMA_HEADER.filter((c) => c !== 'outcome'),
        label: 'outcome',
        layers: [
          { type: 'dense', units: 4, activation: 'relu' },
          { type: 'dense', units: 1, activation: 'sigmoid' },
        ],
        compile: { optimizer: 'adam', learningRate: 0.01 },
        fit: { epochs: 2, batchSize: 32 },
        gate: { metric: 'val_accuracy', minImprovement: 0, maxRegression: 0.01 },
      },
    },
  ],
}).models[0]!;
const definition = spec.definition!;
const good = generateDiabetesCsv(120, 7);
const [header, ...rows] = good.trim().split('\n');

function refusal(body: string | Uint8Array, file = 'data.csv', sample?: number): string {
  try {
    checkCsv(body, file, definition, sample);
  } catch (error) {
    expect(error).toBeInstanceOf(ValidationError);
    return (error as Error).message;
  }
  throw new Error(`${file} was accepted`);
}

describe('checkCsv (dataset put)', () => {
  it('accepts a CSV with the model’s columns in any order, and says how many rows it checked', () => {
    expect(checkCsv(good, 'data.csv', definition)).toEqual({ checkedRows: 120 });
    expect(checkCsv(good, 'data.csv', definition, 10)).toEqual({ checkedRows: 10 });
    const columns = header!.split(',');
    const reordered = [
      columns.toReversed().join(','),
      ...rows.map((r) => r.split(',').toReversed().join(',')),
    ];
    expect(checkCsv(reordered.join('\n'), 'data.csv', definition).checkedRows).toBe(120);
  });

  it('refuses naming the file, the line and the column', () => {
    expect(refusal('glucose,outcome\n1,0\n')).toMatch(
      /^data\.csv: the header \(line 1\) lacks columns pregnancies, /,
    );
    const text = (at: number, row: string) =>
      [header, ...rows.slice(0, at - 2), row, ...rows.slice(at - 1)].join('\n');
    expect(refusal(text(5, rows[3]!.replace(/^[^,]*/, '')))).toBe(
      'data.csv line 5, column 1 (pregnancies): pregnancies is empty',
    );
    expect(refusal(text(9, rows[7]!.replace(/,[^,]*$/, ',2')))).toBe(
      'data.csv line 9, column 9 (outcome): outcome must be 0 or 1 for a binary model, got 2',
    );
    expect(refusal(text(3, rows[1]!.replace(/,[^,]*,/, ',NaN,')))).toBe(
      'data.csv line 3, column 2 (glucose): glucose is not a number: "NaN"',
    );
    expect(refusal(text(4, `${rows[2]},7`))).toBe('data.csv line 4: has 10 fields, the header has 9');
    expect(refusal(`${header}\n1,"2\n`)).toMatch(/^data\.csv line \d+ is not readable CSV: /);
  });

  it('refuses an empty file, a header alone, and bytes that are not text', () => {
    expect(refusal('', 'empty.csv')).toBe('empty.csv is empty: it needs a header line naming the columns');
    expect(refusal(`${header}\n`, 'header.csv')).toBe('header.csv has a header but no data rows');
    const binary = new Uint8Array(2048).map((_, i) => (i * 131 + 7) & 0xff);
    expect(refusal(binary, 'model.bin')).toMatch(
      /^model\.bin( line \d+ is not readable CSV|: the header \(line 1\) lacks)/,
    );
  });

  it('checks only the sample: a bad row after it is left to retraining, which skips the row', () => {
    const late = [header, ...rows.slice(0, 50), 'x,1,2', ...rows.slice(50)].join('\n');
    expect(checkCsv(late, 'data.csv', definition, 50)).toEqual({ checkedRows: 50 });
    expect(refusal(late, 'data.csv', 51)).toBe('data.csv line 52: has 3 fields, the header has 9');
  });
});

describe('retraining with a bad object among the data', () => {
  let runtime: TfRuntime;
  beforeAll(async () => {
    runtime = await createRuntime('cpu');
  });

  it('loadDataset skips objects it cannot use, lists them with the reason, and fingerprints them too', async () => {
    const store = new MemoryObjectStore();
    await store.put('datasets/diabetes/a.csv', good);
    await store.put('datasets/diabetes/b.csv', 'when,what\n1,2\n');
    await store.put(
      'datasets/diabetes/c.csv',
      new Uint8Array(512).map((_, i) => (i * 131 + 7) & 0xff),
    );
    const data = await loadDataset(store, 'datasets/diabetes/', definition);
    expect(data.rows).toBe(120);
    expect(data.objects.map((o) => o.key)).toEqual(['datasets/diabetes/a.csv']);
    expect(data.skipped.map((o) => o.key)).toEqual(['datasets/diabetes/b.csv', 'datasets/diabetes/c.csv']);
    expect(data.skipped[0]!.reason).toMatch(
      /^datasets\/diabetes\/b\.csv: the header \(line 1\) lacks columns/,
    );
    expect(data.skipped[0]).toMatchObject({ size: 14, sha256: expect.stringMatching(/^[0-9a-f]{64}$/) });
    // Fixing a skipped object changes the data, so the next retrain does not call it unchanged.
    await store.put('datasets/diabetes/b.csv', `${header}\n${rows[0]}\n`);
    const fixed = await loadDataset(store, 'datasets/diabetes/', definition);
    expect(fixed.fingerprint).not.toBe(data.fingerprint);
    expect(fixed.rows).toBe(121);
  });

  it('fails clearly, naming every object, when none is usable', async () => {
    const store = new MemoryObjectStore();
    await store.put('datasets/diabetes/b.csv', 'when,what\n1,2\n');
    await expect(loadDataset(store, 'datasets/diabetes/', definition)).rejects.toThrow(
      /^No usable training data under memory:\/\/test\/datasets\/diabetes\/: every object was skipped \(datasets\/diabetes\/b\.csv: .*lacks columns/,
    );
  });

  it('retrain publishes from the good objects and reports the skipped one in its result, log and metadata', async () => {
    const registry = new ModelRegistry(new MemoryObjectStore(), { actor: 'test' });
    await registry.putDataset('diabetes', 'a.csv', new TextEncoder().encode(good));
    await registry.putDataset('diabetes', 'broken.csv', new TextEncoder().encode('just,words\nno,numbers\n'));
    const events: Array<{ event: string; [k: string]: unknown }> = [];
    const result = await retrain({ registry, spec, runtime, log: (e) => void events.push(e) });
    expect(result.status).not.toBe('unchanged');
    expect(result.skipped).toEqual([
      expect.objectContaining({
        key: 'datasets/diabetes/broken.csv',
        reason: expect.stringMatching(/lacks columns/),
      }),
    ]);
    expect(events.find((e) => e.event === 'skipped')).toMatchObject({ key: 'datasets/diabetes/broken.csv' });
    if (result.status === 'unchanged') return;
    const metadata = await registry.getMetadata('diabetes', result.version);
    expect(metadata.training?.skipped).toEqual([
      expect.objectContaining({
        key: 'datasets/diabetes/broken.csv',
        reason: expect.stringMatching(/lacks columns/),
      }),
    ]);
    expect(result.rows).toBe(120);
  });
});
