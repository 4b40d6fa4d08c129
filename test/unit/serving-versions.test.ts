/**
 * One function serving a live version with a canary and a shadow (functions/inference/service.ts,
 * served.ts), on an in-memory registry with a fake clock: requests split by weight and routing
 * key; a weight change loads nothing, a promotion makes the loaded canary live without reading it
 * again, an abort stops the canary; a canary that fails to load, or does not fit in memory, is
 * logged and never serves while the live version answers everything; an explicit version route
 * answers from the live or canary version only; a request that fails after its version was chosen
 * says which; a sampled request runs the shadow and its answer does not change.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_LIMITS, route } from '../../functions/inference/api.js';
import { configFromEnv } from '../../functions/inference/config.js';
import { choiceOf } from '../../functions/inference/served.js';
import { InferenceService, type ServiceResult } from '../../functions/inference/service.js';
import { RegistryUnavailableError, ValidationError } from '../../functions/shared/errors.js';
import { keys } from '../../functions/shared/registry/layout.js';
import { ModelRegistry } from '../../functions/shared/registry/registry.js';
import type { StoredObject } from '../../functions/shared/registry/store.js';
import type { AliasPointer } from '../../functions/shared/registry/types.js';
import type { TfRuntime } from '../../functions/shared/runtime/types.js';
import { createRuntime } from '../../layers/tfjs-runtime/runtime.js';
import { linesLog } from '../support/log.js';
import { MemoryObjectStore } from '../support/memory-store.js';
import { linear, publishLinear } from '../support/models.js';

/** A memory store that records the keys read, and fails reads of keys containing `failing`. */
class RecordingStore extends MemoryObjectStore {
  readonly reads: string[] = [];
  failing: string | undefined;
  override async get(key: string): Promise<StoredObject | undefined> {
    this.reads.push(key);
    if (this.failing !== undefined && key.includes(this.failing)) {
      throw new RegistryUnavailableError('the registry is down (test)');
    }
    return super.get(key);
  }
}

const W = {
  1: [1, 2, 3],
  2: [-1, 0, 2],
  3: [0.5, 0.5, 0.5],
} as const;
const B = { 1: 0.5, 2: 1, 3: -2 } as const;
const X = [1, 1, 1];
const BODY = JSON.stringify({ instances: [X] });
const predict = route('POST', '/v1/models/m:predict', 'm');

let runtime: TfRuntime;
beforeAll(async () => {
  runtime = await createRuntime('cpu');
});

async function setup(options: { memoryMiB?: number } = {}) {
  const store = new RecordingStore();
  const registry = new ModelRegistry(store);
  await publishLinear(runtime, registry, 'm', W[1], B[1], { promote: true });
  await publishLinear(runtime, registry, 'm', W[2], B[2]);
  await publishLinear(runtime, registry, 'm', W[3], B[3]);
  const lines: string[] = [];
  const log = linesLog(lines);
  let now = 0;
  let draw = 0.5;
  const service = new InferenceService({
    model: 'm',
    alias: 'live',
    aliasCheckMs: 1_000,
    limits: DEFAULT_LIMITS,
    registry,
    runtime: async () => runtime,
    log,
    now: () => now,
    random: () => draw,
    ...(options.memoryMiB !== undefined ? { memoryMiB: options.memoryMiB } : {}),
  });
  /** Rewrites the alias pointer: the live version and the routes beside it. */
  const point = async (fields: Partial<AliasPointer>) => {
    const object = await store.get(keys.alias('m', 'live'));
    const current = JSON.parse(new TextDecoder().decode(object!.body)) as AliasPointer;
    const { canary: _c, shadow: _s, ...rest } = current;
    const next = { ...rest, ...fields };
    if (fields.version !== undefined && fields.version !== current.version) {
      // A pointer's shortcuts describe its version: drop them for another.
      delete (next as { files?: unknown }).files;
      delete (next as { inline?: unknown }).inline;
    }
    await store.put(keys.alias('m', 'live'), JSON.stringify(next));
  };
  const since = new Date(0).toISOString();
  /** Lets the next request re-check, and waits for the re-check to end. */
  const recheck = async () => {
    now += 1_000;
    await service.handle(predict, BODY);
    await service.settled();
  };
  const answer = async (key?: string, r = 0.5, target = predict, body = BODY): Promise<ServiceResult> => {
    draw = r;
    return await service.handle(target, body, key);
  };
  const firstValue = (result: ServiceResult) =>
    JSON.parse(JSON.stringify(result.body)).predictions[0][0] as number;
  await answer();
  return { store, service, lines, point, since, recheck, answer, firstValue };
}

describe('a canary beside the live version', () => {
  it('splits requests by weight and key, and says which version answered', async () => {
    const { service, point, since, recheck, answer, firstValue } = await setup();
    await point({ canary: { version: 2, weight: 30, since } });
    await recheck();
    expect(service.serving).toEqual({ live: 1, canary: { version: 2, weight: 30 } });
    const low = await answer(undefined, 0.29);
    expect([low.version, low.role]).toEqual([2, 'canary']);
    expect(firstValue(low)).toBeCloseTo(linear(W[2], B[2], X), 5);
    const high = await answer(undefined, 0.31);
    expect([high.version, high.role]).toEqual([1, 'live']);
    expect(firstValue(high)).toBeCloseTo(linear(W[1], B[1], X), 5);
    // A key decides alone: the draw does not matter, and the same key gets the same version.
    const byKey = new Map<string, number>();
    for (let i = 0; i < 200; i++) byKey.set(`k${i}`, (await answer(`k${i}`, Math.random())).version!);
    for (let i = 0; i < 200; i++)
      expect((await answer(`k${i}`, Math.random())).version).toBe(byKey.get(`k${i}`));
    const inCanary = [...byKey.values()].filter((v) => v === 2).length;
    expect(inCanary).toBeGreaterThan(30);
    expect(inCanary).toBeLessThan(90);
  });

  it('changes the weight without loading anything, promotes the loaded canary, and stops it on abort', async () => {
    const { store, service, point, since, recheck, answer, lines } = await setup();
    await point({ canary: { version: 2, weight: 10, since } });
    await recheck();
    expect(store.reads.some((k) => k.includes('/versions/2/'))).toBe(true);
    store.reads.length = 0;
    await point({ canary: { version: 2, weight: 100, since } });
    await recheck();
    expect(service.serving).toEqual({ live: 1, canary: { version: 2, weight: 100 } });
    expect((await answer(undefined, 0.99)).version).toBe(2);
    // Promote: version 2 becomes live as loaded; none of its objects is read again.
    await point({ version: 2 });
    await recheck();
    expect(service.serving).toEqual({ live: 2 });
    expect((await answer(undefined, 0.01)).role).toBe('live');
    expect((await answer()).version).toBe(2);
    expect(store.reads.filter((k) => k.includes('/versions/'))).toEqual([]);
    expect(lines.join('\n')).toMatch(
      /now serving a newly promoted version \{"alias":"live","from":1,"to":2\}/,
    );
    // A new canary, then an abort: everything goes to the live version again.
    await point({ canary: { version: 3, weight: 50, since } });
    await recheck();
    expect((await answer(undefined, 0.1)).version).toBe(3);
    await point({});
    await recheck();
    expect(service.serving).toEqual({ live: 2 });
    for (const r of [0, 0.1, 0.5, 0.99]) expect((await answer(undefined, r)).version).toBe(2);
    expect(lines.join('\n')).toMatch(/canary stopped/);
  });

  it('answers an explicit version from the live or canary version only', async () => {
    const { point, since, recheck, answer } = await setup();
    await point({ canary: { version: 2, weight: 0, since } });
    await recheck();
    const v = (n: number, kind = ':predict') =>
      route(kind === ':predict' ? 'POST' : 'GET', `/v1/models/m/versions/${n}${kind}`, 'm');
    expect((await answer(undefined, 0, v(2))).version).toBe(2);
    expect((await answer(undefined, 0.99, v(1))).version).toBe(1);
    expect((await answer(undefined, 0, v(2, '/metadata'))).version).toBe(2);
    // Un-keyed at weight 0: never the canary. Status and metadata: the live version.
    expect((await answer(undefined, 0)).version).toBe(1);
    expect((await answer(undefined, 0, route('GET', '/v1/models/m', 'm'))).version).toBe(1);
    await expect(answer(undefined, 0, v(3))).rejects.toThrow(
      /Version 3 of "m" is not served; alias "live" serves version 1 and canary version 2/,
    );
  });

  it('names the chosen version on an error after the choice', async () => {
    const { point, since, recheck, answer } = await setup();
    await point({ canary: { version: 2, weight: 50, since } });
    await recheck();
    const failure = await answer(undefined, 0.2, predict, '{"instances": [[1, 2]]}').catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(ValidationError);
    expect(choiceOf(failure)).toEqual({ version: 2, role: 'canary' });
    const live = await answer(undefined, 0.8, predict, 'not json').catch((e: unknown) => e);
    expect(choiceOf(live)).toEqual({ version: 1, role: 'live' });
  });

  it('never serves a canary that fails to load, and keeps answering from the live version', async () => {
    const { store, service, point, since, recheck, answer, lines } = await setup();
    // Version 2's weights damaged after publishing: it does not verify.
    const shard = [...store.objects.keys()].find((k) => k.includes('/versions/2/') && k.endsWith('.bin'))!;
    await store.put(shard, new Uint8Array([1, 2, 3]));
    await point({ canary: { version: 2, weight: 100, since } });
    await recheck();
    expect(service.serving).toEqual({ live: 1 });
    expect(lines.join('\n')).toMatch(/error canary version failed to load; not served/);
    for (const r of [0, 0.5]) expect((await answer(undefined, r)).version).toBe(1);
    // A version that does not exist: the same.
    await point({ canary: { version: 9, weight: 100, since } });
    await recheck();
    expect(service.serving).toEqual({ live: 1 });
    expect((await answer(undefined, 0)).version).toBe(1);
  });

  it('retries a canary the registry failed to give at the next re-check, the pointer unchanged', async () => {
    const { store, service, point, since, recheck, answer, lines } = await setup();
    store.failing = '/versions/2/';
    await point({ canary: { version: 2, weight: 100, since } });
    await recheck();
    expect(service.serving).toEqual({ live: 1 });
    expect(lines.join('\n')).toMatch(/warn canary version not loaded yet: the registry failed/);
    expect((await answer(undefined, 0)).version).toBe(1);
    store.failing = undefined;
    await recheck();
    expect(service.serving).toEqual({ live: 1, canary: { version: 2, weight: 100 } });
    expect((await answer(undefined, 0.5)).version).toBe(2);
  });

  it('refuses a canary or shadow that does not fit in memory beside the live version', async () => {
    // The rule's base alone is 192 MiB: 192 leaves no room for any second version, 256 does.
    const tight = await setup({ memoryMiB: 192 });
    await tight.point({
      canary: { version: 2, weight: 50, since: tight.since },
      shadow: { version: 3, sample: 100, since: tight.since },
    });
    await tight.recheck();
    expect(tight.service.serving).toEqual({ live: 1 });
    expect(tight.lines.join('\n')).toMatch(
      /error canary version not loaded: it does not fit in the function's memory.*"needMiB":193,"memoryMiB":192/,
    );
    expect(tight.lines.join('\n')).toMatch(/error shadow version not loaded: it does not fit/);
    expect(tight.store.reads.some((k) => k.includes('/versions/2/') && !k.endsWith('metadata.json'))).toBe(
      false,
    );
    const roomy = await setup({ memoryMiB: 256 });
    await roomy.point({ canary: { version: 2, weight: 50, since: roomy.since } });
    await roomy.recheck();
    expect(roomy.service.serving).toEqual({ live: 1, canary: { version: 2, weight: 50 } });
  });
});

describe('a shadow beside the live version', () => {
  it('runs on sampled requests after the answer, which it does not change', async () => {
    const { service, point, since, recheck, answer, firstValue } = await setup();
    await point({ shadow: { version: 3, sample: 50, since } });
    await recheck();
    expect(service.serving).toEqual({ live: 1, shadow: { version: 3, sample: 50 } });
    const sampledAnswer = await answer(undefined, 0.1);
    const plain = await answer(undefined, 0.9);
    expect(plain.shadow).toBeUndefined();
    expect(firstValue(sampledAnswer)).toBe(firstValue(plain));
    expect(sampledAnswer.version).toBe(1);
    const want = Math.abs(linear(W[1], B[1], X) - linear(W[3], B[3], X));
    expect(sampledAnswer.shadow).toMatchObject({ kind: 'compared', version: 3, topClassRows: 0 });
    expect((sampledAnswer.shadow as { maxAbsDiff: number }).maxAbsDiff).toBeCloseTo(want, 5);
  });
});

describe("the function's memory", () => {
  it("is read from Lambda's AWS_LAMBDA_FUNCTION_MEMORY_SIZE, and a value that is not a size is refused naming it", () => {
    const env = { AIAAS_BUCKET: 'b', AIAAS_MODEL: 'm' };
    expect(configFromEnv(env).memoryMiB).toBeUndefined();
    expect(configFromEnv({ ...env, AWS_LAMBDA_FUNCTION_MEMORY_SIZE: '1769' }).memoryMiB).toBe(1769);
    expect(() => configFromEnv({ ...env, AWS_LAMBDA_FUNCTION_MEMORY_SIZE: 'lots' })).toThrow(
      /AWS_LAMBDA_FUNCTION_MEMORY_SIZE/,
    );
  });
});
