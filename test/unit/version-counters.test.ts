/**
 * The local per-version counters (functions/inference/version-counters.ts): p50/p99 within the
 * histogram's ±5 % of the nearest-rank percentiles of the sorted latencies; counts per version and
 * role; windows by 10-second bucket; shadow figures summed as figures.ts defines them; two hours
 * kept.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BUCKET_MS, KEEP_MS, VersionCounters } from '../../functions/inference/version-counters.js';

/** Nearest rank: the smallest value with at least q of them at or below it. */
const percentile = (sorted: number[], q: number) => sorted[Math.max(1, Math.ceil(q * sorted.length)) - 1]!;
const T0 = Date.UTC(2026, 0, 1);

describe('VersionCounters', () => {
  it('gives p50 and p99 within ±5 % of the sorted latencies', () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: 0.002, max: 5_000, noNaN: true }), { minLength: 1, maxLength: 400 }),
        (latencies) => {
          const counters = new VersionCounters(() => T0);
          for (const ms of latencies)
            counters.record({ version: 1, role: 'live', status: 200, latencyMs: ms });
          const [figures] = counters.figures(new Date(T0), new Date(T0 + 1));
          const sorted = [...latencies].sort((a, b) => a - b);
          const close = (got: number | undefined, want: number) => {
            expect(got).toBeDefined();
            expect(got! / want).toBeGreaterThanOrEqual(1 / Math.sqrt(1.1) - 1e-9);
            expect(got! / want).toBeLessThanOrEqual(Math.sqrt(1.1) + 1e-9);
          };
          close(figures?.p50Ms, percentile(sorted, 0.5));
          close(figures?.p99Ms, percentile(sorted, 0.99));
          expect(figures?.requests).toBe(latencies.length);
        },
      ),
      { numRuns: 100 },
    );
  });

  it('counts requests and errors per version and role, and shadow runs beside them', () => {
    const counters = new VersionCounters(() => T0 + 3_000);
    const add = (version: number, role: 'live' | 'canary', status: number) =>
      counters.record({ version, role, status, latencyMs: 1 });
    for (let i = 0; i < 9; i++) add(1, 'live', 200);
    add(1, 'live', 400);
    add(2, 'canary', 200);
    add(2, 'canary', 503);
    counters.record({
      version: 1,
      role: 'live',
      status: 200,
      latencyMs: 1,
      shadow: {
        kind: 'compared',
        version: 3,
        ms: 2,
        maxAbsDiff: 0.5,
        topClassRows: 4,
        topClassDisagreements: 1,
      },
    });
    counters.record({
      version: 1,
      role: 'live',
      status: 200,
      latencyMs: 1,
      shadow: {
        kind: 'compared',
        version: 3,
        ms: 2,
        maxAbsDiff: 0.1,
        topClassRows: 4,
        topClassDisagreements: 0,
      },
    });
    counters.record({
      version: 1,
      role: 'live',
      status: 200,
      latencyMs: 1,
      shadow: { kind: 'failed', version: 3, ms: 1 },
    });
    counters.record({
      version: 1,
      role: 'live',
      status: 200,
      latencyMs: 1,
      shadow: { kind: 'slow', version: 3 },
    });
    const figures = counters.figures(new Date(T0), new Date(T0 + BUCKET_MS));
    expect(figures.map((f) => [f.role, f.version, f.requests, f.clientErrors, f.serverErrors])).toEqual([
      ['live', 1, 14, 1, 0],
      ['canary', 2, 2, 0, 1],
      ['shadow', 3, 3, 0, 1],
    ]);
    expect(figures[2]?.shadow).toEqual({
      compared: 2,
      slow: 1,
      maxAbsDiff: 0.5,
      meanMaxAbsDiff: 0.3,
      topClassRows: 8,
      topClassDisagreements: 1,
    });
    expect(figures[0]?.shadow).toBeUndefined();
  });

  it('answers a window with the buckets that overlap it, and forgets after two hours', () => {
    let now = T0;
    const counters = new VersionCounters(() => now);
    const at = (ms: number) => {
      now = T0 + ms;
      counters.record({ version: 1, role: 'live', status: 200, latencyMs: 1 });
    };
    at(1_000);
    at(12_000);
    at(25_000);
    const count = (from: number, to: number) =>
      counters.figures(new Date(T0 + from), new Date(T0 + to))[0]?.requests ?? 0;
    expect(count(0, 30_000)).toBe(3);
    expect(count(10_000, 20_000)).toBe(1);
    expect(count(15_000, 19_000)).toBe(1); // the bucket [10 s, 20 s) overlaps it
    expect(count(15_000, 21_000)).toBe(2);
    expect(count(30_000, 40_000)).toBe(0);
    at(KEEP_MS + 11_000);
    expect(count(0, 30_000)).toBe(2); // the first bucket is gone
    expect(count(0, KEEP_MS + 20_000)).toBe(3);
  });
});
