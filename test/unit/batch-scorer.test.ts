/**
 * The model's function scoring a batch (functions/inference/batch.ts): the pinned version scores
 * every row whatever the alias says, bad rows get an error naming the column and the problem and
 * never fail the batch, a wrong job fails it with a typed error. Unit level: a memory registry,
 * the cpu runtime, linear models whose outputs are known exactly.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { BatchScorer } from '../../functions/inference/batch.js';
import { DEFAULT_LIMITS } from '../../functions/inference/predict-request.js';
import type { BatchEvent, BatchItem, BatchRowResult } from '../../functions/shared/batch/events.js';
import { InvalidNameError, NotFoundError, ValidationError } from '../../functions/shared/errors.js';
import { ModelRegistry } from '../../functions/shared/registry/registry.js';
import type { TfRuntime } from '../../functions/shared/runtime/types.js';
import { initRuntime } from '../../layers/tfjs-runtime/runtime.js';
import { MemoryObjectStore } from '../support/memory-store.js';
import { linear, publishLinear } from '../support/models.js';

const MODEL = 'lin';
const W1 = [1, 2, 3] as const;
const W2 = [-4, 0.5, 10] as const;
let registry: ModelRegistry;
let cpu: TfRuntime;
const silent = { info() {}, warn() {}, error() {} };

beforeAll(async () => {
  registry = new ModelRegistry(new MemoryObjectStore());
  cpu = await initRuntime('cpu', undefined);
  await publishLinear(cpu, registry, MODEL, W1, 0.5, { promote: true });
  await publishLinear(cpu, registry, MODEL, W2, -1);
});

const scorer = (fastPath: 'auto' | 'off' = 'auto') =>
  new BatchScorer({
    model: MODEL,
    registry,
    runtime: async () => cpu,
    fastPath,
    log: silent,
    limits: DEFAULT_LIMITS,
  });

function event(items: readonly BatchItem[], input: Partial<BatchEvent['BatchInput']> = {}): BatchEvent {
  return {
    Items: items,
    BatchInput: {
      model: MODEL,
      version: 1,
      job: 'job-1',
      format: 'csv',
      features: ['a', 'b', 'c'],
      ...input,
    },
  };
}

const csvRow = (a: string, b: string, c: string, extra: Record<string, string> = {}) => ({
  a,
  b,
  c,
  label: '1',
  ...extra,
});
const value = (r: BatchRowResult | undefined) =>
  r && 'outputs' in r ? (Object.values(r.outputs)[0] as number[])[0] : undefined;
const f32 = Math.fround;

describe('batch scoring with a pinned version', () => {
  it.each(['auto', 'off'] as const)(
    'scores good CSV rows exactly as the version predicts, and names the column and problem of each bad one (fast path %s)',
    async (fastPath) => {
      const rows: unknown[] = [
        csvRow('1', '2', '3'),
        csvRow('abc', '2', '3'),
        csvRow(' 0.5 ', '-1e2', '+.25'),
        csvRow('1', '', '3'),
        { a: '1', c: '3' },
        csvRow('1', '2', '0x1f'),
        csvRow('1e999', '2', '3'),
        csvRow('Infinity', '2', '3'),
        'not a record',
        csvRow('7', '8', '9'),
      ];
      const items = rows.map((row, i) => ({ index: 100 + i, row }));
      const { version, results } = await scorer(fastPath).score(event(items));
      expect(version).toBe(1);
      expect(results.map((r) => r.index)).toEqual(items.map((i) => i.index));
      expect(value(results[0])).toBeCloseTo(f32(linear(W1, 0.5, [1, 2, 3])), 5);
      expect(value(results[2])).toBeCloseTo(f32(linear(W1, 0.5, [0.5, -100, 0.25])), 4);
      expect(value(results[9])).toBeCloseTo(f32(linear(W1, 0.5, [7, 8, 9])), 5);
      const errors = results.map((r) => ('error' in r ? r.error : undefined));
      expect(errors[1]).toBe('column "a": "abc" is not a number');
      expect(errors[3]).toBe('column "b" is empty');
      expect(errors[4]).toBe('column "b" is missing');
      expect(errors[5]).toBe('column "c": "0x1f" is not a number');
      expect(errors[6]).toBe('column "a": Infinity is beyond float32\'s range');
      expect(errors[7]).toBe('column "a": "Infinity" is not a number');
      expect(errors[8]).toMatch(/not a CSV record/);
      expect(errors.filter((e) => e !== undefined)).toHaveLength(7);
    },
  );

  it('scores with the version the job pinned, not the alias, and keeps one pinned version loaded', async () => {
    const s = scorer();
    const items = [{ index: 0, row: csvRow('1', '1', '1') }];
    const first = await s.score(event(items, { version: 2 }));
    expect(first.version).toBe(2);
    expect(value(first.results[0])).toBeCloseTo(f32(linear(W2, -1, [1, 1, 1])), 5);
    // The alias says 1; the job says 2.
    expect((await registry.getAlias(MODEL, 'live'))?.version).toBe(1);
    const reads = (registry.store as MemoryObjectStore).calls.get;
    const again = await s.score(event(items, { version: 2 }));
    expect(value(again.results[0])).toBe(value(first.results[0]));
    expect((registry.store as MemoryObjectStore).calls.get).toBe(reads);
    const other = await s.score(event(items, { version: 1 }));
    expect(value(other.results[0])).toBeCloseTo(f32(linear(W1, 0.5, [1, 1, 1])), 5);
  });

  it('reads columns in header order when neither the version nor the job names features', async () => {
    const { results } = await scorer().score(
      event(
        [
          { index: 0, row: { x: '1', y: '2', z: '3' } },
          { index: 1, row: { x: '1', y: '2', z: '3', w: '4' } },
        ],
        { features: [] },
      ),
    );
    expect(value(results[0])).toBeCloseTo(f32(linear(W1, 0.5, [1, 2, 3])), 5);
    expect(results[1]).toEqual({
      index: 1,
      error: expect.stringMatching(/has 4 columns; the model takes 3/),
    });
  });

  it('scores JSON Lines instances, each bad one with its own error', async () => {
    const items = [[1, 2, 3], [1, 'x', 3], [1, 2], { x: [1, 2, 3] }, [4, 5, 6]].map((row, index) => ({
      index,
      row,
    }));
    const { results } = await scorer().score(event(items, { format: 'jsonl' }));
    expect(value(results[0])).toBeCloseTo(f32(linear(W1, 0.5, [1, 2, 3])), 5);
    expect(value(results[4])).toBeCloseTo(f32(linear(W1, 0.5, [4, 5, 6])), 5);
    expect(results[1]).toEqual({ index: 1, error: 'instance[1] must be a number, got "x"' });
    expect(results[2]).toEqual({ index: 2, error: expect.stringMatching(/^instance has 2 values/) });
    expect(results[3]).toMatchObject({ index: 3, error: expect.any(String) });
  });

  it('fails a wrong job whole with a typed error', async () => {
    const items = [{ index: 0, row: csvRow('1', '2', '3') }];
    await expect(scorer().score(event(items, { model: 'other' }))).rejects.toThrow(ValidationError);
    await expect(scorer().score(event(items, { model: 'other' }))).rejects.toThrow(/serves model "lin"/);
    await expect(scorer().score(event(items, { version: 9 }))).rejects.toThrow(NotFoundError);
    await expect(scorer().score(event(items, { version: 0 }))).rejects.toThrow(InvalidNameError);
    await expect(scorer().score(event(items, { format: 'xml' as 'csv' }))).rejects.toThrow(InvalidNameError);
    await expect(scorer().score({ Items: [{ row: {} }], BatchInput: event([]).BatchInput })).rejects.toThrow(
      /Items\[0\]/,
    );
  });
});
