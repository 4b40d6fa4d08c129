/**
 * How one function loads the versions its alias pointer needs (functions/inference/service.ts):
 * the live version, its canary and its shadow load at once, on a cold start and on a re-check, so
 * the first answer waits for the longest load rather than their sum, and each version is read
 * once; the answers are those of the versions the pointer names. A canary that fails to load
 * beside them never fails a request (the live version answers it); a live version that fails to
 * load fails the cold start with a 503 (a registry failure as itself), starts no load beside it
 * once it has failed and frees what was loaded beside it, never a version still served. A shadow
 * that fits in memory only without a canary that fails to load is served. On an in-memory registry
 * whose reads of versions are held (or fail) until the test lets them go.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_LIMITS, route } from '../../functions/inference/api.js';
import { InferenceService, type ServiceResult } from '../../functions/inference/service.js';
import { ModelUnavailableError, RegistryUnavailableError } from '../../functions/shared/errors.js';
import { keys } from '../../functions/shared/registry/layout.js';
import { ModelRegistry } from '../../functions/shared/registry/registry.js';
import type { StoredObject } from '../../functions/shared/registry/store.js';
import type { AliasPointer, FileDigest, VersionMetadata } from '../../functions/shared/registry/types.js';
import { filesBytes, MEMORY_RULE } from '../../functions/shared/rollout/memory.js';
import type { TfRuntime } from '../../functions/shared/runtime/types.js';
import { createRuntime } from '../../layers/tfjs-runtime/runtime.js';
import { linesLog } from '../support/log.js';
import { MemoryObjectStore } from '../support/memory-store.js';
import { linear, publishLinear } from '../support/models.js';

/**
 * A memory store whose reads of versions' objects wait while `held` is set (those `holds` matches),
 * and fail as an unreachable registry for the versions in `down`, recording each key read.
 */
class GatedStore extends MemoryObjectStore {
  readonly versionReads: string[] = [];
  held: Promise<void> | undefined;
  holds: (key: string) => boolean = () => true;
  readonly down = new Set<number>();
  override async get(key: string): Promise<StoredObject | undefined> {
    if (key.includes('/versions/')) {
      this.versionReads.push(key);
      if (this.held && this.holds(key)) await this.held;
      if (this.down.has(versionOf(key))) throw new RegistryUnavailableError('the registry is down (test)');
    }
    return super.get(key);
  }
  /** The keys of `version` read so far. */
  readsOf(version: number): string[] {
    return this.versionReads.filter((k) => versionOf(k) === version);
  }
  /** The versions whose objects were read so far. */
  versionsRead(): number[] {
    return [...new Set(this.versionReads.map(versionOf))].sort();
  }
}

function versionOf(key: string): number {
  return Number(/\/versions\/(\d+)\//.exec(key)?.[1]);
}

const W = {
  1: [1, 2, 3],
  2: [-1, 0, 2],
  3: [0.5, 0.5, 0.5],
  4: [2, 0, -1],
} as const;
const B = { 1: 0.5, 2: 1, 3: -2, 4: 3 } as const;
const X = [1, 1, 1];
const BODY = JSON.stringify({ instances: [X] });
const predict = route('POST', '/v1/models/m:predict', 'm');
const since = new Date(0).toISOString();

let runtime: TfRuntime;
beforeAll(async () => {
  runtime = await createRuntime('cpu');
});

type Files = Readonly<Record<string, FileDigest>>;
/** A route as the test writes it: `files` none (the pointer lists none) or given; else the version's own. */
type TestRoute<R> = Omit<R, 'files'> & { files?: Files | 'none' };

async function setup(options: { fastPath?: 'auto' | 'off'; memoryMiB?: number } = {}) {
  const store = new GatedStore();
  const registry = new ModelRegistry(store);
  const published: Record<number, VersionMetadata> = {};
  for (const v of [1, 2, 3, 4] as const) {
    published[v] = await publishLinear(runtime, registry, 'm', W[v], B[v], { promote: v === 1 });
  }
  const lines: string[] = [];
  const log = linesLog(lines);
  let now = 0;
  let draw = 0.5;
  const service = new InferenceService({
    model: 'm',
    alias: 'live',
    aliasCheckMs: 1_000,
    recheckWaitMs: 0,
    limits: DEFAULT_LIMITS,
    registry,
    runtime: async () => runtime,
    fastPath: options.fastPath ?? 'auto',
    log,
    now: () => now,
    random: () => draw,
    // Room for all: the memory checks run, on the sizes the pointer lists.
    memoryMiB: options.memoryMiB ?? 1_024,
  });
  /**
   * Writes the alias pointer: `version` live, with the routes given. Each version carries its file
   * list (so the memory rule needs no read; `liveFiles: false` writes a pointer from before pointers
   * listed files) but not its bytes inline (so loading it reads the store).
   */
  const point = async (
    version: number,
    routes: {
      canary?: TestRoute<NonNullable<AliasPointer['canary']>>;
      shadow?: TestRoute<NonNullable<AliasPointer['shadow']>>;
    },
    { liveFiles = true } = {},
  ) => {
    const object = await store.get(keys.alias('m', 'live'));
    const current = JSON.parse(new TextDecoder().decode(object!.body)) as AliasPointer;
    const { canary, shadow } = routes;
    const next: AliasPointer = {
      model: 'm',
      alias: 'live',
      version,
      seq: current.seq,
      eventId: current.eventId,
      updatedAt: current.updatedAt,
      ...(liveFiles ? { files: published[version]!.files } : {}),
      ...(canary ? { canary: withFiles(canary) } : {}),
      ...(shadow ? { shadow: withFiles(shadow) } : {}),
    };
    await store.put(keys.alias('m', 'live'), JSON.stringify(next));
  };
  const withFiles = <R extends { version: number }>({ files, ...route }: R & { files?: Files | 'none' }) => ({
    ...route,
    ...(files === 'none' ? {} : { files: files ?? published[route.version]!.files }),
  });
  /** Spoils a weight shard of `version`: its load fails verification. */
  const spoil = async (version: number) => {
    const shard = [...store.objects.keys()].find(
      (k) => k.includes(`/versions/${version}/`) && k.endsWith('.bin'),
    )!;
    await store.put(shard, new Uint8Array([1, 2, 3]));
  };
  const answer = (r: number): ServiceResult | Promise<ServiceResult> => {
    draw = r;
    return service.handle(predict, BODY);
  };
  const firstValue = (result: ServiceResult) =>
    JSON.parse(JSON.stringify(result.body)).predictions[0][0] as number;
  const later = (ms = 1_000) => {
    now += ms;
  };
  return { store, service, lines, published, point, spoil, answer, firstValue, later };
}

/** Holds the store's reads of versions until the returned function is called. */
function hold(store: GatedStore, holds: (key: string) => boolean = () => true): () => void {
  let release = () => {};
  store.holds = holds;
  store.held = new Promise<void>((resolve) => {
    release = resolve;
  });
  return () => {
    store.held = undefined;
    release();
  };
}

/** Lets the event loop run (a bounded number of turns) until `done` holds; returns whether it did. */
async function turnsUntil(done: () => boolean): Promise<boolean> {
  for (let i = 0; i < 200 && !done(); i++) await new Promise((resolve) => setImmediate(resolve));
  return done();
}

describe('loading the versions an alias pointer needs', () => {
  it('starts the live, canary and shadow loads of a cold start together, and answers as before', async () => {
    const { store, service, point, answer, firstValue } = await setup();
    await point(1, {
      canary: { version: 2, weight: 50, since },
      shadow: { version: 3, sample: 100, since },
    });
    store.versionReads.length = 0;
    const release = hold(store);
    let answered = false;
    const first = Promise.resolve(answer(0.9)).finally(() => {
      answered = true;
    });
    // All three versions are being read while none of their reads has been answered.
    const overlapped = await turnsUntil(() => store.versionsRead().length === 3);
    const startedBeforeRelease = store.versionsRead();
    const answeredBeforeRelease = answered;
    release();
    const result = await first;
    expect(startedBeforeRelease).toEqual([1, 2, 3]);
    expect(overlapped).toBe(true);
    expect(answeredBeforeRelease).toBe(false);
    // The answers: the live version's, the shadow compared beside it; the canary's for its share.
    expect([result.version, result.role]).toEqual([1, 'live']);
    expect(firstValue(result)).toBeCloseTo(linear(W[1], B[1], X), 5);
    expect(result.shadow).toMatchObject({ kind: 'compared', version: 3 });
    const canary = await answer(0.1);
    expect([canary.version, canary.role]).toEqual([2, 'canary']);
    expect(firstValue(canary)).toBeCloseTo(linear(W[2], B[2], X), 5);
    expect(service.serving).toEqual({
      live: 1,
      canary: { version: 2, weight: 50 },
      shadow: { version: 3, sample: 100 },
    });
    // Each object of each version was read once.
    expect(new Set(store.versionReads).size).toBe(store.versionReads.length);
  });

  it('starts the loads a changed pointer needs together, and swaps to them whole', async () => {
    const { store, service, point, answer, firstValue, later } = await setup();
    await point(1, {});
    expect((await answer(0.5)).version).toBe(1);
    // Promoted: version 2 live, version 3 its canary; neither is held yet.
    await point(2, { canary: { version: 3, weight: 50, since } });
    store.versionReads.length = 0;
    const release = hold(store);
    later();
    // The request that starts the re-check does not wait for it (recheckWaitMs 0).
    expect((await answer(0.5)).version).toBe(1);
    const overlapped = await turnsUntil(() => store.versionsRead().length === 2);
    const startedBeforeRelease = store.versionsRead();
    // Until the new set is whole, the old one answers everything.
    expect(service.serving).toEqual({ live: 1 });
    release();
    await service.settled();
    expect(startedBeforeRelease).toEqual([2, 3]);
    expect(overlapped).toBe(true);
    expect(service.serving).toEqual({ live: 2, canary: { version: 3, weight: 50 } });
    expect(firstValue(await answer(0.9))).toBeCloseTo(linear(W[2], B[2], X), 5);
    expect(firstValue(await answer(0.1))).toBeCloseTo(linear(W[3], B[3], X), 5);
  });

  it('answers from the live version when the canary loaded beside it fails to load', async () => {
    const { store, service, lines, point, answer, firstValue } = await setup();
    await point(1, { canary: { version: 2, weight: 100, since }, shadow: { version: 3, sample: 0, since } });
    const shard = [...store.objects.keys()].find((k) => k.includes('/versions/2/') && k.endsWith('.bin'))!;
    await store.put(shard, new Uint8Array([1, 2, 3]));
    const result = await answer(0);
    expect([result.version, result.role]).toEqual([1, 'live']);
    expect(firstValue(result)).toBeCloseTo(linear(W[1], B[1], X), 5);
    expect(service.serving).toEqual({ live: 1, shadow: { version: 3, sample: 0 } });
    expect(lines.join('\n')).toMatch(/error canary version failed to load; not served/);
  });

  it('keeps serving the held canary when a promotion beside it does not load', async () => {
    const { store, service, lines, point, answer, firstValue, later } = await setup({ fastPath: 'off' });
    await point(1, { canary: { version: 2, weight: 50, since } });
    expect((await answer(0.1)).version).toBe(2);
    const shard = [...store.objects.keys()].find((k) => k.includes('/versions/3/') && k.endsWith('.bin'))!;
    await store.put(shard, new Uint8Array([1, 2, 3]));
    await point(3, { canary: { version: 2, weight: 50, since } });
    later();
    await answer(0.9);
    await service.settled();
    expect(lines.join('\n')).toMatch(/new version failed to load; still serving the previous one/);
    expect(service.serving).toEqual({ live: 1, canary: { version: 2, weight: 50 } });
    // The canary the failed set shared with the served one was not freed: it still answers.
    expect(firstValue(await answer(0.1))).toBeCloseTo(linear(W[2], B[2], X), 5);
    expect(firstValue(await answer(0.9))).toBeCloseTo(linear(W[1], B[1], X), 5);
  });

  it('fails a cold start whose live version does not load, and frees what loaded beside it', async () => {
    const { store, service, lines, point, answer } = await setup({ fastPath: 'off' });
    await point(1, { canary: { version: 2, weight: 50, since }, shadow: { version: 3, sample: 100, since } });
    const shard = [...store.objects.keys()].find((k) => k.includes('/versions/1/') && k.endsWith('.bin'))!;
    await store.put(shard, new Uint8Array([1, 2, 3]));
    const before = runtime.tf.memory().numTensors;
    const failure = await Promise.resolve(answer(0.5)).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(ModelUnavailableError);
    expect((failure as Error).message).toMatch(/Version 1 of "m" cannot be served/);
    expect(service.serving).toBeUndefined();
    // The canary and shadow loaded on tfjs beside it hold no tensors now.
    expect(store.versionsRead()).toEqual([1, 2, 3]);
    expect(runtime.tf.memory().numTensors).toBe(before);
    expect(lines.join('\n')).toMatch(/error model could not be loaded/);
  });

  it('fails a cold start as the registry failure when the live version cannot be read, freeing its routes', async () => {
    const { store, service, lines, point, answer, later } = await setup({ fastPath: 'off' });
    await point(1, { canary: { version: 2, weight: 50, since }, shadow: { version: 3, sample: 100, since } });
    store.down.add(1);
    const before = runtime.tf.memory().numTensors;
    const failure = await Promise.resolve(answer(0.5)).catch((e: unknown) => e);
    // The registry's failure as itself (a 503 that says the registry is unavailable).
    expect(failure).toBeInstanceOf(RegistryUnavailableError);
    expect(service.serving).toBeUndefined();
    expect(runtime.tf.memory().numTensors).toBe(before);
    expect(lines.join('\n')).toMatch(/error model could not be loaded/);
    // Once the registry answers again, the next attempt serves the whole set.
    store.down.clear();
    later();
    expect((await answer(0.9)).version).toBe(1);
    expect(service.serving).toEqual({
      live: 1,
      canary: { version: 2, weight: 50 },
      shadow: { version: 3, sample: 100 },
    });
  });

  it('keeps the held routes and frees the new ones when a re-check cannot read the promoted version', async () => {
    const { store, service, lines, point, answer, firstValue, later } = await setup({ fastPath: 'off' });
    await point(1, { canary: { version: 2, weight: 50, since } });
    expect((await answer(0.1)).version).toBe(2);
    const before = runtime.tf.memory().numTensors;
    // Version 3 promoted, its canary still 2 (held), a new shadow 4; version 3 cannot be read.
    await point(3, { canary: { version: 2, weight: 50, since }, shadow: { version: 4, sample: 100, since } });
    store.down.add(3);
    later();
    await answer(0.9);
    await service.settled();
    expect(lines.join('\n')).toMatch(/warn alias check failed; still serving the loaded version/);
    expect(service.serving).toEqual({ live: 1, canary: { version: 2, weight: 50 } });
    // The shadow loaded beside it is freed; the held canary is not: it still answers.
    expect(store.versionsRead()).toContain(4);
    expect(runtime.tf.memory().numTensors).toBe(before);
    expect(firstValue(await answer(0.1))).toBeCloseTo(linear(W[2], B[2], X), 5);
    // The next re-check (after the failed one's back-off) tries again and installs the pointer's set.
    store.down.clear();
    later(10_000);
    await answer(0.9);
    await service.settled();
    expect(service.serving).toEqual({
      live: 3,
      canary: { version: 2, weight: 50 },
      shadow: { version: 4, sample: 100 },
    });
  });

  it('serves a shadow that fits only without a canary that fails to load', async () => {
    // 193 MiB holds the rule's base and 1 MiB of the rule's weight: this many bytes of files.
    const memoryMiB = MEMORY_RULE.baseMiB + 1;
    const room = Math.floor(2 ** 20 / MEMORY_RULE.weightMultiplier);
    const { service, lines, published, point, spoil, answer } = await setup({ memoryMiB });
    const size = (v: number) => filesBytes(published[v]!.files);
    // The canary's pointer claims a size that fits beside the live version, not beside the shadow too.
    const claimed = room - size(1) - size(3) + 1;
    const [first, ...others] = Object.entries(published[2]!.files);
    const canaryFiles = {
      ...Object.fromEntries(others),
      [first![0]]: { ...first![1], size: claimed - filesBytes(Object.fromEntries(others)) },
    };
    expect(filesBytes(canaryFiles)).toBe(claimed);
    await spoil(2);
    await point(1, {
      canary: { version: 2, weight: 50, since, files: canaryFiles },
      shadow: { version: 3, sample: 100, since },
    });
    const result = await answer(0.1);
    expect([result.version, result.role]).toEqual([1, 'live']);
    expect(result.shadow).toMatchObject({ kind: 'compared', version: 3 });
    expect(service.serving).toEqual({ live: 1, shadow: { version: 3, sample: 100 } });
    expect(lines.join('\n')).toMatch(/error canary version failed to load/);
    expect(lines.join('\n')).not.toMatch(/shadow version not loaded/);
  });

  it('starts no load beside a live version once it has failed', async () => {
    const { store, service, point, answer } = await setup();
    // The canary's pointer lists no files: its size is read first (held here), then it would load.
    await point(1, { canary: { version: 2, weight: 50, since, files: 'none' } });
    store.down.add(1);
    store.versionReads.length = 0;
    const release = hold(store, (key) => versionOf(key) === 2);
    let settled = false;
    const failure = Promise.resolve(answer(0.5))
      .catch((e: unknown) => e)
      .finally(() => {
        settled = true;
      });
    await turnsUntil(() => store.readsOf(1).length > 0 && (store.readsOf(2).length > 0 || settled));
    await new Promise((resolve) => setImmediate(resolve)); // the live version's failure is seen
    release();
    expect(await failure).toBeInstanceOf(RegistryUnavailableError);
    // At most the canary's size was read: none of its model's files.
    expect(store.readsOf(2).filter((k) => !k.endsWith('/metadata.json'))).toEqual([]);
    expect(service.serving).toBeUndefined();
  });

  it('serves a pointer written before pointers listed files, checking memory on the loaded size', async () => {
    const { store, service, lines, point, answer, firstValue } = await setup();
    await point(1, { canary: { version: 2, weight: 50, since } }, { liveFiles: false });
    store.versionReads.length = 0;
    expect((await answer(0.9)).version).toBe(1);
    expect(firstValue(await answer(0.1))).toBeCloseTo(linear(W[2], B[2], X), 5);
    expect(service.serving).toEqual({ live: 1, canary: { version: 2, weight: 50 } });
    expect(new Set(store.versionReads).size).toBe(store.versionReads.length);
    expect(lines.join('\n')).not.toMatch(/not loaded/);
    // Without routes it is served as before.
    const plain = await setup();
    await plain.point(3, {}, { liveFiles: false });
    expect(firstValue(await plain.answer(0.5))).toBeCloseTo(linear(W[3], B[3], X), 5);
  });

  it('frees what a cold start loaded when the service is disposed while it loads', async () => {
    const { store, service, point, answer } = await setup({ fastPath: 'off' });
    await point(1, { canary: { version: 2, weight: 50, since }, shadow: { version: 3, sample: 100, since } });
    const before = runtime.tf.memory().numTensors;
    const release = hold(store);
    const failure = Promise.resolve(answer(0.5)).catch((e: unknown) => e);
    expect(await turnsUntil(() => store.versionsRead().length === 3)).toBe(true);
    service.dispose();
    release();
    expect(await failure).toBeInstanceOf(ModelUnavailableError);
    expect(service.serving).toBeUndefined();
    expect(runtime.tf.memory().numTensors).toBe(before);
  });
});
