import { describe, expect, it } from 'vitest';
import {
  ConflictError,
  IntegrityError,
  InvalidNameError,
  NotFoundError,
  RegistryUnavailableError,
} from '../../functions/shared/errors.js';
import { INLINE_LIMIT_BYTES } from '../../functions/shared/registry/inline.js';
import { keys } from '../../functions/shared/registry/layout.js';
import { ModelRegistry } from '../../functions/shared/registry/registry.js';
import type { PutOptions } from '../../functions/shared/registry/store.js';
import { MemoryObjectStore } from '../support/memory-store.js';
import { PUBLISH_INPUT, versionFiles } from '../support/versions.js';

/** Like s3rver: ignores If-None-Match / If-Match, so only the claim protocol keeps writers apart. */
class LaxStore extends MemoryObjectStore {
  override put(key: string, body: Uint8Array | string, _options: PutOptions = {}) {
    return super.put(key, body, {});
  }
}

const files = (tag: string) => versionFiles(tag);
const input = PUBLISH_INPUT;

for (const [label, Store] of [
  ['a store that enforces conditional writes', MemoryObjectStore],
  ['a store that ignores them (like s3rver)', LaxStore],
] as const) {
  describe(`registry on ${label}`, () => {
    it('numbers versions 1, 2, 3 and never overwrites one, even when 12 publishers race', async () => {
      const registry = new ModelRegistry(new Store(), {
        retry: { minDelayMs: 1, maxDelayMs: 20, attempts: 200 },
      });
      const published = await Promise.all(
        Array.from({ length: 12 }, (_, i) => registry.publish('m', files(`p${i}`), input)),
      );
      const numbers = published.map((m) => m.version).sort((a, b) => a - b);
      expect(new Set(numbers).size).toBe(12);
      // Each version still holds exactly what its publisher wrote.
      for (const meta of published) {
        const { files: stored } = await registry.readVersion('m', meta.version);
        expect(new TextDecoder().decode(stored.get('model.json'))).toContain(`"tag"`);
        expect(meta.files['model.json']?.sha256).toBeDefined();
      }
      expect(await registry.listVersions('m')).toEqual(numbers);
    });

    it('keeps every concurrent promotion in the history, in one order, with the pointer at the last', async () => {
      const registry = new ModelRegistry(new Store(), {
        retry: { minDelayMs: 1, maxDelayMs: 20, attempts: 200 },
      });
      for (let i = 0; i < 4; i++) await registry.publish('m', files(`v${i}`), input);
      await Promise.all([1, 2, 3, 4].map((v) => registry.setAlias('m', 'live', v, { who: `user${v}` })));
      const history = await registry.history('m', 'live');
      expect(history.map((e) => e.seq)).toEqual([1, 2, 3, 4]);
      expect(new Set(history.map((e) => e.to))).toEqual(new Set([1, 2, 3, 4]));
      // Each move records where it came from: the chain is unbroken.
      for (const [i, e] of history.entries()) {
        expect(e.from).toBe(i === 0 ? null : history[i - 1]!.to);
      }
      const pointer = await registry.getAlias('m', 'live');
      expect(pointer?.version).toBe(history.at(-1)!.to);
      // The pointer carries the copy of its own version, whichever writer's turn was last.
      expect(pointer?.inline?.metadata.version).toBe(pointer?.version);
      const read = await registry.readVersion('m', pointer!.version, { inline: pointer!.inline! });
      expect(new TextDecoder().decode(read.files.get('model.json'))).toContain(`v${pointer!.version - 1}`);
    });
  });
}

/**
 * Like S3 behind the SDK when an answer is lost: a create-only PUT lands, its answer never comes
 * back, and the SDK's retry is refused (412) because the first attempt's object is there.
 */
class LostAnswerStore extends MemoryObjectStore {
  override async put(key: string, body: Uint8Array | string, options: PutOptions = {}) {
    const out = await super.put(key, body, options);
    if (options.ifNoneMatch === '*' && /\/(versions|reports)\//.test(key)) {
      return super.put(key, body, options); // the retry: ConflictError
    }
    return out;
  }
}

describe('a create-only write whose answer was lost', () => {
  it('is a success when the key holds our bytes: the publish commits and says so, once', async () => {
    const store = new LostAnswerStore();
    const registry = new ModelRegistry(store);
    const meta = await registry.publish('m', files('a'), input, {
      beforeCommit: async (version) => {
        await registry.putReport('m', version, 'report.svg', '<svg/>', 'image/svg+xml');
        return {};
      },
    });
    expect(meta.version).toBe(1);
    expect(await registry.listVersions('m')).toEqual([1]);
    expect((await registry.readVersion('m', 1)).files.get('group1-shard1of1.bin')).toEqual(
      new Uint8Array([1, 2, 3]),
    );
  });

  it('is still a conflict when the key holds other bytes', async () => {
    const store = new MemoryObjectStore();
    const registry = new ModelRegistry(store);
    await registry.putReport('m', 1, 'report.svg', '<svg/>', 'image/svg+xml');
    await expect(
      registry.putReport('m', 1, 'report.svg', '<svg>other</svg>', 'image/svg+xml'),
    ).rejects.toThrow(ConflictError);
  });
});

describe('registry', () => {
  it('records who, when, why; rolls back step by step; refuses a stale compare-and-swap', async () => {
    const registry = new ModelRegistry(new MemoryObjectStore(), { actor: 'tester' });
    for (let i = 0; i < 3; i++) await registry.publish('m', files(`v${i}`), input);
    await registry.setAlias('m', 'live', 1, { why: 'first' });
    await registry.setAlias('m', 'live', 2, { why: 'better' });
    await registry.setAlias('m', 'live', 3, { why: 'best' });
    const back = await registry.rollback('m', 'live', { why: 'v3 misbehaves' });
    expect([back.from, back.to, back.kind, back.who, back.why]).toEqual([
      3,
      2,
      'rollback',
      'tester',
      'v3 misbehaves',
    ]);
    expect((await registry.rollback('m')).to).toBe(1);
    await expect(registry.rollback('m')).rejects.toThrow(ConflictError);
    await expect(registry.setAlias('m', 'live', 3, { expectedVersion: 2 })).rejects.toThrow(
      /points to 1, not 2/,
    );
    const history = await registry.history('m');
    expect(history.map((e) => `${e.kind}:${e.from}->${e.to}`)).toEqual([
      'promote:null->1',
      'promote:1->2',
      'promote:2->3',
      'rollback:3->2',
      'rollback:2->1',
    ]);
    expect(history.every((e) => !Number.isNaN(Date.parse(e.at)))).toBe(true);
  });

  it('a loser that died before removing its history entry neither blocks the alias nor breaks the chain', async () => {
    const store = new MemoryObjectStore();
    const registry = new ModelRegistry(store);
    for (let i = 0; i < 3; i++) await registry.publish('m', files(`v${i}`), input);
    await registry.setAlias('m', 'live', 1);
    await registry.setAlias('m', 'live', 2);
    const dead = {
      id: 'dead',
      seq: 2,
      model: 'm',
      alias: 'live',
      kind: 'promote',
      from: 1,
      to: 3,
      at: '',
      who: 'x',
      why: '',
    };
    await store.put(`${keys.historySlot('m', 'live', 2)}dead.json`, JSON.stringify(dead));
    const third = await registry.setAlias('m', 'live', 3);
    expect([third.from, third.to]).toEqual([2, 3]);
    expect((await registry.history('m')).map((e) => `${e.from}->${e.to}`)).toEqual([
      'null->1',
      '1->2',
      '2->3',
    ]);
    expect((await registry.rollback('m')).to).toBe(2);
  });

  it('refuses to promote a version that does not exist', async () => {
    const registry = new ModelRegistry(new MemoryObjectStore());
    await expect(registry.setAlias('m', 'live', 7)).rejects.toThrow(NotFoundError);
  });

  it('verifies sha256 of every file on read', async () => {
    const store = new MemoryObjectStore();
    const registry = new ModelRegistry(store);
    const meta = await registry.publish('m', files('a'), input);
    await store.put(keys.file('m', meta.version, 'group1-shard1of1.bin'), new Uint8Array([9, 9, 9]));
    await expect(registry.readVersion('m', meta.version)).rejects.toThrow(IntegrityError);
    await expect(registry.readVersion('m', meta.version)).rejects.toThrow(
      /group1-shard1of1.bin does not match its sha256/,
    );
  });

  it("lists the version's files in its alias pointer, so a reader fetches them alongside metadata.json", async () => {
    const store = new MemoryObjectStore();
    const registry = new ModelRegistry(store);
    const v1 = await registry.publish('m', files('a'), input);
    const v2 = await registry.publish('m', files('b'), input);
    await registry.setAlias('m', 'live', v1.version);
    await registry.setAlias('m', 'live', v2.version);
    const pointer = (await registry.getAlias('m', 'live'))!;
    expect(pointer.version).toBe(v2.version);
    expect(pointer.files).toEqual(v2.files);

    // Every GET starts before the first one finishes: one round trip, not two.
    const started: string[] = [];
    let finished = 0;
    let overlapped = 0;
    const get = store.get.bind(store);
    store.get = async (key) => {
      started.push(key);
      const object = await get(key);
      if (finished++ === 0) overlapped = started.length;
      return object;
    };
    const read = await registry.readVersion('m', v2.version, { files: pointer.files! });
    expect(overlapped).toBe(3); // metadata.json, model.json, the shard
    expect(new TextDecoder().decode(read.files.get('model.json'))).toContain('"b"');
    expect(read.metadata.version).toBe(v2.version);
    // Without the list, metadata.json comes first.
    started.length = 0;
    finished = 0;
    await registry.readVersion('m', v2.version);
    expect(overlapped).toBe(1);
  });

  it("refuses a pointer's file list that disagrees with the version, and ignores one that is malformed", async () => {
    const store = new MemoryObjectStore();
    const registry = new ModelRegistry(store);
    const v1 = await registry.publish('m', files('a'), input);
    const v2 = await registry.publish('m', files('b'), input);
    // Another version's (valid) files under this version's number: each file fails its digest.
    await expect(registry.readVersion('m', v2.version, { files: v1.files })).rejects.toThrow(IntegrityError);
    // A list that verifies file by file but leaves one out is still not the version.
    const partial = { 'model.json': v2.files['model.json']! };
    await expect(registry.readVersion('m', v2.version, { files: partial })).rejects.toThrow(
      /alias pointer's file list does not match the version's metadata/,
    );
    // A pointer written by hand (or by an older aiaas) with a broken list reads as having none.
    await registry.setAlias('m', 'live', v2.version);
    const key = keys.alias('m', 'live');
    const written = JSON.parse(new TextDecoder().decode((await store.get(key))!.body));
    for (const broken of [5, 'x', [1], { 'model.json': { sha256: 1 } }, null]) {
      await store.put(key, JSON.stringify({ ...written, files: broken }));
      const pointer = (await registry.getAlias('m', 'live'))!;
      expect(pointer.version).toBe(v2.version);
      expect(pointer.files ?? undefined).toBeUndefined();
    }
  });

  it('carries a small version whole in its alias pointer, so a reader needs no other GET', async () => {
    const store = new MemoryObjectStore();
    const registry = new ModelRegistry(store);
    const v1 = await registry.publish('m', files('a'), input);
    await registry.setAlias('m', 'live', v1.version);
    const pointer = (await registry.getAlias('m', 'live'))!;
    expect(pointer.inline?.metadata).toEqual(v1);

    const gets: string[] = [];
    const get = store.get.bind(store);
    store.get = (key) => {
      gets.push(key);
      return get(key);
    };
    const seen: string[] = [];
    const read = await registry.readVersion('m', v1.version, {
      files: pointer.files!,
      inline: pointer.inline!,
      onFile: (name) => seen.push(name),
    });
    expect(gets).toEqual([]);
    expect(read.metadata).toEqual(v1);
    expect([...read.files.keys()].sort()).toEqual(['group1-shard1of1.bin', 'model.json']);
    expect(seen.sort()).toEqual(['group1-shard1of1.bin', 'model.json']);
    expect([...read.files.get('group1-shard1of1.bin')!]).toEqual([1, 2, 3]);
    // Each file owns its buffer (tfjs may take a weight buffer as is).
    const shard = read.files.get('group1-shard1of1.bin')!;
    expect(shard.byteOffset === 0 && shard.buffer.byteLength === 3).toBe(true);
  });

  it(`leaves a version over ${INLINE_LIMIT_BYTES} bytes out of its pointer, and one whose files do not verify`, async () => {
    const store = new MemoryObjectStore();
    const registry = new ModelRegistry(store);
    const big = await registry.publish(
      'm',
      [...files('a'), { name: 'group1-shard2of2.bin', bytes: new Uint8Array(INLINE_LIMIT_BYTES) }],
      input,
    );
    await registry.setAlias('m', 'live', big.version);
    const pointer = (await registry.getAlias('m', 'live'))!;
    expect(pointer.inline).toBeUndefined();
    expect(pointer.files).toEqual(big.files);

    // Damaged after publishing, before promotion: the pointer carries nothing, and readers find out.
    const damaged = await registry.publish('m', files('b'), input);
    await store.put(keys.file('m', damaged.version, 'group1-shard1of1.bin'), new Uint8Array([9, 9, 9]));
    await registry.setAlias('m', 'live', damaged.version);
    expect((await registry.getAlias('m', 'live'))!.inline).toBeUndefined();
    await expect(registry.readVersion('m', damaged.version)).rejects.toThrow(IntegrityError);

    // Exactly at the limit is carried.
    const modelJson = new TextEncoder().encode('{}');
    const atLimit = await registry.publish(
      'm',
      [
        { name: 'model.json', bytes: modelJson },
        { name: 'group1-shard1of1.bin', bytes: new Uint8Array(INLINE_LIMIT_BYTES - modelJson.length) },
      ],
      input,
    );
    await registry.setAlias('m', 'live', atLimit.version);
    expect((await registry.getAlias('m', 'live'))!.inline?.metadata.version).toBe(atLimit.version);
  });

  it("serves a version damaged after promotion from its pointer's copy, as verified then", async () => {
    const store = new MemoryObjectStore();
    const registry = new ModelRegistry(store);
    const v1 = await registry.publish('m', files('a'), input);
    await registry.setAlias('m', 'live', v1.version);
    await store.put(keys.file('m', v1.version, 'group1-shard1of1.bin'), new Uint8Array([9, 9, 9]));
    await store.delete(keys.metadata('m', v1.version));
    const pointer = (await registry.getAlias('m', 'live'))!;
    const read = await registry.readVersion('m', v1.version, {
      files: pointer.files!,
      inline: pointer.inline!,
    });
    expect([...read.files.get('group1-shard1of1.bin')!]).toEqual([1, 2, 3]);
    // Without the copy, the damage shows.
    await expect(registry.readVersion('m', v1.version, { files: pointer.files! })).rejects.toThrow();
  });

  it('reads a version from its objects when the inline copy is damaged, and ignores a malformed one', async () => {
    const store = new MemoryObjectStore();
    const registry = new ModelRegistry(store);
    const v1 = await registry.publish('m', files('a'), input);
    await registry.setAlias('m', 'live', v1.version);
    const key = keys.alias('m', 'live');
    const written = JSON.parse(new TextDecoder().decode((await store.get(key))!.body));

    // Bytes that do not match the digests: fetched again from the version's own objects.
    const wrong = { ...written.inline, files: { ...written.inline.files, 'group1-shard1of1.bin': 'CQkJ' } };
    await store.put(key, JSON.stringify({ ...written, inline: wrong }));
    const pointer = (await registry.getAlias('m', 'live'))!;
    expect(pointer.inline).toBeDefined();
    const read = await registry.readVersion('m', v1.version, { inline: pointer.inline! });
    expect([...read.files.get('group1-shard1of1.bin')!]).toEqual([1, 2, 3]);

    // Not the pointer's version, a file missing, not an object, a list of other files: the pointer
    // reads as carrying none, and the version is read from its objects.
    const { 'model.json': _dropped, ...oneFile } = written.inline.files;
    const v2 = await registry.publish('m', files('b'), input);
    const otherFiles = Object.fromEntries(Object.keys(v2.files).map((name) => [name, 'AAAA']));
    for (const broken of [
      5,
      null,
      { ...written.inline, metadata: { ...written.inline.metadata, version: 2 } },
      { ...written.inline, metadata: { ...written.inline.metadata, model: 'n' } },
      { ...written.inline, metadata: { ...written.inline.metadata, schema: 2 } },
      { ...written.inline, metadata: { ...written.inline.metadata, files: { 'model.json': 5 } } },
      { ...written.inline, metadata: { ...written.inline.metadata, files: v2.files }, files: otherFiles },
      { ...written.inline, files: oneFile },
      { ...written.inline, files: { ...written.inline.files, 'model.json': 7 } },
      { metadata: written.inline.metadata },
    ]) {
      await store.put(key, JSON.stringify({ ...written, inline: broken }));
      const parsed = (await registry.getAlias('m', 'live'))!;
      expect(parsed.version).toBe(v1.version);
      expect(parsed.inline, JSON.stringify(broken)).toBeUndefined();
      expect(parsed.files).toEqual(v1.files);
      const fallback = await registry.readVersion('m', v1.version, { files: parsed.files! });
      expect([...fallback.files.get('group1-shard1of1.bin')!]).toEqual([1, 2, 3]);
    }

    // Handed straight to readVersion, a copy of another version is not used either.
    await registry.setAlias('m', 'live', v2.version);
    const v2Copy = (await registry.getAlias('m', 'live'))!.inline!;
    const read2 = await registry.readVersion('m', v1.version, { inline: v2Copy });
    expect(read2.metadata).toEqual(v1);
    expect(new TextDecoder().decode(read2.files.get('model.json'))).toContain('"a"');
  });

  it('refuses metadata.json that names another version or lists its files malformed', async () => {
    const store = new MemoryObjectStore();
    const registry = new ModelRegistry(store);
    const v1 = await registry.publish('m', files('a'), input);
    const key = keys.metadata('m', v1.version);
    for (const broken of [
      { ...v1, version: 2 },
      { ...v1, files: undefined },
      { ...v1, files: { 'model.json': { sha256: 5, size: 1 } } },
      { ...v1, files: { '../x': v1.files['model.json'] } },
    ]) {
      await store.put(key, JSON.stringify(broken));
      await expect(registry.readVersion('m', v1.version), JSON.stringify(broken.files)).rejects.toThrow(
        /does not describe that version/,
      );
    }
  });

  it('hides a version whose publisher died before metadata.json (the commit)', async () => {
    const store = new MemoryObjectStore();
    const registry = new ModelRegistry(store);
    await registry.publish('m', files('a'), input);
    await store.put(keys.file('m', 2, 'model.json'), '{}'); // half a version
    expect(await registry.listVersions('m')).toEqual([1]);
    expect((await registry.publish('m', files('b'), input)).version).toBe(3);
  });

  it('rejects names that could leave the layout', async () => {
    const registry = new ModelRegistry(new MemoryObjectStore());
    for (const bad of ['../x', 'a/b', '', 'A', '-x', 'x'.repeat(64), 'a b']) {
      await expect(registry.listVersions(bad), bad).rejects.toThrow(InvalidNameError);
    }
    await expect(registry.setAlias('m', '../live', 1)).rejects.toThrow(InvalidNameError);
  });
});

/** Like MemoryObjectStore, with each object's time of writing listed (as S3 lists LastModified). */
class DatedStore extends MemoryObjectStore {
  readonly written = new Map<string, Date>();
  /** Keys whose next PUT fails as if the connection dropped (the write does not happen). */
  readonly failNext = new Set<string>();
  readonly puts: { key: string; options: PutOptions }[] = [];
  override async put(key: string, body: Uint8Array | string, options: PutOptions = {}) {
    this.puts.push({ key, options });
    if (this.failNext.delete(key)) throw new RegistryUnavailableError(`lost the answer for ${key}`);
    const out = await super.put(key, body, options);
    this.written.set(key, new Date());
    return out;
  }
  override async list(prefix: string) {
    return (await super.list(prefix)).map((o) => ({ ...o, lastModified: this.written.get(o.key)! }));
  }
}

const moves = (events: readonly { from: number | null; to: number }[]) =>
  events.map((e) => `${e.from}->${e.to}`);

describe('registry moves that did not finish', () => {
  it('never shows a move whose pointer was not written, and the next mover finishes it within settleMs', async () => {
    const store = new DatedStore();
    const registry = new ModelRegistry(store, { settleMs: 50 });
    for (let i = 0; i < 3; i++) await registry.publish('m', files(`v${i}`), input);
    await registry.setAlias('m', 'live', 1);
    store.failNext.add(keys.alias('m', 'live'));
    await expect(registry.setAlias('m', 'live', 2, { who: 'crashed' })).rejects.toThrow(/lost the answer/);

    expect((await registry.getAlias('m'))?.version).toBe(1);
    expect(moves(await registry.history('m'))).toEqual(['null->1']);
    expect(moves(await registry.unfinishedMoves('m'))).toEqual(['1->2']);
    // A rollback now would be based on moves that happened only: nothing to roll back to.
    await expect(registry.rollback('m')).rejects.toThrow(/no earlier version/);

    const next = await registry.setAlias('m', 'live', 3);
    expect([next.from, next.to, next.seq]).toEqual([2, 3, 3]);
    const history = await registry.history('m');
    expect(moves(history)).toEqual(['null->1', '1->2', '2->3']);
    expect(history.map((e) => e.who).slice(1)).toEqual(['crashed', registry.actor]);
    expect((await registry.getAlias('m'))?.eventId).toBe(next.id);
    expect(await registry.unfinishedMoves('m')).toEqual([]);
  });

  it('skips a slot it cannot decide (two claims, neither marked lost) after settleMs, and shows neither', async () => {
    const store = new DatedStore();
    const registry = new ModelRegistry(store, { settleMs: 50 });
    for (let i = 0; i < 3; i++) await registry.publish('m', files(`v${i}`), input);
    const first = await registry.setAlias('m', 'live', 1);
    for (const [id, to] of [
      ['a', 2],
      ['b', 3],
    ] as const) {
      const event = {
        id,
        seq: 2,
        model: 'm',
        alias: 'live',
        kind: 'promote',
        from: 1,
        to,
        at: '',
        who: 'x',
        why: '',
        prev: first.id,
      };
      await store.put(`${keys.historySlot('m', 'live', 2)}${id}.json`, JSON.stringify(event));
    }
    const next = await registry.setAlias('m', 'live', 2);
    expect([next.seq, next.from, next.to]).toEqual([3, 1, 2]);
    expect(moves(await registry.history('m'))).toEqual(['null->1', '1->2']);
    expect((await registry.history('m')).map((e) => e.seq)).toEqual([1, 3]);
    expect((await registry.rollback('m')).to).toBe(1);
  });

  it('a move whose requester saw an error but whose pointer landed is in the history once', async () => {
    const store = new DatedStore();
    const registry = new ModelRegistry(store, { settleMs: 50 });
    for (let i = 0; i < 2; i++) await registry.publish('m', files(`v${i}`), input);
    await registry.setAlias('m', 'live', 1);
    // The pointer PUT lands, but its answer is lost: the move happened.
    const put = store.put.bind(store);
    let dropped = false;
    store.put = async (key, body, options) => {
      const out = await put(key, body, options);
      if (key === keys.alias('m', 'live') && !dropped) {
        dropped = true;
        throw new RegistryUnavailableError('answer lost');
      }
      return out;
    };
    await expect(registry.setAlias('m', 'live', 2)).rejects.toThrow(/answer lost/);
    expect(moves(await registry.history('m'))).toEqual(['null->1', '1->2']);
    expect((await registry.getAlias('m'))?.version).toBe(2);
  });

  it('never deletes: losers mark their claims lost, so writers need no delete permission', async () => {
    for (const Store of [MemoryObjectStore, LaxStore]) {
      const store = new Store();
      const registry = new ModelRegistry(store, { retry: { minDelayMs: 1, maxDelayMs: 20, attempts: 200 } });
      const published = await Promise.all(
        Array.from({ length: 6 }, (_, i) => registry.publish('m', files(`p${i}`), input)),
      );
      await Promise.all(published.slice(0, 4).map((m) => registry.setAlias('m', 'live', m.version)));
      await registry.rollback('m');
      expect(store.calls.delete).toBe(0);
      expect(moves(await registry.history('m'))).toHaveLength(5);
    }
  });

  it('sends the conditions the IAM policy requires: create-only everywhere, If-Match to replace the pointer', async () => {
    const store = new DatedStore();
    const registry = new ModelRegistry(store, { retry: { minDelayMs: 1, maxDelayMs: 20, attempts: 200 } });
    const published = await Promise.all(
      Array.from({ length: 3 }, (_, i) => registry.publish('m', files(`p${i}`), input)),
    );
    await registry.putReport('m', 1, 'curve.svg', '<svg/>', 'image/svg+xml');
    await Promise.all(published.map((m) => registry.setAlias('m', 'live', m.version)));
    const pointer = keys.alias('m', 'live');
    for (const { key, options } of store.puts) {
      if (key === pointer)
        expect(options.ifMatch !== undefined || options.ifNoneMatch === '*', key).toBe(true);
      else expect(options.ifNoneMatch, key).toBe('*');
    }
    expect(store.puts.filter((p) => p.key === pointer && p.options.ifNoneMatch === '*')).toHaveLength(1);
  });
});

describe('a first move whose mover died before the pointer', () => {
  it('leaves the alias unset and its history empty until the next move finishes it', async () => {
    const store = new DatedStore();
    const registry = new ModelRegistry(store, { settleMs: 50 });
    for (let i = 0; i < 2; i++) await registry.publish('m', files(`v${i}`), input);
    store.failNext.add(keys.alias('m', 'live'));
    await expect(registry.setAlias('m', 'live', 1)).rejects.toThrow(/lost the answer/);
    expect(await registry.getAlias('m')).toBeUndefined();
    expect(await registry.history('m')).toEqual([]);
    expect(moves(await registry.unfinishedMoves('m'))).toEqual(['null->1']);
    const next = await registry.setAlias('m', 'live', 2);
    expect(moves(await registry.history('m'))).toEqual(['null->1', '1->2']);
    expect((await registry.getAlias('m'))?.eventId).toBe(next.id);
  });
});

describe('a damaged alias object', () => {
  it('is reported, hides no other alias, blocks nothing, and a promote repairs it', async () => {
    const store = new MemoryObjectStore();
    const registry = new ModelRegistry(store);
    for (let i = 0; i < 2; i++) await registry.publish('m', files(`v${i}`), input);
    await registry.setAlias('m', 'live', 1);
    await registry.setAlias('m', 'staging', 2);
    await store.put(keys.alias('m', 'live'), '{"version": 1, "seq": '); // broken JSON

    expect(await registry.listAliases('m')).toEqual({ staging: 2 });
    const states = await registry.aliasStates('m');
    expect(states.staging).toEqual({ version: 2 });
    expect(states.live).toEqual({ damaged: expect.stringContaining('models/m/aliases/live.json') });
    // The function's reads still refuse it, naming the object.
    await expect(registry.getAlias('m', 'live')).rejects.toThrow(IntegrityError);
    await expect(registry.getAlias('m', 'live')).rejects.toThrow(
      /models\/m\/aliases\/live\.json.*not valid JSON/,
    );
    await expect(registry.getAliasIfChanged('m', 'live', '"x"')).rejects.toThrow(IntegrityError);
    expect(await registry.listVersions('m')).toEqual([1, 2]);
    expect(moves(await registry.history('m', 'live'))).toEqual(['null->1']);
    expect(await registry.unfinishedMoves('m', 'live')).toEqual([]);

    const repaired = await registry.setAlias('m', 'live', 2, { why: 'repair' });
    expect([repaired.from, repaired.to]).toEqual([1, 2]);
    expect((await registry.getAlias('m', 'live'))?.version).toBe(2);
    expect(await registry.listAliases('m')).toEqual({ live: 2, staging: 2 });
    expect(moves(await registry.history('m', 'live'))).toEqual(['null->1', '1->2']);
  });

  it('a pointer that names no recorded move is rewritten from the history by the next move', async () => {
    const store = new MemoryObjectStore();
    const registry = new ModelRegistry(store);
    for (let i = 0; i < 3; i++) await registry.publish('m', files(`v${i}`), input);
    await registry.setAlias('m', 'live', 1);
    await registry.setAlias('m', 'live', 2);
    await store.put(keys.alias('m', 'live'), JSON.stringify({ version: 3, seq: 9, eventId: 'forged' }));
    expect(moves(await registry.history('m'))).toEqual(['null->1', '1->2']);
    const next = await registry.setAlias('m', 'live', 3);
    expect([next.from, next.to]).toEqual([2, 3]);
    expect(moves(await registry.history('m'))).toEqual(['null->1', '1->2', '2->3']);
  });
});

describe('version numbers', () => {
  it('20 concurrent publishes get unique numbers; a gap is a number claimed but never committed, and stays invisible', async () => {
    const store = new LaxStore();
    const registry = new ModelRegistry(store, { retry: { minDelayMs: 1, maxDelayMs: 20, attempts: 400 } });
    const published = await Promise.all(
      Array.from({ length: 20 }, (_, i) => registry.publish('m', files(`p${i}`), input)),
    );
    const numbers = published.map((m) => m.version).sort((a, b) => a - b);
    expect(new Set(numbers).size).toBe(20);
    expect(await registry.listVersions('m')).toEqual(numbers);
    for (const meta of published) {
      const { files: stored } = await registry.readVersion('m', meta.version);
      expect(new TextDecoder().decode(stored.get('model.json'))).toBe(
        JSON.stringify({ tag: `p${published.indexOf(meta)}` }),
      );
    }
    // Every number below the highest that is not a version was claimed and never committed: it
    // holds no version file, and cannot be promoted.
    const highest = numbers.at(-1)!;
    for (let n = 1; n <= highest; n++) {
      if (numbers.includes(n)) continue;
      expect(store.keys(keys.version('m', n))).toEqual([]);
      await expect(registry.setAlias('m', 'live', n)).rejects.toThrow(NotFoundError);
    }
  });

  it('reuses a top number whose claims all lost, and skips one a dead publisher holds', async () => {
    const store = new MemoryObjectStore();
    const registry = new ModelRegistry(store);
    await registry.publish('m', files('a'), input);
    await store.put(`${keys.claims('m', 2)}x.json`, '{}');
    await store.put(`${keys.claims('m', 2)}x.lost`, 'lost');
    expect((await registry.publish('m', files('b'), input)).version).toBe(2);
    await store.put(`${keys.claims('m', 3)}dead.json`, '{}'); // a publisher that died after claiming
    expect((await registry.publish('m', files('c'), input)).version).toBe(4);
    expect(await registry.listVersions('m')).toEqual([1, 2, 4]);
  });
});

/** Fails the next GETs of chosen keys, each with the error its entry makes. */
class FailingReads extends MemoryObjectStore {
  readonly failing = new Map<string, { left: number; error: () => Error }>();
  override async get(key: string) {
    const failure = this.failing.get(key);
    if (failure && failure.left > 0) {
      failure.left--;
      throw failure.error();
    }
    return super.get(key);
  }
}

describe("an alias pointer's shortcuts (file list, inline copy) when the version cannot be read", () => {
  const storeFault = () => new RegistryUnavailableError('S3 is down');

  it('retries the copy once after a store fault, then writes the pointer without it: the move stands', async () => {
    const store = new FailingReads();
    const registry = new ModelRegistry(store);
    const v1 = await registry.publish('m', files('a'), input);
    const v2 = await registry.publish('m', files('b'), input);
    store.failing.set(keys.file('m', v1.version, 'group1-shard1of1.bin'), { left: 1, error: storeFault });
    await registry.setAlias('m', 'live', v1.version);
    expect((await registry.getAlias('m', 'live'))?.inline?.metadata).toEqual(v1);

    store.failing.set(keys.file('m', v2.version, 'group1-shard1of1.bin'), { left: 2, error: storeFault });
    const event = await registry.setAlias('m', 'live', v2.version);
    const pointer = (await registry.getAlias('m', 'live'))!;
    expect(pointer).toMatchObject({ version: v2.version, eventId: event.id, files: v2.files });
    expect(pointer.inline).toBeUndefined();
    expect((await registry.history('m', 'live')).map((e) => e.to)).toEqual([v1.version, v2.version]);
    const read = await registry.readVersion('m', v2.version, { files: pointer.files! });
    expect([...read.files.get('group1-shard1of1.bin')!]).toEqual([1, 2, 3]);
  });

  it("finishes a move whose version's metadata is damaged (its pointer goes without shortcuts)", async () => {
    const store = new DatedStore();
    const registry = new ModelRegistry(store, { settleMs: 0 });
    const v1 = await registry.publish('m', files('a'), input);
    const v2 = await registry.publish('m', files('b'), input);
    store.failNext.add(keys.alias('m', 'live'));
    await expect(registry.setAlias('m', 'live', v2.version)).rejects.toThrow(/lost the answer/);
    await store.put(keys.metadata('m', v2.version), '{not json');
    await registry.setAlias('m', 'live', v1.version);
    expect(moves(await registry.history('m', 'live'))).toEqual(['null->2', '2->1']);
  });

  it('lets an error that is not a store fault (a bug) surface instead of hiding it as a missing copy', async () => {
    const store = new FailingReads();
    const registry = new ModelRegistry(store);
    const v1 = await registry.publish('m', files('a'), input);
    store.failing.set(keys.file('m', v1.version, 'group1-shard1of1.bin'), {
      left: 1,
      error: () => new TypeError('a bug in a store'),
    });
    await expect(registry.setAlias('m', 'live', v1.version)).rejects.toThrow(TypeError);
  });
});
