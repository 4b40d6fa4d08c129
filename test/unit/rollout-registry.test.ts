/**
 * Canary and shadow routes in the registry (registry/routes.ts, moves.ts, aliases.ts): each change
 * is a move in the alias history and the pointer is written from it; changes race safely; a plain
 * move ends the routes; rollback walks back through served versions only; a bad route in a
 * pointer is dropped, never trusted; a canary that does not fit in memory is refused.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ConflictError, NotFoundError, ValidationError } from '../../functions/shared/errors.js';
import { keys } from '../../functions/shared/registry/layout.js';
import { ModelRegistry } from '../../functions/shared/registry/registry.js';
import { describeMove } from '../../functions/shared/registry/routes.js';
import type { PutOptions } from '../../functions/shared/registry/store.js';
import { MemoryObjectStore } from '../support/memory-store.js';
import { PUBLISH_INPUT, versionFiles } from '../support/versions.js';

/** Like s3rver: ignores If-None-Match / If-Match, so only the claim protocol keeps writers apart. */
class LaxStore extends MemoryObjectStore {
  override put(key: string, body: Uint8Array | string, _options: PutOptions = {}) {
    return super.put(key, body, {});
  }
}

const RETRY = { minDelayMs: 1, maxDelayMs: 20, attempts: 400 };

async function registryWith(versions: number, store = new MemoryObjectStore()) {
  const registry = new ModelRegistry(store, { actor: 'tester', retry: RETRY });
  for (let i = 1; i <= versions; i++) await registry.publish('m', versionFiles(`v${i}`), PUBLISH_INPUT);
  return registry;
}

describe('a canary', () => {
  it('is a move in the history that leaves the served version, and the pointer carries it with its shortcuts', async () => {
    const registry = await registryWith(3);
    await registry.setAlias('m', 'live', 1);
    const start = await registry.changeRoutes(
      'm',
      'live',
      { op: 'set-canary', version: 2, weight: 10 },
      { why: 'try v2' },
    );
    expect(start).toMatchObject({
      kind: 'canary',
      from: 1,
      to: 1,
      why: 'try v2',
      canary: { version: 2, weight: 10 },
    });
    expect(start.canary?.since).toBe(start.at);
    const pointer = await registry.getAlias('m', 'live');
    expect(pointer).toMatchObject({
      version: 1,
      eventId: start.id,
      canary: { version: 2, weight: 10, since: start.at },
    });
    // The canary's version rides along like the served one: its files, and (small) the whole version.
    expect(pointer?.canary?.files).toEqual((await registry.getMetadata('m', 2)).files);
    expect(pointer?.canary?.inline?.metadata.version).toBe(2);
    expect(pointer?.inline?.metadata.version).toBe(1);

    const step = await registry.changeRoutes('m', 'live', { op: 'canary-weight', weight: 50 });
    expect(step.canary).toMatchObject({ version: 2, weight: 50, since: step.at });
    const shadow = await registry.changeRoutes('m', 'live', { op: 'set-shadow', version: 3, sample: 5 });
    expect(shadow).toMatchObject({
      kind: 'shadow',
      to: 1,
      canary: { weight: 50, since: step.at },
      shadow: { version: 3 },
    });

    const promoted = await registry.changeRoutes('m', 'live', { op: 'promote-canary' });
    expect(promoted).toMatchObject({ kind: 'canary', from: 1, to: 2, shadow: { version: 3, sample: 5 } });
    expect(promoted.canary).toBeUndefined();
    const after = await registry.getAlias('m', 'live');
    expect([after?.version, after?.canary, after?.shadow?.version]).toEqual([2, undefined, 3]);
    expect(after?.inline?.metadata.version).toBe(2);

    const history = await registry.history('m', 'live');
    expect(history.map((e) => describeMove(e, history[history.indexOf(e) - 1]))).toEqual([
      'none → v1',
      'v1 (canary v2 10%)',
      'v1 (canary v2 50%)',
      'v1 (canary v2 50%, shadow v3 5%)',
      'v1 → v2 (shadow v3 5%)',
    ]);
  });

  it('is refused where it makes no sense, naming the alias and the versions', async () => {
    const registry = await registryWith(3);
    await expect(
      registry.changeRoutes('m', 'live', { op: 'set-canary', version: 2, weight: 10 }),
    ).rejects.toThrow(/m@live serves no version yet/);
    await registry.setAlias('m', 'live', 1);
    const refusals: [Parameters<typeof registry.changeRoutes>[2], RegExp, new (...args: never[]) => Error][] =
      [
        [
          { op: 'set-canary', version: 1, weight: 10 },
          /already serves v1: a canary must be another version/,
          ValidationError,
        ],
        [
          { op: 'set-canary', version: 2, weight: 101 },
          /canary weight must be a percentage from 0 to 100, got 101/,
          ValidationError,
        ],
        [{ op: 'set-canary', version: 2, weight: Number.NaN }, /percentage/, ValidationError],
        [{ op: 'set-canary', version: 9, weight: 10 }, /9/, NotFoundError],
        [{ op: 'canary-weight', weight: 50 }, /m@live has no canary/, ConflictError],
        [{ op: 'promote-canary' }, /no canary to promote/, ConflictError],
        [{ op: 'abort-canary' }, /no canary to abort/, ConflictError],
        [{ op: 'stop-shadow' }, /no shadow to stop/, ConflictError],
        [{ op: 'set-shadow', version: 1, sample: 5 }, /a shadow must be another version/, ValidationError],
      ];
    for (const [change, message, type] of refusals) {
      const failure = registry.changeRoutes('m', 'live', change);
      await expect(failure, JSON.stringify(change)).rejects.toThrow(message);
      await expect(failure).rejects.toBeInstanceOf(type);
    }
    await registry.changeRoutes('m', 'live', { op: 'set-canary', version: 2, weight: 10 });
    await expect(
      registry.changeRoutes('m', 'live', { op: 'set-shadow', version: 2, sample: 5 }),
    ).rejects.toThrow(/v2 is m@live's canary/);
    // Nothing refused reached the history.
    expect((await registry.history('m', 'live')).length).toBe(2);
  });

  it('ends with a plain promote, rollback or retrain: they set exactly what is served', async () => {
    const registry = await registryWith(4);
    await registry.setAlias('m', 'live', 1);
    await registry.changeRoutes('m', 'live', { op: 'set-canary', version: 2, weight: 10 });
    await registry.changeRoutes('m', 'live', { op: 'set-shadow', version: 3, sample: 10 });
    const promote = await registry.setAlias('m', 'live', 4, { why: 'hotfix' });
    expect([promote.canary, promote.shadow]).toEqual([undefined, undefined]);
    const pointer = await registry.getAlias('m', 'live');
    expect([pointer?.version, pointer?.canary, pointer?.shadow]).toEqual([4, undefined, undefined]);
    const history = await registry.history('m', 'live');
    expect(describeMove(history.at(-1)!, history.at(-2))).toBe('v1 → v4, canary v2 ended, shadow v3 ended');
  });

  it('is compare-and-swapped on the move it was read at (expectedEventId)', async () => {
    const registry = await registryWith(2);
    await registry.setAlias('m', 'live', 1);
    const start = await registry.changeRoutes('m', 'live', { op: 'set-canary', version: 2, weight: 10 });
    await registry.changeRoutes('m', 'live', { op: 'canary-weight', weight: 20 });
    await expect(
      registry.changeRoutes('m', 'live', { op: 'canary-weight', weight: 50 }, { expectedEventId: start.id }),
    ).rejects.toThrow(/changed meanwhile/);
    expect((await registry.getAlias('m', 'live'))?.canary?.weight).toBe(20);
  });
});

describe('rollback across canary and shadow moves', () => {
  it('walks back through served versions only', async () => {
    const registry = await registryWith(4);
    await registry.setAlias('m', 'live', 1);
    await registry.setAlias('m', 'live', 2);
    await registry.changeRoutes('m', 'live', { op: 'set-canary', version: 3, weight: 10 });
    await registry.changeRoutes('m', 'live', { op: 'canary-weight', weight: 50 });
    await registry.changeRoutes('m', 'live', { op: 'abort-canary' });
    await registry.changeRoutes('m', 'live', { op: 'set-shadow', version: 4, sample: 1 });
    // The moves after v2 never changed what was served: the step back is to v1.
    const back = await registry.rollback('m', 'live');
    expect([back.from, back.to, back.shadow]).toEqual([2, 1, undefined]);
  });

  it('undoes a promoted canary: back to the version served before it', async () => {
    const registry = await registryWith(3);
    await registry.setAlias('m', 'live', 1);
    await registry.changeRoutes('m', 'live', { op: 'set-canary', version: 2, weight: 10 });
    await registry.changeRoutes('m', 'live', { op: 'promote-canary' }, { kind: 'rollout' });
    await registry.changeRoutes('m', 'live', { op: 'set-canary', version: 3, weight: 10 });
    const back = await registry.rollback('m', 'live');
    expect([back.from, back.to, back.canary]).toEqual([2, 1, undefined]);
    await expect(registry.rollback('m', 'live')).rejects.toThrow(/no earlier version/);
  });
});

for (const [label, Store] of [
  ['a store that enforces conditional writes', MemoryObjectStore],
  ['a store that ignores them (like s3rver)', LaxStore],
] as const) {
  describe(`concurrent canary and shadow changes on ${label}`, () => {
    it('are all recorded, one after the other, each made on the one before, the pointer at the last', async () => {
      const registry = await registryWith(3, new Store());
      await registry.setAlias('m', 'live', 1);
      await registry.changeRoutes('m', 'live', { op: 'set-canary', version: 2, weight: 1 });
      const weights = [5, 10, 20, 30, 40, 50];
      await Promise.all([
        ...weights.map((weight) => registry.changeRoutes('m', 'live', { op: 'canary-weight', weight })),
        registry.changeRoutes('m', 'live', { op: 'set-shadow', version: 3, sample: 7 }),
      ]);
      const history = await registry.history('m', 'live');
      expect(history.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
      // Each change kept what the ones before it set: the shadow survives every later weight change.
      const shadowAt = history.findIndex((e) => e.kind === 'shadow');
      for (const e of history.slice(shadowAt)) expect(e.shadow).toMatchObject({ version: 3, sample: 7 });
      for (const e of history.slice(1)) expect(e.canary?.version).toBe(2);
      expect(
        new Set(
          history
            .slice(2)
            .filter((e) => e.kind === 'canary')
            .map((e) => e.canary!.weight),
        ),
      ).toEqual(new Set(weights));
      const pointer = await registry.getAlias('m', 'live');
      expect(pointer).toMatchObject({
        eventId: history.at(-1)!.id,
        canary: { weight: history.at(-1)!.canary!.weight },
      });
      expect(pointer?.shadow?.version).toBe(3);
    });

    it('a promote racing weight changes: exactly one of them wins each slot, and none is applied to a stale state', async () => {
      const registry = await registryWith(2, new Store());
      await registry.setAlias('m', 'live', 1);
      await registry.changeRoutes('m', 'live', { op: 'set-canary', version: 2, weight: 10 });
      const results = await Promise.allSettled([
        registry.changeRoutes('m', 'live', { op: 'promote-canary' }),
        registry.changeRoutes('m', 'live', { op: 'canary-weight', weight: 50 }),
        registry.changeRoutes('m', 'live', { op: 'canary-weight', weight: 60 }),
      ]);
      expect(results[0]!.status).toBe('fulfilled');
      const history = await registry.history('m', 'live');
      const promotedAt = history.findIndex((e) => e.to === 2);
      // After the promotion there is no canary: a weight change that came later was refused.
      for (const e of history.slice(promotedAt)) expect(e.canary).toBeUndefined();
      for (const r of results.slice(1)) {
        if (r.status === 'rejected') expect(String(r.reason)).toMatch(/no canary/);
      }
      expect((await registry.getAlias('m', 'live'))?.version).toBe(2);
    });
  });
}

describe('the memory a canary or shadow needs', () => {
  const mib = (n: number) => new Uint8Array(n * 2 ** 20);

  it('is refused when the versions do not fit together, naming them, their sizes and the memory', async () => {
    const registry = new ModelRegistry(new MemoryObjectStore(), { retry: RETRY });
    for (const tag of ['a', 'b', 'c']) await registry.publish('m', versionFiles(tag, mib(2)), PUBLISH_INPUT);
    await registry.setAlias('m', 'live', 1);
    // 192 MiB + 3 × (2 + 2) MiB and the model.json files = 205 MiB, rounded up.
    await expect(
      registry.changeRoutes('m', 'live', { op: 'set-canary', version: 2, weight: 10 }, { memoryMiB: 200 }),
    ).rejects.toThrow(
      /m@live: refusing the canary: live v1 \(2\.0 MiB\), canary v2 \(2\.0 MiB\) need 205 MiB together .*more than the function's 200 MiB; raise the model's memoryMiB/,
    );
    await registry.changeRoutes(
      'm',
      'live',
      { op: 'set-canary', version: 2, weight: 10 },
      { memoryMiB: 210 },
    );
    // A third version: 192 + 3 × 6 MiB and a little = 211 MiB; the message offers ending the canary.
    await expect(
      registry.changeRoutes('m', 'live', { op: 'set-shadow', version: 3, sample: 5 }, { memoryMiB: 210 }),
    ).rejects.toThrow(/live v1 .*canary v2 .*shadow v3 .*need 211 MiB.*or end the canary first/);
    await registry.changeRoutes('m', 'live', { op: 'set-shadow', version: 3, sample: 5 }, { memoryMiB: 211 });
    // A weight change loads nothing new: not checked again.
    await registry.changeRoutes('m', 'live', { op: 'canary-weight', weight: 50 }, { memoryMiB: 128 });
  });
});

describe('an alias pointer with a canary or shadow that is not well formed', () => {
  const good = { version: 2, weight: 10, since: '2026-01-01T00:00:00.000Z' };
  const badRoute = fc.oneof(
    fc.constantFrom(null, 'canary', 7, [], true),
    fc.record({
      version: fc.oneof(fc.constantFrom(0, -1, 1.5, 1, Number.NaN, '2', null), fc.integer({ max: 0 })),
      weight: fc.double({ min: 0, max: 100, noNaN: true }),
      since: fc.constant(good.since),
    }),
    fc.record({
      version: fc.integer({ min: 2, max: 50 }),
      weight: fc.oneof(
        fc.double({ min: 100.0001, max: 1e9 }),
        fc.double({ min: -1e9, max: -0.0001 }),
        fc.constantFrom(Number.NaN, '10', null),
      ),
      since: fc.constant(good.since),
    }),
    fc.record({
      version: fc.integer({ min: 2, max: 50 }),
      weight: fc.double({ min: 0, max: 100, noNaN: true }),
      since: fc.constantFrom(undefined, 'yesterday', 12, ''),
    }),
  );

  it('is dropped: the alias serves its version alone, nothing throws, a good route beside it stays', async () => {
    await fc.assert(
      fc.asyncProperty(badRoute, fc.boolean(), async (route, asShadow) => {
        const store = new MemoryObjectStore();
        const registry = new ModelRegistry(store);
        const pointer = {
          model: 'm',
          alias: 'live',
          version: 1,
          seq: 1,
          eventId: 'e1',
          updatedAt: good.since,
          // The bad route in one place, a good one in the other.
          canary: asShadow ? good : route,
          shadow: asShadow
            ? route && typeof route === 'object' && !Array.isArray(route)
              ? { ...route, sample: (route as { weight?: unknown }).weight }
              : route
            : { version: 3, sample: 5, since: good.since },
        };
        // JSON turns NaN into null: still not a route.
        await store.put(keys.alias('m', 'live'), JSON.stringify(pointer));
        const read = await registry.getAlias('m', 'live');
        expect(read?.version).toBe(1);
        if (asShadow) {
          expect(read?.shadow).toBeUndefined();
          expect(read?.canary).toMatchObject(good);
        } else {
          expect(read?.canary).toBeUndefined();
          expect(read?.shadow).toMatchObject({ version: 3, sample: 5 });
        }
      }),
      { numRuns: 200 },
    );
  });

  it('is dropped when it names the served version, or the same version as the other route', async () => {
    const store = new MemoryObjectStore();
    const registry = new ModelRegistry(store);
    const base = { model: 'm', alias: 'live', version: 1, seq: 1, eventId: 'e1', updatedAt: good.since };
    await store.put(keys.alias('m', 'live'), JSON.stringify({ ...base, canary: { ...good, version: 1 } }));
    expect((await registry.getAlias('m', 'live'))?.canary).toBeUndefined();
    await store.put(
      keys.alias('m', 'live'),
      JSON.stringify({ ...base, canary: good, shadow: { version: 2, sample: 5, since: good.since } }),
    );
    const read = await registry.getAlias('m', 'live');
    expect([read?.canary?.version, read?.shadow]).toEqual([2, undefined]);
  });

  it("drops a route's shortcuts that are not well formed or describe another version, and keeps the route", async () => {
    const registry = await registryWith(3);
    await registry.setAlias('m', 'live', 1);
    await registry.changeRoutes('m', 'live', { op: 'set-canary', version: 2, weight: 10 });
    const key = keys.alias('m', 'live');
    const stored = JSON.parse(new TextDecoder().decode((await registry.store.get(key))!.body));
    const v3 = await registry.getAlias('m', 'live');
    await registry.store.put(
      key,
      JSON.stringify({ ...stored, canary: { ...stored.canary, files: 'nope', inline: { ...v3!.inline } } }),
    );
    const read = await registry.getAlias('m', 'live');
    expect(read?.canary).toMatchObject({ version: 2, weight: 10 });
    expect(read?.canary?.files).toBeUndefined();
    expect(read?.canary?.inline).toBeUndefined(); // the copy describes v1, not the canary's v2
  });

  it('is rewritten from the history by the next move', async () => {
    const registry = await registryWith(3);
    await registry.setAlias('m', 'live', 1);
    await registry.changeRoutes('m', 'live', { op: 'set-canary', version: 2, weight: 10 });
    const key = keys.alias('m', 'live');
    const stored = JSON.parse(new TextDecoder().decode((await registry.store.get(key))!.body));
    await registry.store.put(
      key,
      JSON.stringify({ ...stored, canary: { ...stored.canary, weight: 'lots' } }),
    );
    expect((await registry.getAlias('m', 'live'))?.canary).toBeUndefined();
    // The history holds the canary as recorded: the next change is made on it.
    await registry.changeRoutes('m', 'live', { op: 'set-shadow', version: 3, sample: 5 });
    const read = await registry.getAlias('m', 'live');
    expect([read?.canary?.version, read?.canary?.weight, read?.shadow?.version]).toEqual([2, 10, 3]);
  });
});
