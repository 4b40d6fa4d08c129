import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { median, medianInterval, pairedRatios } from '../../scripts/bench/stats.js';

describe('bench statistics', () => {
  it('takes the median of odd and even counts, and refuses none', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(() => median([])).toThrow(RangeError);
  });

  it('pairs samples taken back to back, and refuses unpaired ones', () => {
    expect(pairedRatios([2, 9], [4, 3])).toEqual([0.5, 3]);
    expect(() => pairedRatios([1, 2], [1])).toThrow(/unpaired/);
  });

  it('gives the order statistics the binomial distribution gives for a 95 % interval', () => {
    const xs = Array.from({ length: 15 }, (_, i) => 15 - i); // 15..1, unsorted on purpose
    // n = 15: x(4) and x(12), coverage 1 - 2·P(X ≤ 3) = 0.9648.
    const i15 = medianInterval(xs);
    expect([i15.low, i15.high]).toEqual([4, 12]);
    expect(i15.confidence).toBeCloseTo(0.9648, 4);
    // n = 31: x(10) and x(22), coverage 0.9706.
    const i31 = medianInterval(Array.from({ length: 31 }, (_, i) => i + 1));
    expect([i31.low, i31.high]).toEqual([10, 22]);
    expect(i31.confidence).toBeCloseTo(0.9706, 4);
  });

  it('says so when there are too few samples for the level asked', () => {
    const i5 = medianInterval([5, 1, 4, 2, 3]);
    expect([i5.low, i5.high]).toEqual([1, 5]);
    expect(i5.confidence).toBeCloseTo(0.9375, 4);
    expect(medianInterval([7])).toEqual({ low: 7, high: 7, confidence: 0 });
  });

  it('always brackets the sample median, for any samples', () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: 0.01, max: 100, noNaN: true }), { minLength: 1, maxLength: 60 }),
        (xs) => {
          const { low, high, confidence } = medianInterval(xs);
          const m = median(xs);
          expect(low).toBeLessThanOrEqual(m);
          expect(high).toBeGreaterThanOrEqual(m);
          expect(confidence).toBeGreaterThanOrEqual(0);
          expect(confidence).toBeLessThanOrEqual(1);
        },
      ),
    );
  });

  it('covers the true median at least as often as it claims, on skewed samples', () => {
    // Exponential samples (skewed, like a VM's stalls), median ln 2; a seeded generator keeps the
    // test deterministic.
    let seed = 42;
    const uniform = () => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return (seed + 0.5) / 2 ** 31;
    };
    const trials = 4_000;
    let covered = 0;
    for (let t = 0; t < trials; t++) {
      const xs = Array.from({ length: 15 }, () => -Math.log(uniform()));
      const { low, high } = medianInterval(xs);
      if (low <= Math.LN2 && Math.LN2 <= high) covered++;
    }
    // Claimed 0.9648; four standard errors below it (σ ≈ 0.003) would be a broken interval.
    expect(covered / trials).toBeGreaterThan(0.95);
  });
});
