/**
 * When a function reads its registry (functions/inference/recheck.ts), and the service applying
 * it with a store whose alias reads the test holds open: a warm function answers every request at
 * once (synchronously) while a re-check is pending or failing, keeps one re-check in flight, backs
 * off after failures and returns to the interval after a success.
 */
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_LIMITS, route } from '../../functions/inference/api.js';
import {
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

  async function setup() {
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
    const cold = await service.handle(predict, body);
    expect(cold.status).toBe(200);
    return {
      store,
      registry,
      service,
      lines,
      now200,
      at: (ms: number) => {
        now = ms;
      },
    };
  }

  it('answers at once while a re-check is pending, with one re-check in flight', async () => {
    const { store, service, now200, at } = await setup();
    store.hold = true;
    at(1_000);
    expect(now200()).toBe(1); // starts the re-check beside the request
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
    const { store, registry, service, lines, now200, at } = await setup();
    store.hold = true;
    const fail = async (t: number) => {
      store.held.shift()!.reject(new RegistryUnavailableError('Registry memory://test is unavailable'));
      at(t);
      await service.settled();
    };
    at(1_000);
    now200();
    await fail(2_000); // failures: 1, next re-check 2 s after this one ended
    at(3_999);
    now200();
    expect(store.checks).toBe(1);
    at(4_000);
    now200();
    expect(store.checks).toBe(2);
    await fail(5_000); // failures: 2, next after 4 s
    at(8_999);
    now200();
    expect(store.checks).toBe(2);
    at(9_000);
    now200();
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
    now200();
    expect(store.checks).toBe(4);
    await service.settled();
  });
});
