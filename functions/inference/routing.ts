/**
 * Which version answers a request when the alias carries a canary (and which requests a shadow
 * runs on). Pure.
 *
 * - A predict request with a routing key (header `x-aiaas-route-key`) goes to the canary when its
 *   key's bucket, `routeBucket(key)` (0-9999, a hash of the key alone), is below `weight × 100`.
 *   The bucket depends on nothing but the key, so the same key gets the same version on every
 *   instance, and a key in the canary stays in it as the weight grows.
 * - Without a key, the choice is a random draw (`random() × 100 < weight`).
 * - A shadow runs on a request when a random draw falls under its sample rate.
 * The routes themselves come checked from the registry's pointer read (registry/aliases.ts drops
 * one that is not well formed or names the live version).
 */

/** The header naming a routing key; function URLs pass header names lower-cased. */
export const ROUTE_KEY_HEADER = 'x-aiaas-route-key';

/** Buckets a key falls into: weights resolve to 0.01 %. */
export const ROUTE_BUCKETS = 10_000;

/**
 * The key's bucket, 0 to ROUTE_BUCKETS - 1: FNV-1a (32-bit) over the key's UTF-8 bytes, then
 * MurmurHash3's finalizer so keys that differ in one character spread over all buckets. Stable
 * across processes, machines and versions of aiaas (callers may rely on it).
 */
export function routeBucket(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    let c = key.charCodeAt(i);
    if (c < 0x80) {
      h = Math.imul(h ^ c, 0x01000193);
      continue;
    }
    // UTF-8 bytes of the code point, without allocating (a lone surrogate as U+FFFD, as encoders do).
    if (c >= 0xd800 && c <= 0xdfff) {
      const low = c <= 0xdbff && i + 1 < key.length ? key.charCodeAt(i + 1) : 0;
      if (low >= 0xdc00 && low <= 0xdfff) {
        c = 0x10000 + ((c - 0xd800) << 10) + (low - 0xdc00);
        i++;
      } else {
        c = 0xfffd;
      }
    }
    if (c < 0x800) {
      h = Math.imul(h ^ (0xc0 | (c >> 6)), 0x01000193);
    } else if (c < 0x10000) {
      h = Math.imul(h ^ (0xe0 | (c >> 12)), 0x01000193);
      h = Math.imul(h ^ (0x80 | ((c >> 6) & 0x3f)), 0x01000193);
    } else {
      h = Math.imul(h ^ (0xf0 | (c >> 18)), 0x01000193);
      h = Math.imul(h ^ (0x80 | ((c >> 12) & 0x3f)), 0x01000193);
      h = Math.imul(h ^ (0x80 | ((c >> 6) & 0x3f)), 0x01000193);
    }
    h = Math.imul(h ^ (0x80 | (c & 0x3f)), 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return (h >>> 0) % ROUTE_BUCKETS;
}

/**
 * Whether a predict request goes to a canary of `weight` percent: by its routing key when it has
 * one (a non-empty header), else by a draw of `random` (uniform in [0, 1)).
 */
export function choosesCanary(weight: number, key: string | undefined, random: () => number): boolean {
  if (!(weight > 0)) return false;
  if (weight >= 100) return true;
  if (key !== undefined && key !== '') return routeBucket(key) < weight * 100;
  return random() * 100 < weight;
}

/** Whether a request is in a shadow's sample of `sample` percent (a draw of `random`). */
export function sampled(sample: number, random: () => number): boolean {
  if (!(sample > 0)) return false;
  return sample >= 100 || random() * 100 < sample;
}
