/**
 * Alias moves under store faults: whatever request fails (before or after S3 applied it), however
 * concurrent movers interleave, and whether or not the store enforces conditional writes, the
 * history is one chain ending at the pointer, every move in it was written to the pointer, no
 * version number is given twice, and no object is ever deleted.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RegistryUnavailableError } from '../../functions/shared/errors.js';
import { keys } from '../../functions/shared/registry/layout.js';
import { ModelRegistry } from '../../functions/shared/registry/registry.js';
import type { PutOptions } from '../../functions/shared/registry/store.js';
import type { AliasPointer } from '../../functions/shared/registry/types.js';
import { MemoryObjectStore } from '../support/memory-store.js';
import { PUBLISH_INPUT, versionFiles } from '../support/versions.js';

/** Fails the requests the schedule says: before applying them, or after (the answer is lost). */
class FaultyStore extends MemoryObjectStore {
  n = 0;
  constructor(
    private readonly faults: ReadonlyMap<number, 'before' | 'after'>,
    private readonly enforce: boolean,
  ) {
    super();
  }
  readonly pointerIds = new Set<string>();
  faultsOn = false;
  private fault(): 'before' | 'after' | undefined {
    return this.faultsOn ? this.faults.get(this.n++) : undefined;
  }
  override async put(key: string, body: Uint8Array | string, options: PutOptions = {}) {
    const fault = this.fault();
    if (fault === 'before') throw new RegistryUnavailableError(`lost ${key}`);
    const out = await super.put(key, body, this.enforce ? options : {});
    if (key.endsWith('/aliases/live.json'))
      this.pointerIds.add((JSON.parse(String(body)) as AliasPointer).eventId);
    if (fault === 'after') throw new RegistryUnavailableError(`lost the answer for ${key}`);
    return out;
  }
  override async get(key: string) {
    const fault = this.fault();
    if (fault === 'before') throw new RegistryUnavailableError(`lost ${key}`);
    const out = await super.get(key);
    if (fault === 'after') throw new RegistryUnavailableError(`lost the answer for ${key}`);
    return out;
  }
  override async list(prefix: string) {
    const fault = this.fault();
    if (fault) throw new RegistryUnavailableError(`lost ${prefix}`);
    return super.list(prefix);
  }
}

const files = (tag: string) => versionFiles(tag, null);
const input = PUBLISH_INPUT;

describe('alias moves under faults (property)', () => {
  it('keep history and pointer in agreement, and show only moves that happened', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uniqueArray(fc.tuple(fc.nat(400), fc.constantFrom<'before' | 'after'>('before', 'after')), {
          maxLength: 25,
          selector: ([n]) => n,
        }),
        fc.array(fc.array(fc.integer({ min: 0, max: 4 }), { minLength: 1, maxLength: 4 }), {
          minLength: 1,
          maxLength: 3,
        }),
        fc.boolean(),
        async (faults, movers, enforce) => {
          const store = new FaultyStore(new Map(faults), enforce);
          const registry = new ModelRegistry(store, {
            settleMs: 5,
            retry: { minDelayMs: 1, maxDelayMs: 5, attempts: 200 },
          });
          for (let i = 0; i < 4; i++) await registry.publish('m', files(`v${i}`), input);
          await registry.setAlias('m', 'live', 1);
          store.faultsOn = true;
          const publishes = Promise.allSettled([registry.publish('m', files('x'), input)]);
          await Promise.all(
            movers.map(async (plan) => {
              for (const step of plan) {
                try {
                  if (step === 0) await registry.rollback('m');
                  else await registry.setAlias('m', 'live', step);
                } catch {}
              }
            }),
          );
          await publishes;
          store.faultsOn = false;
          await registry.setAlias('m', 'live', 2);

          const history = await registry.history('m');
          const pointer = await registry.getAlias('m');
          for (const [i, e] of history.entries()) {
            expect(e.from).toBe(i === 0 ? null : history[i - 1]!.to);
            expect(e.prev ?? null).toBe(i === 0 ? null : history[i - 1]!.id);
            expect(store.pointerIds.has(e.id)).toBe(true);
          }
          expect(pointer?.eventId).toBe(history.at(-1)?.id);
          expect(await registry.unfinishedMoves('m')).toEqual([]);
          const versions = await registry.listVersions('m');
          expect(new Set(versions).size).toBe(versions.length);
          expect(store.calls.delete).toBe(0);
          expect(store.keys(keys.history('m', 'live')).length).toBeGreaterThan(0);
        },
      ),
      { numRuns: 40 },
    );
  });
});
