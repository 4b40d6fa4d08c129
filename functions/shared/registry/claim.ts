import { setTimeout as sleep } from 'node:timers/promises';
import { randomId } from '../digest.js';
import { ConflictError } from '../errors.js';
import type { ObjectStore } from './store.js';

/**
 * Claims a numbered slot (a version number, an alias-history sequence number) so that at most one
 * writer ever wins it, without relying on the server to enforce conditional writes.
 *
 * Each contender writes an object under the slot's prefix with a key no one else uses, then lists
 * the prefix. It wins only if its own object is the only one there; otherwise it removes its object
 * and loses. With a strongly consistent store (S3 and s3rver both are), two contenders cannot both
 * win: if A saw only itself, B had not yet written when A listed, so B lists after A's write and
 * sees both. Both may lose; callers retry after a random backoff. The create-only condition
 * (`If-None-Match: *`) is sent as well, for stores that enforce it.
 */
export async function claimSlot(
  store: ObjectStore,
  slotPrefix: string,
  body: string,
  id: string = randomId(),
): Promise<{ won: boolean; key: string }> {
  const key = `${slotPrefix}${id}.json`;
  try {
    await store.put(key, body, { contentType: 'application/json', ifNoneMatch: '*' });
  } catch (error) {
    if (error instanceof ConflictError) return { won: false, key };
    throw error;
  }
  const present = await store.list(slotPrefix);
  if (present.length === 1 && present[0]?.key === key) return { won: true, key };
  // A loser's entry left behind would hold the slot contended until it goes stale: insist a little.
  for (let attempt = 0; ; attempt++) {
    try {
      await store.delete(key);
      break;
    } catch (error) {
      if (attempt >= 3) throw error;
      await sleep(50 * (attempt + 1));
    }
  }
  return { won: false, key };
}

export interface RetryOptions {
  readonly attempts?: number;
  readonly minDelayMs?: number;
  readonly maxDelayMs?: number;
}

/** Runs `attempt` until it returns a value, with jittered backoff between tries. */
export async function withClaimRetries<T>(
  what: string,
  attempt: () => Promise<T | undefined>,
  { attempts = 40, minDelayMs = 5, maxDelayMs = 250 }: RetryOptions = {},
): Promise<T> {
  for (let i = 0; i < attempts; i++) {
    const result = await attempt();
    if (result !== undefined) return result;
    const ceiling = Math.min(maxDelayMs, minDelayMs * 2 ** i);
    await sleep(minDelayMs + Math.random() * ceiling);
  }
  throw new ConflictError(`Gave up on ${what} after ${attempts} contended attempts; try again`);
}
