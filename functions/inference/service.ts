/**
 * The model behind one function: loaded on first use, kept warm in memory, re-checked against its
 * alias, swapped to a newly promoted version without a restart. A version that fails to load or
 * verify never replaces the one being served, and is not read again.
 *
 * Laid out as state + pure decisions + effects:
 * - state: `state` (cold / failed / serving, recheck.ts's ServingState), the one registry read in
 *   flight, and the alias pointers whose version was rejected;
 * - decisions (recheck.ts, pure): what a request does (`nextStep`), what a re-check's read means
 *   (`aliasChange`), the state a re-check leaves (`afterCheck`);
 * - effects (here): reading the alias, loading a version (version-load.ts), installing it, logging;
 *   answering a route from the version served is served.ts's.
 * One concept that reads better whole (a little over 400 lines): each effect changes the same
 * state, and read apart they would hide which transitions exist.
 *
 * In Lambda, work left running when a response is returned is frozen with the environment and only
 * goes on while a later invocation runs, its S3 timers expiring meanwhile. So the request that
 * starts a re-check waits for it a little (`recheckWaitMs`), and one frozen until it failed is
 * followed by a re-check that its request waits for in full. Other requests never wait.
 */
import { monotonicMs } from '../shared/clock.js';
import { AiaasError, ModelUnavailableError, RegistryUnavailableError } from '../shared/errors.js';
import type { RegistryReader } from '../shared/registry/registry.js';
import type { AliasPointer } from '../shared/registry/types.js';
import type { TfRuntime } from '../shared/runtime/types.js';
import type { Log } from './log.js';
import type { Limits } from './predict-request.js';
import {
  afterCheck,
  aliasChange,
  defaultMaxBackoffMs,
  nextStep,
  type RecheckPolicy,
  recheckDelayMs,
  type ServingState,
} from './recheck.js';
import type { Route } from './routes.js';
import { answerFrom, type Served, type ServedBy, type ServiceResult } from './served.js';
import { loadVersion, type VersionSource } from './version-load.js';

export type { Log } from './log.js';
export type { ServiceResult } from './served.js';

export interface InferenceOptions {
  readonly model: string;
  readonly alias: string;
  /**
   * Re-read the alias this long after the last check. Only the request that starts a re-check
   * waits for it, and for at most `recheckWaitMs`: the loaded version answers the rest while it is
   * pending or failing.
   */
  readonly aliasCheckMs: number;
  /** While re-checks fail, wait at most this long between them. @default eight intervals, at most five minutes */
  readonly maxBackoffMs?: number;
  /**
   * The request that starts a re-check waits for it this long at most, then answers from the
   * version it holds; the re-check goes on beside the next requests. Long enough for a healthy
   * conditional GET of the alias and a small version's load, so in Lambda (which freezes the
   * environment when the handler returns) a re-check usually ends inside the invocation that
   * started it; short enough that a silent registry costs one request that much per re-check.
   * 0: that request does not wait either. @default 200
   */
  readonly recheckWaitMs?: number;
  /**
   * The longest a failing re-check can take while the process runs: the S3 client's timeouts ×
   * attempts. One that failed later was frozen mid-flight (Lambda), not failed by the registry: it
   * does not count as a failure, and the next request re-checks and waits for it in full.
   * @default none: every failed re-check counts as a failure
   */
  readonly recheckLimitMs?: number;
  readonly limits: Limits;
  readonly registry: RegistryReader;
  /** Loads tfjs; called only for a version that needs it, never at import. */
  readonly runtime: () => Promise<TfRuntime>;
  /**
   * `auto`: small dense models run on the fast path (no tfjs), the rest on tfjs; `off`: all on tfjs.
   * @default 'auto'
   */
  readonly fastPath?: 'auto' | 'off';
  readonly log: Log;
  readonly now?: () => number;
  /** After a failed cold load, wait this long before the next attempt (answering 503 meanwhile). */
  readonly retryAfterMs?: number;
}

type State = ServingState<Served, AiaasError>;
type Serving = Extract<State, { kind: 'serving' }>;
const COLD: State = { kind: 'cold' };

type Pointer = AliasPointer & { readonly etag: string };

/** A version that did not load or verify, and why (for the log). */
interface Rejected {
  readonly rejected: string;
  readonly error: unknown;
}

/** See the module comment. */
export class InferenceService {
  private state: State = COLD;
  /** The one registry read in flight: a cold load (requests wait for it) or a re-check (only the request that started it waits). */
  private reading: Promise<Served> | undefined;
  /** Bumped by dispose(): a read started before must not install what it read. */
  private epoch = 0;
  /** When the last request arrived, and the longest wait for one during the re-check in flight. */
  private lastRequestAt = Number.NEGATIVE_INFINITY;
  private quietMs = 0;
  /** Pointer etags whose version failed verification, and why: versions are immutable, so don't retry them. */
  private readonly rejected = new Map<string, string>();
  private readonly now: () => number;
  private readonly policy: RecheckPolicy;
  private readonly waitMs: number;
  private readonly by: ServedBy;
  private readonly source: VersionSource;

  constructor(private readonly options: InferenceOptions) {
    this.now = options.now ?? monotonicMs;
    this.policy = {
      intervalMs: options.aliasCheckMs,
      maxBackoffMs: options.maxBackoffMs ?? defaultMaxBackoffMs(options.aliasCheckMs),
      retryAfterMs: options.retryAfterMs ?? 1_000,
      limitMs: options.recheckLimitMs,
    };
    this.waitMs = options.recheckWaitMs ?? 200;
    this.by = { model: options.model, alias: options.alias, limits: options.limits };
    this.source = {
      registry: options.registry,
      model: options.model,
      runtime: options.runtime,
      fastPath: options.fastPath ?? 'auto',
      log: options.log,
    };
  }

  /** The version being served, if any (for logs and metrics). */
  get version(): number | undefined {
    return this.state.kind === 'serving' ? this.state.served.version : undefined;
  }

  /** Whether a registry read (a load or a re-check) is in flight. */
  get readingRegistry(): boolean {
    return this.reading !== undefined;
  }

  /** Settles once the registry read in flight, if any, has ended (for tests and benchmarks). */
  async settled(): Promise<void> {
    await this.reading?.catch(() => undefined);
  }

  /**
   * Frees the loaded model (its tfjs tensors); the next request loads it again. For tests and
   * benchmarks: call it only when no request is in flight. A re-check still running ends unseen.
   */
  dispose(): void {
    if (this.state.kind === 'serving') this.state.served.executor.dispose();
    this.state = COLD;
    this.reading = undefined;
    this.epoch++;
  }

  /**
   * Answers a route. Synchronous once a version is loaded and no re-check is due (no promise, no
   * microtask hop); a promise for the request that starts a re-check (it waits for it, see
   * InferenceOptions.recheckWaitMs) and while the model loads.
   */
  handle(route: Route, body: string): ServiceResult | Promise<ServiceResult> {
    const state = this.state;
    const now = this.now();
    if (this.reading !== undefined) this.quietMs = Math.max(this.quietMs, now - this.lastRequestAt);
    this.lastRequestAt = now;
    const step = nextStep(state, this.reading !== undefined, now, this.policy);
    if (step === 'answer') return answerFrom((state as Serving).served, route, body, this.by);
    if (step === 'answer-and-check' || step === 'check-then-answer') {
      const { served } = state as Serving;
      const check = this.recheck(served, step === 'check-then-answer');
      if (step === 'check-then-answer') {
        // Waited for in full (the function stays thawed), but never past what a running check takes.
        const limit = this.policy.limitMs;
        const waited = limit === undefined ? check : settledWithin(check, limit);
        return waited.then(() => this.answerNow(route, body));
      }
      if (!(this.waitMs > 0)) return answerFrom(served, route, body, this.by);
      return settledWithin(check, this.waitMs).then(() => this.answerNow(route, body));
    }
    if (step === 'fail') throw (state as Extract<State, { kind: 'failed' }>).failure;
    return this.loadOnce().then((served) => answerFrom(served, route, body, this.by));
  }

  /** Answers from what is served now (a re-check may have swapped it), loading if nothing is. */
  private answerNow(route: Route, body: string): ServiceResult | Promise<ServiceResult> {
    return this.state.kind === 'serving'
      ? answerFrom(this.state.served, route, body, this.by)
      : this.handle(route, body);
  }

  /** The cold load every waiting request shares (one at a time). */
  private loadOnce(): Promise<Served> {
    if (this.reading) return this.reading;
    const reading: Promise<Served> = this.coldLoad(this.epoch).finally(() => {
      if (this.reading === reading) this.reading = undefined;
    });
    this.reading = reading;
    return reading;
  }

  /**
   * Starts a re-check; its outcome lands in `state`. `waited`: a request waits for all of it (the
   * process runs throughout, so a failure is the registry's).
   */
  private recheck(served: Served, waited: boolean): Promise<Served> {
    const reading: Promise<Served> = this.check(served, this.epoch, waited).finally(() => {
      if (this.reading === reading) this.reading = undefined;
    });
    this.reading = reading;
    reading.catch(() => undefined);
    return reading;
  }

  /**
   * Loads the version the alias names, with nothing loaded yet. Its failure is the answer (503)
   * for `retryAfterMs`, then the next request tries again. Callers see a message that names the
   * model and the version, never the registry's details (logged here, once per attempt).
   */
  private async coldLoad(epoch: number): Promise<Served> {
    const { registry, model, alias, log } = this.options;
    try {
      const pointer = await registry.getAlias(model, alias);
      if (pointer === undefined) {
        throw new ModelUnavailableError(
          `Model "${model}" has no version on alias "${alias}" yet; publish and promote one`,
        );
      }
      const rejectedWhy = this.rejected.get(pointer.etag);
      if (rejectedWhy !== undefined) {
        throw new ModelUnavailableError(unservable(model, pointer.version), {
          cause: new Error(rejectedWhy),
        });
      }
      const next = await this.tryLoad(pointer);
      if ('rejected' in next) {
        throw new ModelUnavailableError(unservable(model, pointer.version), { cause: next.error });
      }
      if (epoch !== this.epoch) {
        next.executor.dispose();
        throw new ModelUnavailableError(`Model "${model}" was unloaded while it loaded; retry`);
      }
      this.state = { kind: 'serving', served: next, checkedAt: this.now(), failures: 0 };
      log.info('model loaded', { alias, version: next.version, runtime: next.executor.runtime });
      return next;
    } catch (error) {
      const failure = coldFailure(error, model);
      if (epoch === this.epoch) this.state = { kind: 'failed', failure, at: this.now() };
      log.error('model could not be loaded', {
        alias,
        reason: failure.message,
        cause: describeCause(failure),
      });
      throw failure;
    }
  }

  /**
   * One re-check of the alias: keeps the loaded version unless a newly promoted one loads and
   * verifies. Never throws. A re-check that cannot reach the registry counts as a failure (the next
   * waits longer) unless it was frozen (recheck.ts: afterCheck); one that finds a bad version does
   * not (the registry answered; the version is remembered as rejected and not read again).
   */
  private async check(served: Served, epoch: number, waited: boolean): Promise<Served> {
    const startedAt = this.now();
    this.quietMs = 0;
    let next = served;
    let failure: unknown;
    try {
      next = await this.readAlias(served);
    } catch (error) {
      failure = error ?? new Error('unknown failure');
    }
    const endedAt = this.now();
    const failuresBefore = this.state.kind === 'serving' ? this.state.failures : 0;
    const state = afterCheck(
      failuresBefore,
      {
        served: next,
        failed: failure !== undefined,
        startedAt,
        endedAt,
        waited,
        quietMs: Math.max(this.quietMs, endedAt - Math.max(startedAt, this.lastRequestAt)),
      },
      this.policy,
    );
    if (failure !== undefined) this.logFailedCheck(failure, served, state, endedAt - startedAt);
    const swapped = next.executor !== served.executor;
    if (epoch !== this.epoch) {
      if (swapped) next.executor.dispose();
      return served;
    }
    this.state = state;
    if (swapped) {
      served.executor.dispose();
      this.options.log.info('now serving a newly promoted version', {
        alias: this.options.alias,
        from: served.version,
        to: next.version,
      });
    }
    return next;
  }

  /** What serves once the alias is read again (aliasChange decides). Throws when the registry cannot be read. */
  private async readAlias(served: Served): Promise<Served> {
    const { registry, model, alias, log } = this.options;
    const pointer = await registry.getAliasIfChanged(model, alias, served.etag);
    switch (aliasChange(pointer, served.version, (etag) => this.rejected.has(etag))) {
      case 'unchanged':
      case 'rejected-before':
        return served;
      case 'gone':
        log.warn('alias no longer exists; still serving the loaded version', {
          alias,
          version: served.version,
        });
        return served;
      case 'retagged':
        return { ...served, etag: (pointer as Pointer).etag };
      case 'promoted': {
        const next = await this.tryLoad(pointer as Pointer);
        if (!('rejected' in next)) return next;
        log.error('new version failed to load; still serving the previous one', {
          alias,
          serving: served.version,
          rejected: (pointer as Pointer).version,
          reason: next.rejected,
        });
        return served;
      }
    }
  }

  /**
   * Loads the version `pointer` names. One that does not load or verify is rejected for good (its
   * pointer's etag remembered); a registry that cannot be read throws.
   */
  private async tryLoad(pointer: Pointer): Promise<Served | Rejected> {
    try {
      return await loadVersion(pointer, this.source);
    } catch (error) {
      if (error instanceof RegistryUnavailableError) throw error;
      const reason = failureReason(error);
      this.rejected.set(pointer.etag, reason);
      return { rejected: reason, error };
    }
  }

  private logFailedCheck(failure: unknown, served: Served, state: Serving, tookMs: number): void {
    const { log } = this.options;
    const details = {
      version: served.version,
      reason: (failure as Error).message,
      cause: describeCause(failure),
      tookMs: Math.round(tookMs),
    };
    if (state.interrupted) {
      // Not the registry's failure: Lambda froze the function with the check in flight.
      log.info('alias check interrupted by a freeze; the next request checks again', {
        ...details,
        limitMs: this.policy.limitMs,
      });
    } else {
      log.warn('alias check failed; still serving the loaded version', {
        ...details,
        failures: state.failures,
        nextCheckInMs: recheckDelayMs(state.failures, this.policy),
      });
    }
  }
}

/**
 * A cold load's failure as callers see it: whatever the registry holds wrong (a malformed alias
 * object, say) is the service's state, not the caller's mistake: 503, retried by itself.
 */
function coldFailure(error: unknown, model: string): AiaasError {
  return error instanceof RegistryUnavailableError || error instanceof ModelUnavailableError
    ? error
    : new ModelUnavailableError(`Model "${model}" cannot be served (details in the function's logs)`, {
        cause: error,
      });
}

/** What callers are told about a version that cannot be served: the reason goes to the log. */
function unservable(model: string, version: number): string {
  return `Version ${version} of "${model}" cannot be served (details in the function's logs)`;
}

function failureReason(error: unknown): string {
  return error instanceof AiaasError ? error.message : `load failed: ${(error as Error)?.message}`;
}

/** Resolves once `work` has settled or `ms` has passed, whichever is first; never rejects. */
function settledWithin(work: Promise<unknown>, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    const done = () => {
      clearTimeout(timer);
      resolve();
    };
    work.then(done, done);
  });
}

function describeCause(error: unknown): string | undefined {
  const cause = (error as { cause?: unknown })?.cause;
  if (!cause) return undefined;
  const c = cause as { name?: string; message?: string; code?: string };
  return [c.name, c.code, c.message].filter(Boolean).join(': ');
}
