/**
 * When a function reads its registry (functions/inference/recheck.ts), and the service applying
 * it with a store whose alias reads the test holds open and a fake clock: a warm function answers
 * every request that does not start a re-check at once (synchronously) while one is pending or
 * failing; the request that starts one waits for it at most a short budget and is answered by a
 * version it swapped to; one re-check is in flight; re-checks back off after failures and return
 * to the interval after a success. A re-check frozen mid-flight (Lambda freezes the environment
 * between invocations; here the clock jumps past the S3 time limit) is not a failure: the next
 * request re-checks and waits for it in full, so a promotion is still picked up.
 */
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_LIMITS, route } from '../../functions/inference/api.js';
import {
  afterCheck,
  aliasChange,
  type CheckEnd,
  defaultMaxBackoffMs,
  nextStep,
  type RecheckPolicy,
  recheckDelayMs,
  type ServingState,
} from '../../functions/inference/recheck.js';
import { InferenceService, type Log, type ServiceResult } from '../../functions/inference/service.js';
import { RegistryUnavailableError } from '../../functions/shared/errors.js';
import { ModelRegistry } from '../../functions/shared/registry/registry.js';
import type { StoredObject } from '../../functions/shared/registry/store.js';
import type { TfRuntime } from '../../functions/shared/runtime/types.js';
import { createRuntime } from '../../layers/tfjs-runtime/runtime.js';
import { MemoryObjectStore } from '../support/memory-store.js';
import { publishLinear } from '../support/models.js';

const POLICY: RecheckPolicy = { intervalMs: 1_000, maxBackoffMs: 8_000, retryAfterMs: 500 };
const serving = (checkedAt: number, failures = 0): ServingState<string, Error> => ({
  kind: 'serving',
  served: 'v1',
  checkedAt,
  failures,
});

describe('nextStep and recheckDelayMs', () => {
  it('answers from memory before the interval, and starts one re-check once it is up', () => {
    expect(nextStep(serving(0), false, 999, POLICY)).toBe('answer');
    expect(nextStep(serving(0), false, 1_000, POLICY)).toBe('answer-and-check');
    // A re-check in flight: never a second one, and never a wait.
    expect(nextStep(serving(0), true, 1_000_000, POLICY)).toBe('answer');
  });

  it('backs off after failures, doubling from the interval up to the cap, and resets on success', () => {
    expect([0, 1, 2, 3, 4, 10, 1e9].map((n) => recheckDelayMs(n, POLICY))).toEqual([
      1_000, 2_000, 4_000, 8_000, 8_000, 8_000, 8_000,
    ]);
    expect(nextStep(serving(0, 1), false, 1_999, POLICY)).toBe('answer');
    expect(nextStep(serving(0, 1), false, 2_000, POLICY)).toBe('answer-and-check');
    expect(nextStep(serving(0, 0), false, 1_000, POLICY)).toBe('answer-and-check');
  });

  it('loads when cold, fails fast right after a failed load, then tries again', () => {
    const failed: ServingState<string, Error> = { kind: 'failed', failure: new Error('x'), at: 100 };
    expect(nextStep({ kind: 'cold' }, false, 0, POLICY)).toBe('load');
    expect(nextStep({ kind: 'cold' }, true, 0, POLICY)).toBe('load');
    expect(nextStep(failed, false, 599, POLICY)).toBe('fail');
    expect(nextStep(failed, false, 600, POLICY)).toBe('load');
    // A retry already in flight is joined rather than answered with the old failure.
    expect(nextStep(failed, true, 101, POLICY)).toBe('load');
  });

  it('keeps the delay between the interval and the cap, growing with failures (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 3_600_000 }),
        fc.integer({ min: 0, max: 7_200_000 }),
        fc.nat(100),
        (intervalMs, maxBackoffMs, failures) => {
          const policy = { intervalMs, maxBackoffMs, retryAfterMs: 1_000 };
          const delay = recheckDelayMs(failures, policy);
          expect(delay).toBeGreaterThanOrEqual(intervalMs);
          expect(delay).toBeLessThanOrEqual(Math.max(intervalMs, maxBackoffMs));
          expect(recheckDelayMs(failures + 1, policy)).toBeGreaterThanOrEqual(delay);
          expect(Number.isFinite(delay)).toBe(true);
        },
      ),
    );
  });

  it('caps the default back-off at eight intervals, and at five minutes for long intervals', () => {
    expect(defaultMaxBackoffMs(1_000)).toBe(8_000);
    expect(defaultMaxBackoffMs(60_000)).toBe(300_000);
    expect(defaultMaxBackoffMs(600_000)).toBe(600_000);
  });
});

describe('aliasChange: what a re-check does with the alias it read', () => {
  const rejected = (etag: string) => etag === '"bad"';
  it('keeps serving when the pointer is unchanged, names the served version, or a version rejected before', () => {
    expect(aliasChange('unchanged', 1, rejected)).toBe('unchanged');
    expect(aliasChange({ version: 1, etag: '"new"' }, 1, rejected)).toBe('retagged');
    expect(aliasChange({ version: 2, etag: '"bad"' }, 1, rejected)).toBe('rejected-before');
  });

  it('says the alias is gone when it no longer exists, and loads a newly promoted version', () => {
    expect(aliasChange(undefined, 1, rejected)).toBe('gone');
    expect(aliasChange({ version: 2, etag: '"good"' }, 1, rejected)).toBe('promoted');
    // A rollback to an older version is a promotion too.
    expect(aliasChange({ version: 0, etag: '"old"' }, 1, rejected)).toBe('promoted');
  });
});

describe('afterCheck: a re-check frozen mid-flight is not a failure', () => {
  const LIMITED: RecheckPolicy = { ...POLICY, limitMs: 6_000 };
  const end = (over: Partial<CheckEnd<string>>): CheckEnd<string> => ({
    served: 'v1',
    failed: true,
    startedAt: 1_000,
    endedAt: 4_000,
    waited: false,
    ...over,
  });

  it('resets the failures after a success, however long it took', () => {
    expect(afterCheck(3, end({ failed: false, served: 'v2', endedAt: 1e9 }), LIMITED)).toEqual({
      kind: 'serving',
      served: 'v2',
      checkedAt: 1e9,
      failures: 0,
    });
  });

  it('counts a failure within the time limit (the registry failed): the next waits longer', () => {
    const state = afterCheck(1, end({ endedAt: 7_000 }), LIMITED);
    expect(state).toEqual({ kind: 'serving', served: 'v1', checkedAt: 7_000, failures: 2 });
    expect(nextStep(state, false, 7_000 + recheckDelayMs(2, LIMITED) - 1, LIMITED)).toBe('answer');
  });

  it('does not count a failure later than the time limit: the next request re-checks and waits for it', () => {
    const state = afterCheck(1, end({ endedAt: 1_000 + 6_001 }), LIMITED);
    expect(state).toEqual({
      kind: 'serving',
      served: 'v1',
      checkedAt: 7_001,
      failures: 1,
      interrupted: true,
    });
    // At once, whatever the interval or the back-off, unless a read is already in flight.
    expect(nextStep(state, false, 7_001, LIMITED)).toBe('check-then-answer');
    expect(nextStep(state, true, 7_001, LIMITED)).toBe('answer');
  });

  it('counts a failure that requests kept arriving during, however long it took (the function ran)', () => {
    expect(afterCheck(1, end({ endedAt: 1e9, quietMs: 1_000 }), LIMITED).failures).toBe(2);
    expect(afterCheck(1, end({ endedAt: 1e9, quietMs: 6_001 }), LIMITED)).toMatchObject({
      failures: 1,
      interrupted: true,
    });
  });

  it('counts a failure a request waited for in full, or with no time limit given, however long it took', () => {
    expect(afterCheck(0, end({ endedAt: 1e9, waited: true }), LIMITED).failures).toBe(1);
    expect(afterCheck(0, end({ endedAt: 1e9 }), POLICY).failures).toBe(1);
  });

  it('counts a failure exactly when it ended within the limit or was waited for (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 600_000 }),
        fc.integer({ min: 0, max: 1_200_000 }),
        fc.boolean(),
        fc.nat(50),
        (limitMs, tookMs, waited, failures) => {
          const policy = { ...POLICY, limitMs };
          const state = afterCheck(failures, end({ startedAt: 5, endedAt: 5 + tookMs, waited }), policy);
          const counted = waited || tookMs <= limitMs;
          expect(state.failures).toBe(counted ? failures + 1 : failures);
          expect(state.interrupted === true).toBe(!counted);
          expect(state.checkedAt).toBe(5 + tookMs);
        },
      ),
    );
  });
});

/** A memory store whose alias re-checks (conditional GETs) wait until the test settles them. */
class HeldStore extends MemoryObjectStore {
  hold = false;
  readonly held: { resolve: () => void; reject: (error: Error) => void }[] = [];
  checks = 0;

  override async getIfChanged(key: string, etag: string): Promise<StoredObject | 'unchanged' | undefined> {
    this.checks++;
    if (this.hold) {
      await new Promise<void>((resolve, reject) => {
        this.held.push({ resolve, reject });
      });
    }
    return super.getIfChanged(key, etag);
  }
}

describe('InferenceService re-checks', () => {
  let runtime: TfRuntime;
  beforeAll(async () => {
    runtime = await createRuntime('cpu');
  });

  /** The budget of the request that starts a re-check, where the test needs it to run out. */
  const BUDGET_MS = 20;
  /** The S3 time limit given to the service: a failure that took longer was a freeze. */
  const LIMIT_MS = 5_000;

  async function setup(options: { recheckWaitMs?: number } = {}) {
    const store = new HeldStore();
    const registry = new ModelRegistry(store);
    await publishLinear(runtime, registry, 'm', [1, 2, 3], 0.5, { promote: true });
    const lines: string[] = [];
    const log: Log = {
      info: (m) => lines.push(`info ${m}`),
      warn: (m) => lines.push(`warn ${m}`),
      error: (m) => lines.push(`error ${m}`),
    };
    let now = 0;
    const service = new InferenceService({
      model: 'm',
      alias: 'live',
      aliasCheckMs: 1_000,
      maxBackoffMs: 8_000,
      recheckWaitMs: options.recheckWaitMs ?? BUDGET_MS,
      recheckLimitMs: LIMIT_MS,
      limits: DEFAULT_LIMITS,
      registry,
      runtime: async () => runtime,
      log,
      now: () => now,
    });
    const predict = route('POST', '/v1/models/m:predict', 'm');
    const body = '{"instances": [[1, 1, 1]]}';
    /** A request that must be answered at once, from memory. */
    const now200 = () => {
      const answer = service.handle(predict, body);
      expect(answer).not.toBeInstanceOf(Promise);
      const result = answer as ServiceResult;
      expect(result.status).toBe(200);
      return result.version;
    };
    /** A request that starts a re-check (it may wait for it: a promise), answered 200. */
    const start = () => {
      const answer = service.handle(predict, body);
      let answered = false;
      const result = Promise.resolve(answer).then((r) => {
        answered = true;
        expect(r.status).toBe(200);
        return r.version;
      });
      return { result, waits: answer instanceof Promise, answered: () => answered };
    };
    const due = () => start().result;
    const cold = await service.handle(predict, body);
    expect(cold.status).toBe(200);
    return {
      store,
      registry,
      service,
      lines,
      now200,
      start,
      due,
      at: (ms: number) => {
        now = ms;
      },
    };
  }

  it('answers at once while a re-check is pending, with one re-check in flight', async () => {
    const { store, service, now200, due, at } = await setup();
    store.hold = true;
    at(1_000);
    expect(await due()).toBe(1); // starts the re-check, waits for it only the budget
    expect(service.readingRegistry).toBe(true);
    for (let t = 1_000; t < 60_000; t += 5_000) {
      at(t);
      expect(now200()).toBe(1);
    }
    await new Promise((resolve) => setImmediate(resolve));
    expect(store.checks).toBe(1);
    store.held.shift()!.resolve();
    await service.settled();
    expect(service.readingRegistry).toBe(false);
  });

  it('backs off after failed re-checks, resets after a success, and swaps when S3 answers', async () => {
    const { store, registry, service, lines, now200, due, at } = await setup();
    store.hold = true;
    const fail = async (t: number) => {
      store.held.shift()!.reject(new RegistryUnavailableError('Registry memory://test is unavailable'));
      at(t);
      await service.settled();
    };
    at(1_000);
    await due();
    await fail(2_000); // failures: 1, next re-check 2 s after this one ended
    at(3_999);
    now200();
    expect(store.checks).toBe(1);
    at(4_000);
    await due();
    expect(store.checks).toBe(2);
    await fail(5_000); // failures: 2, next after 4 s
    at(8_999);
    now200();
    expect(store.checks).toBe(2);
    at(9_000);
    await due();
    expect(store.checks).toBe(3);
    expect(
      lines.filter((l) => l === 'warn alias check failed; still serving the loaded version'),
    ).toHaveLength(2);

    // S3 answers again, with a newly promoted version: swapped, and the interval is back to 1 s.
    store.hold = false;
    const v2 = await publishLinear(runtime, registry, 'm', [2, 2, 2], 0);
    await registry.setAlias('m', 'live', v2.version);
    store.held.shift()!.resolve();
    at(10_000);
    await service.settled();
    expect(now200()).toBe(v2.version);
    at(10_999);
    now200();
    expect(store.checks).toBe(3);
    at(11_000);
    expect(await due()).toBe(v2.version);
    expect(store.checks).toBe(4);
    await service.settled();
  });

  it('answers the request that starts a re-check from a version promoted meanwhile, when S3 is healthy', async () => {
    // A budget far above what the check takes here: that request gets whatever the check ended with.
    const { registry, service, now200, due, at } = await setup({ recheckWaitMs: 60_000 });
    const v2 = await publishLinear(runtime, registry, 'm', [2, 2, 2], 0);
    await registry.setAlias('m', 'live', v2.version);
    at(999);
    expect(now200()).toBe(1);
    at(1_000);
    expect(await due()).toBe(v2.version);
    expect(service.readingRegistry).toBe(false);
    expect(now200()).toBe(v2.version);
  });

  it('answers the request that starts a re-check from the held version after the budget, the others at once', async () => {
    const { store, registry, service, now200, start, at } = await setup({ recheckWaitMs: BUDGET_MS });
    store.hold = true;
    const v2 = await publishLinear(runtime, registry, 'm', [2, 2, 2], 0);
    await registry.setAlias('m', 'live', v2.version);
    at(1_000);
    const first = start();
    expect(first.waits).toBe(true);
    // While it waits, other requests are answered at once from the held version.
    expect(now200()).toBe(1);
    expect(first.answered()).toBe(false);
    // The alias read never answers: the budget runs out and the held version answers.
    expect(await first.result).toBe(1);
    expect(store.held).toHaveLength(1);
    expect(service.readingRegistry).toBe(true);
    expect(now200()).toBe(1);
    // The read answers later: the promotion is picked up by the re-check going on beside the requests.
    store.hold = false;
    store.held.shift()!.resolve();
    await service.settled();
    expect(now200()).toBe(v2.version);
  });

  it('does not count a re-check frozen until it failed: the next request re-checks, waits for it in full and picks up a promotion', async () => {
    const { store, registry, service, lines, now200, start, due, at } = await setup();
    store.hold = true;
    at(1_000);
    expect(await due()).toBe(1); // the budget runs out; the read goes on... and the function freezes
    // Thawed far past the S3 time limit: the read's timeout fired during the freeze.
    at(1_000 + 20 * LIMIT_MS);
    store.held.shift()!.reject(new RegistryUnavailableError('Registry memory://test is unavailable'));
    await service.settled();

    // Promoted meanwhile. The next request re-checks at once (no back-off) and waits for all of it,
    // longer than the budget; the others meanwhile are answered at once.
    const v2 = await publishLinear(runtime, registry, 'm', [2, 2, 2], 0);
    await registry.setAlias('m', 'live', v2.version);
    const next = start();
    expect(store.checks).toBe(2);
    expect(next.waits).toBe(true);
    expect(now200()).toBe(1);
    await new Promise((resolve) => setTimeout(resolve, BUDGET_MS * 5));
    expect(next.answered()).toBe(false);
    expect(now200()).toBe(1);
    store.hold = false;
    store.held.shift()!.resolve();
    expect(await next.result).toBe(v2.version);
    expect(now200()).toBe(v2.version);
    // Back to the interval.
    at(1_000 + 20 * LIMIT_MS + 999);
    expect(now200()).toBe(v2.version);
    expect(store.checks).toBe(2);
    expect(lines).toContain('info alias check interrupted by a freeze; the next request checks again');
    expect(lines.filter((l) => l.startsWith('warn alias check failed'))).toEqual([]);
  });

  it('counts a slow re-check that fails while requests keep arriving: it was running, not frozen', async () => {
    const { store, service, lines, now200, due, at } = await setup();
    store.hold = true;
    at(1_000);
    expect(await due()).toBe(1);
    // Requests every second, for far longer than the S3 time limit, all answered from memory.
    for (let t = 2_000; t <= 1_000 + 20 * LIMIT_MS; t += 1_000) {
      at(t);
      expect(now200()).toBe(1);
    }
    store.held.shift()!.reject(new RegistryUnavailableError('Registry memory://test is unavailable'));
    await service.settled();
    expect(lines.filter((l) => l.startsWith('warn alias check failed'))).toHaveLength(1);
    expect(lines).not.toContain('info alias check interrupted by a freeze; the next request checks again');
    // Backed off: the next request answers at once and starts nothing.
    at(1_000 + 20 * LIMIT_MS + 1);
    expect(now200()).toBe(1);
    expect(store.checks).toBe(1);
  });

  it('counts a failure of a re-check its request waited for in full, however long it took', async () => {
    const { store, service, lines, now200, start, due, at } = await setup();
    store.hold = true;
    at(1_000);
    await due();
    at(1_000 + 20 * LIMIT_MS);
    store.held.shift()!.reject(new RegistryUnavailableError('Registry memory://test is unavailable'));
    await service.settled();
    // The next request waits for its re-check; the registry fails it (the clock jumps too, but the
    // process ran throughout): a failure, and the one after waits for the back-off.
    const next = start();
    at(2_000 + 40 * LIMIT_MS);
    store.held.shift()!.reject(new RegistryUnavailableError('Registry memory://test is unavailable'));
    expect(await next.result).toBe(1);
    expect(lines.filter((l) => l.startsWith('warn alias check failed'))).toHaveLength(1);
    expect(now200()).toBe(1);
    expect(store.checks).toBe(2);
  });
});
