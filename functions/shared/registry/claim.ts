import { setTimeout as sleep } from 'node:timers/promises';
import { randomId } from '../digest.js';
import { ConflictError } from '../errors.js';
import type { ListedObject, ObjectStore } from './store.js';

/**
 * Claims a numbered slot (a version number, an alias-history sequence number) so that at most one
 * writer ever wins it, without relying on the server to enforce conditional writes, and without
 * ever deleting anything (the writer needs no delete permission; a slot's story stays readable).
 *
 * Each contender writes a claim `<slot>/<id>.json` under a key no one else uses, then lists the
 * slot. It wins only if every other claim there is marked lost (`<slot>/<id>.lost`); otherwise it
 * marks its own claim lost and loses. A winner never marks its claim, so of two contenders that
 * both claimed, the one that listed second saw the other's claim unmarked: two cannot both win
 * (S3 and s3rver are strongly consistent). Both may lose; callers retry with a fresh id, and a
 * slot whose claims are all marked lost is free again. A contender that dies between writing its
 * claim and marking it leaves the claim unmarked: the slot then stays undecided until the caller's
 * protocol settles it (see the registry). The create-only condition (`If-None-Match: *`) is sent
 * on every write, for stores that enforce it and for IAM policies that require it.
 */
export async function claimSlot(
  store: ObjectStore,
  slotPrefix: string,
  body: string,
  id: string = randomId(),
): Promise<{ won: boolean; key: string }> {
  const key = claimKey(slotPrefix, id);
  let present: ListedObject[];
  try {
    await store.put(key, body, { contentType: 'application/json', ifNoneMatch: '*' });
    present = await store.list(slotPrefix);
  } catch (error) {
    // The claim may have landed although its answer was lost (or a retried PUT found the first
    // one there): marked lost, it never holds the slot undecided.
    await markLost(store, slotPrefix, id);
    if (error instanceof ConflictError) return { won: false, key };
    throw error;
  }
  const others = slotClaims(present, slotPrefix).filter((claim) => claim.id !== id);
  if (others.every((claim) => claim.lost)) return { won: true, key };
  await markLost(store, slotPrefix, id);
  return { won: false, key };
}

/** The key of a claim in a slot. */
function claimKey(slotPrefix: string, id: string): string {
  return `${slotPrefix}${id}.json`;
}

export interface SlotClaim {
  readonly id: string;
  readonly key: string;
  /** Its contender saw it lose and said so. */
  readonly lost: boolean;
  readonly lastModified?: Date;
}

/** The claims in one slot's listing (objects directly under `slotPrefix`), markers applied. */
export function slotClaims(objects: readonly ListedObject[], slotPrefix: string): SlotClaim[] {
  const lost = new Set<string>();
  const claims: Omit<SlotClaim, 'lost'>[] = [];
  for (const object of objects) {
    if (!object.key.startsWith(slotPrefix)) continue;
    const match = /^([^/]+)\.(json|lost)$/.exec(object.key.slice(slotPrefix.length));
    if (!match?.[1]) continue;
    if (match[2] === 'lost') lost.add(match[1]);
    else
      claims.push({
        id: match[1],
        key: object.key,
        lastModified: object.lastModified,
      });
  }
  return claims.map((claim) => ({ ...claim, lost: lost.has(claim.id) }));
}

/** Best effort: a claim left unmarked only costs the others a short wait (or a skipped number). */
async function markLost(store: ObjectStore, slotPrefix: string, id: string): Promise<void> {
  for (let attempt = 0; attempt < 4; attempt++) {
    try {
      await store.put(`${slotPrefix}${id}.lost`, 'lost', { contentType: 'text/plain', ifNoneMatch: '*' });
      return;
    } catch (error) {
      if (error instanceof ConflictError) return; // already marked (a retried PUT whose answer was lost)
      await sleep(50 * (attempt + 1));
    }
  }
}

/** Who writes claims: the store, the name recorded with what it writes, and how long it retries. */
export interface Claimant {
  readonly store: ObjectStore;
  readonly actor: string;
  readonly retry?: RetryOptions;
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
