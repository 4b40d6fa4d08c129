/**
 * Shadow comparison and its runner (functions/inference/shadow.ts): the figures match an
 * independent computation on nested arrays; a shadow that throws or does not fit is a counted
 * failure, never an exception, and its log lines are rate-limited; a shadow slower than its budget
 * three times in a row is skipped, then probed, and runs again once fast.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { OutputTensor } from '../../functions/inference/answers.js';
import { DEFAULT_LIMITS } from '../../functions/inference/api.js';
import type { Executor } from '../../functions/inference/executor.js';
import type { Log } from '../../functions/inference/log.js';
import type { PredictRequest } from '../../functions/inference/predict-request.js';
import type { Served } from '../../functions/inference/served.js';
import {
  compareOutputs,
  SHADOW_PROBE_EVERY,
  SHADOW_SLOW_AFTER,
  ShadowRunner,
} from '../../functions/inference/shadow.js';
import type { Signature } from '../../functions/shared/registry/types.js';

/** Rows of scores, as a caller reads them from two answers. */
type Rows = number[][];

/** The figures computed plainly from rows: max |a − b|; per row, argmax (classes) or ≥ 0.5 (one column in [0, 1]). */
function independent(a: Rows, b: Rows) {
  let maxAbsDiff = 0;
  for (let r = 0; r < a.length; r++)
    for (let j = 0; j < a[r]!.length; j++) maxAbsDiff = Math.max(maxAbsDiff, Math.abs(a[r]![j]! - b[r]![j]!));
  const width = a[0]?.length ?? 0;
  const top = (row: number[]) => row.indexOf(Math.max(...row));
  let rows = 0;
  let disagree = 0;
  if (width >= 2) {
    rows = a.length;
    for (let r = 0; r < a.length; r++) if (top(a[r]!) !== top(b[r]!)) disagree++;
  } else if (width === 1 && [...a, ...b].every(([v]) => v! >= 0 && v! <= 1)) {
    rows = a.length;
    for (let r = 0; r < a.length; r++) if (a[r]![0]! >= 0.5 !== b[r]![0]! >= 0.5) disagree++;
  }
  return { maxAbsDiff, topClassRows: rows, topClassDisagreements: disagree };
}

const tensor = (rows: Rows): OutputTensor => ({
  name: 'y',
  shape: [rows.length, rows[0]?.length ?? 0],
  values: Float64Array.from(rows.flat()),
});

describe('compareOutputs', () => {
  it('matches the plain computation on random class scores and sigmoid columns', () => {
    const value = fc.oneof(
      fc.double({ min: -5, max: 5, noNaN: true }),
      fc.double({ min: 0, max: 1, noNaN: true }),
    );
    const pair = fc
      .tuple(fc.integer({ min: 1, max: 6 }), fc.integer({ min: 1, max: 5 }))
      .chain(([rows, width]) =>
        fc.tuple(
          fc.array(fc.array(value, { minLength: width, maxLength: width }), {
            minLength: rows,
            maxLength: rows,
          }),
          fc.array(fc.array(value, { minLength: width, maxLength: width }), {
            minLength: rows,
            maxLength: rows,
          }),
        ),
      );
    fc.assert(
      fc.property(pair, ([a, b]) => {
        const got = compareOutputs([tensor(a)], [tensor(b)]);
        const want = independent(a, b);
        expect(got).toEqual(want);
      }),
      { numRuns: 300 },
    );
  });

  it('takes the largest difference over several outputs and adds their classifier rows', () => {
    const a = [
      tensor([
        [0.1, 0.9],
        [0.8, 0.2],
      ]),
      tensor([[0.3], [0.7]]),
    ];
    const b = [
      tensor([
        [0.6, 0.4],
        [0.7, 0.3],
      ]),
      tensor([[0.35], [0.2]]),
    ];
    expect(compareOutputs(a, b)).toEqual({ maxAbsDiff: 0.5, topClassRows: 4, topClassDisagreements: 2 });
  });

  it('has no top class for a one-value output outside [0, 1] (a regression)', () => {
    expect(compareOutputs([tensor([[2], [0.1]])], [tensor([[3], [0.9]])])).toEqual({
      maxAbsDiff: 1,
      topClassRows: 0,
      topClassDisagreements: 0,
    });
  });

  it('counts NaN against a number as an infinite difference, two NaNs as none', () => {
    const got = compareOutputs([tensor([[Number.NaN, 1]])], [tensor([[Number.NaN, 1]])]);
    expect(got).toMatchObject({ maxAbsDiff: 0 });
    const apart = compareOutputs([tensor([[Number.NaN, 1]])], [tensor([[0, 1]])]);
    expect(apart).toMatchObject({ maxAbsDiff: Number.POSITIVE_INFINITY });
  });

  it('says why outputs cannot be compared', () => {
    expect(compareOutputs([tensor([[1, 2]])], [tensor([[1, 2]]), tensor([[1]])])).toMatch(
      /2 outputs, the answer 1/,
    );
    expect(compareOutputs([tensor([[1, 2]])], [tensor([[1, 2, 3]])])).toMatch(/shape \[1, 3\] in the shadow/);
  });
});

const SIGNATURE: Signature = {
  inputs: [{ name: 'x', dtype: 'float32', shape: [null, 2] }],
  outputs: [{ name: 'y', dtype: 'float32', shape: [null, 2] }],
};

/** An executor that swaps its inputs' columns (or throws), taking `cost` ms of the fake clock. */
function fakeExecutor(clock: { t: number }, behaviour: { cost: number; fail?: boolean }): Executor {
  return {
    runtime: 'fast-path',
    signature: SIGNATURE,
    predict(inputs) {
      clock.t += behaviour.cost;
      if (behaviour.fail) throw new Error('shadow exploded');
      const x = inputs[0]!.values;
      const y = new Float32Array(x.length);
      for (let i = 0; i < x.length; i += 2) {
        y[i] = x[i + 1]!;
        y[i + 1] = x[i]!;
      }
      return [{ name: 'y', shape: [x.length / 2, 2], values: y }];
    },
    dispose() {},
  };
}

function runnerWith(behaviour: { cost: number; fail?: boolean }) {
  const clock = { t: 0 };
  const lines: string[] = [];
  const log: Log = { info() {}, warn: (m) => lines.push(m), error: (m) => lines.push(m) };
  const served: Served = {
    version: 7,
    etag: 'e',
    executor: fakeExecutor(clock, behaviour),
    metadata: {} as Served['metadata'],
  };
  const runner = new ShadowRunner(served, log, () => clock.t);
  const answering: Executor = { ...fakeExecutor(clock, { cost: 0 }), signature: SIGNATURE };
  const request: PredictRequest = {
    format: 'row',
    batch: 2,
    inputs: [{ name: 'x', dtype: 'float32', shape: [2, 2], values: Float32Array.from([0.9, 0.1, 0.2, 0.8]) }],
  };
  const outputs: OutputTensor[] = [
    { name: 'y', shape: [2, 2], values: Float32Array.from([0.9, 0.1, 0.2, 0.8]) },
  ];
  const run = (answerMs = 1) => runner.run(request, '', answering, outputs, answerMs, DEFAULT_LIMITS);
  return { runner, run, lines, clock, behaviour };
}

describe('ShadowRunner', () => {
  it('compares the shadow with the answer on the same inputs', () => {
    const { run } = runnerWith({ cost: 1 });
    const outcome = run();
    expect(outcome).toMatchObject({
      kind: 'compared',
      version: 7,
      topClassRows: 2,
      topClassDisagreements: 2,
    });
    expect((outcome as { maxAbsDiff: number }).maxAbsDiff).toBeCloseTo(0.8, 6);
  });

  it('counts a shadow that throws as a failure, never throws, and logs one line a minute', () => {
    const { run, lines, clock } = runnerWith({ cost: 1, fail: true });
    for (let i = 0; i < 50; i++) expect(run()).toMatchObject({ kind: 'failed', version: 7 });
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/shadow version failed/);
    clock.t += 60_000;
    run();
    expect(lines).toHaveLength(2);
  });

  it(`skips a shadow over budget ${SHADOW_SLOW_AFTER} times in a row, probes it every ${SHADOW_PROBE_EVERY}th, and runs it again once fast`, () => {
    const state = runnerWith({ cost: 40 });
    // One slow run is not slowness: it still runs.
    expect(state.run(10).kind).toBe('compared');
    state.behaviour.cost = 1;
    expect(state.run(10).kind).toBe('compared');
    state.behaviour.cost = 40; // over max(5, 2 × 10)
    for (let i = 0; i < SHADOW_SLOW_AFTER; i++) expect(state.run(10).kind).toBe('compared');
    const kinds: string[] = [];
    for (let i = 0; i < SHADOW_PROBE_EVERY; i++) kinds.push(state.run(10).kind);
    expect(kinds.slice(0, -1).every((k) => k === 'slow')).toBe(true);
    expect(kinds.at(-1)).toBe('compared'); // the probe
    state.behaviour.cost = 1;
    for (let i = 0; i < SHADOW_PROBE_EVERY - 1; i++) expect(state.run(10).kind).toBe('slow');
    expect(state.run(10).kind).toBe('compared'); // the probe finds it fast
    expect(state.run(10).kind).toBe('compared');
  });

  it('measures the budget from the answer: a shadow as slow as twice the answer is within it', () => {
    const state = runnerWith({ cost: 20 });
    for (let i = 0; i < 10; i++) expect(state.run(10).kind).toBe('compared');
  });
});
