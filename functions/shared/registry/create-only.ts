/**
 * Create-only writes that survive a lost answer. Every registry write but an alias pointer's is
 * create-only (`If-None-Match: *`, which IAM requires of the retraining role); when S3 applies a PUT
 * and its answer is lost, the SDK's retry is refused because the first attempt's object is there.
 * Kept apart from store.ts, which imports the AWS SDK: the function's bundle must not.
 */
import { ConflictError } from '../errors.js';
import type { ObjectStore, PutOptions } from './store.js';

/**
 * Writes an object that must not exist yet (`If-None-Match: *`). A refusal because the key already
 * holds exactly these bytes is a success: the SDK retries a PUT whose answer was lost, and the
 * retry finds the first attempt's object. Any other refusal stays a ConflictError.
 */
export async function putNew(
  store: ObjectStore,
  key: string,
  body: Uint8Array | string,
  options: Omit<PutOptions, 'ifNoneMatch' | 'ifMatch'> = {},
): Promise<void> {
  try {
    await store.put(key, body, { ...options, ifNoneMatch: '*' });
  } catch (error) {
    if (!(error instanceof ConflictError)) throw error;
    const existing = await store.get(key);
    const ours = typeof body === 'string' ? new TextEncoder().encode(body) : body;
    if (!existing || !sameBytes(existing.body, ours)) throw error;
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.byteLength === b.byteLength && Buffer.compare(a, b) === 0;
}
