/**
 * Canary routing (functions/inference/routing.ts): a routing key's bucket is a fixed function of
 * the key alone (pinned values, and the same as FNV-1a over the key's UTF-8 bytes computed here
 * independently), so keys are sticky and a key in the canary stays in it as the weight grows;
 * un-keyed requests follow the weight. (A route that is not well formed is dropped by the
 * registry's pointer read: rollout-registry.test.ts.)
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { choosesCanary, ROUTE_BUCKETS, routeBucket, sampled } from '../../functions/inference/routing.js';
import { seeded } from '../support/seeded.js';

/** FNV-1a over the UTF-8 bytes (Buffer's encoder), then MurmurHash3's finalizer: the documented hash. */
function reference(key: string): number {
  let h = 0x811c9dc5;
  for (const byte of Buffer.from(key, 'utf8')) h = Math.imul(h ^ byte, 0x01000193);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return (h >>> 0) % ROUTE_BUCKETS;
}

const never = () => {
  throw new Error('a keyed request must not draw');
};

describe('routeBucket', () => {
  it('is pinned: the same key lands in the same bucket on every instance and release', () => {
    expect(
      ['', 'a', 'user-1', 'user-2', 'customer:42', 'é', '日本', '😀x'].map((key) => routeBucket(key)),
    ).toEqual([8923, 1715, 5916, 1105, 2297, 9943, 1135, 238]);
  });

  it('is FNV-1a over the UTF-8 bytes with a finalizer, for any string (lone surrogates as U+FFFD)', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 40 }), (key) => {
        const bucket = routeBucket(key);
        expect(bucket).toBe(reference(key));
        expect(Number.isInteger(bucket) && bucket >= 0 && bucket < ROUTE_BUCKETS).toBe(true);
      }),
    );
  });
});

describe('choosesCanary', () => {
  it('sends a key to the same version every time, without a random draw', () => {
    fc.assert(
      fc.property(
        fc.string({ minLength: 1 }),
        fc.double({ min: 0, max: 100, noNaN: true }),
        (key, weight) => {
          const first = choosesCanary(weight, key, never);
          for (let i = 0; i < 3; i++) expect(choosesCanary(weight, key, never)).toBe(first);
        },
      ),
    );
  });

  it('keeps a key in the canary as the weight grows (monotone)', () => {
    fc.assert(
      fc.property(
        fc.string({ minLength: 1 }),
        fc.double({ min: 0, max: 100, noNaN: true }),
        fc.double({ min: 0, max: 100, noNaN: true }),
        (key, a, b) => {
          const [low, high] = a <= b ? [a, b] : [b, a];
          if (choosesCanary(low, key, never)) expect(choosesCanary(high, key, never)).toBe(true);
        },
      ),
    );
  });

  it('routes about the weight of 2,000 un-keyed requests to the canary (seeded draws)', () => {
    for (const seed of [1, 2, 3]) {
      const random = seeded(seed);
      let canary = 0;
      for (let i = 0; i < 2_000; i++) if (choosesCanary(10, undefined, random)) canary++;
      expect(canary).toBeGreaterThanOrEqual(140);
      expect(canary).toBeLessThanOrEqual(260);
    }
  });

  it('routes about the weight of 2,000 distinct keys to the canary', () => {
    let canary = 0;
    for (let i = 0; i < 2_000; i++) if (choosesCanary(10, `user-${i}`, never)) canary++;
    expect(canary).toBeGreaterThanOrEqual(140);
    expect(canary).toBeLessThanOrEqual(260);
  });

  it('treats 0 and 100 as none and all, and an empty key as no key', () => {
    expect(choosesCanary(0, undefined, () => 0)).toBe(false);
    expect(choosesCanary(0, 'k', never)).toBe(false);
    expect(choosesCanary(100, undefined, () => 0.999999)).toBe(true);
    expect(choosesCanary(100, 'k', never)).toBe(true);
    expect(choosesCanary(10, '', () => 0.05)).toBe(true);
    expect(choosesCanary(10, '', () => 0.15)).toBe(false);
  });

  it('samples a shadow by its rate', () => {
    const random = seeded(7);
    let n = 0;
    for (let i = 0; i < 2_000; i++) if (sampled(10, random)) n++;
    expect(n).toBeGreaterThanOrEqual(140);
    expect(n).toBeLessThanOrEqual(260);
    expect(sampled(0, () => 0)).toBe(false);
    expect(sampled(100, () => 0.999)).toBe(true);
  });
});
