import { describe, expect, it } from 'vitest';
import { collectGarbage, DEFAULT_GC_AGE_MS, MIN_GC_AGE_MS } from '../../functions/shared/registry/gc.js';
import { keys } from '../../functions/shared/registry/layout.js';
import { ModelRegistry } from '../../functions/shared/registry/registry.js';
import type { PutOptions } from '../../functions/shared/registry/store.js';
import { MemoryObjectStore } from '../support/memory-store.js';
import { PUBLISH_INPUT, versionFiles } from '../support/versions.js';

const HOUR = 3_600_000;

/** A memory store on a test clock: objects are listed with the time they were written. */
class ClockedStore extends MemoryObjectStore {
  now = Date.parse('2026-01-01T00:00:00Z');
  readonly written = new Map<string, Date>();
  override async put(key: string, body: Uint8Array | string, options: PutOptions = {}) {
    const out = await super.put(key, body, options);
    this.written.set(key, new Date(this.now));
    return out;
  }
  override async list(prefix: string) {
    return (await super.list(prefix)).map((o) => ({ ...o, lastModified: this.written.get(o.key)! }));
  }
}

const files = (tag: string) => versionFiles(tag, new Uint8Array(100));
const input = PUBLISH_INPUT;

/** A registry holding v1 (committed, promoted), v2 (killed after its shard) and v3 (committed). */
async function withLeftovers() {
  const store = new ClockedStore();
  const registry = new ModelRegistry(store);
  await registry.publish('m', files('a'), input);
  await registry.setAlias('m', 'live', 1);
  // A publish killed half way: its number claim, one shard, a report; no metadata.json.
  await store.put(`${keys.claims('m', 2)}dead.json`, '{}', { ifNoneMatch: '*' });
  await store.put(keys.file('m', 2, 'group1-shard1of1.bin'), new Uint8Array(5000), { ifNoneMatch: '*' });
  await store.put(`${keys.reports('m', 2)}curve.svg`, '<svg/>', { ifNoneMatch: '*' });
  await registry.publish('m', files('c'), input);
  await store.put(`${keys.dataset('m')}data.csv`, 'a,b\n1,2\n');
  return { store, registry };
}

describe('aiaas gc', () => {
  it('lists, in a dry run, only uncommitted versions and finished claims older than the safe age', async () => {
    const { store, registry } = await withLeftovers();
    const before = store.keys();
    const now = () => store.now + DEFAULT_GC_AGE_MS;
    const result = await collectGarbage(registry, { now });
    expect(result.applied).toBe(false);
    expect(store.keys()).toEqual(before);
    const uncommitted = result.items.filter((i) => i.kind === 'uncommitted');
    expect(uncommitted.map((i) => i.version)).toEqual([2]);
    expect(uncommitted[0]!.objects.map((o) => o.key).sort()).toEqual(
      [
        `${keys.claims('m', 2)}dead.json`,
        keys.file('m', 2, 'group1-shard1of1.bin'),
        `${keys.reports('m', 2)}curve.svg`,
      ].sort(),
    );
    expect(uncommitted[0]!.bytes).toBe(5000 + 2 + 6);
    expect(result.items.filter((i) => i.kind === 'claims').map((i) => i.version)).toEqual([1, 3]);
    // Younger than the safe age: nothing.
    expect((await collectGarbage(registry, { now: () => store.now + DEFAULT_GC_AGE_MS - 1 })).items).toEqual(
      [],
    );
  });

  it('removes them with apply, leaving every committed version, alias, history entry and dataset intact', async () => {
    const { store, registry } = await withLeftovers();
    const keep = store
      .keys()
      .filter(
        (k) =>
          !k.startsWith(keys.claimsRoot('m')) && !k.includes('/versions/2/') && !k.includes('/reports/2/'),
      );
    const result = await collectGarbage(registry, { apply: true, now: () => store.now + DEFAULT_GC_AGE_MS });
    expect(result.applied).toBe(true);
    expect(store.keys()).toEqual(keep);
    expect(await registry.listVersions('m')).toEqual([1, 3]);
    await registry.readVersion('m', 1);
    await registry.readVersion('m', 3);
    expect((await registry.history('m')).map((e) => e.to)).toEqual([1]);
    // The numbers go on above the committed ones.
    expect((await registry.publish('m', files('d'), input)).version).toBe(4);
  });

  it(`never touches anything younger than ${MIN_GC_AGE_MS / HOUR} h, whatever it is asked`, async () => {
    const { store, registry } = await withLeftovers();
    const before = store.keys();
    for (const olderThanMs of [0, 1, MIN_GC_AGE_MS - 1]) {
      const result = await collectGarbage(registry, {
        apply: true,
        olderThanMs,
        now: () => store.now + MIN_GC_AGE_MS - 1,
      });
      expect(result.olderThanMs).toBe(MIN_GC_AGE_MS);
      expect(result.items).toEqual([]);
    }
    expect(store.keys()).toEqual(before);
    // A publish in flight: its newest object is what counts, not its claim's age.
    store.now += 2 * HOUR;
    await store.put(keys.file('m', 2, 'group1-shard2of2.bin'), new Uint8Array(1), { ifNoneMatch: '*' });
    const result = await collectGarbage(registry, { olderThanMs: HOUR, now: () => store.now + HOUR - 1 });
    expect(result.items.filter((i) => i.kind === 'uncommitted')).toEqual([]);
  });

  it('leaves objects whose age the store does not list, and other models when asked for one', async () => {
    const plain = new MemoryObjectStore();
    const registry = new ModelRegistry(plain);
    await plain.put(keys.file('m', 1, 'model.json'), '{}');
    expect(
      (await collectGarbage(registry, { apply: true, now: () => Date.now() + 100 * DEFAULT_GC_AGE_MS }))
        .items,
    ).toEqual([]);
    expect(plain.keys()).toHaveLength(1);

    const { store, registry: clocked } = await withLeftovers();
    await store.put(keys.file('other', 7, 'model.json'), '{}');
    const result = await collectGarbage(clocked, {
      model: 'other',
      now: () => store.now + DEFAULT_GC_AGE_MS,
    });
    expect(result.items.map((i) => `${i.model} v${i.version}`)).toEqual(['other v7']);
  });
});
