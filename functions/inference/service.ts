/**
 * The model behind one function: loaded on first use, kept warm in memory, re-checked against its
 * alias, swapped to a newly promoted version without a restart. A version that fails to load or
 * verify never replaces the one being served, and is not read again. One concept that reads better
 * whole, though long: each effect below changes the same state (see the layout below).
 *
 * Beside the live version the function holds the alias's canary and shadow versions, when it
 * carries them (served.ts routes requests between them). A re-check that reads a changed pointer
 * loads only what it does not hold yet: a promoted canary becomes the live version as it is loaded,
 * a weight or sample change loads nothing, and a version no longer named is freed. The versions a
 * pointer needs load at once and its set is installed whole once they have settled, so the first
 * answer waits for the longest load, not their sum. A canary or
 * shadow that fails to load, or that would not fit in the function's memory beside the others
 * (functions/shared/rollout/memory.ts), is logged and not served; the live version goes on
 * answering everything.
 *
 * Laid out as state + pure decisions + effects:
 * - state: `state` (cold / failed / serving, recheck.ts's ServingState, serving a ServedSet), the
 *   one registry read in flight, and the alias pointers whose version was rejected;
 * - decisions (recheck.ts, routing.ts, pure): what a request does (`nextStep`), what a re-check's
 *   read means (`aliasChange`), the state a re-check leaves (`afterCheck`), which version answers
 *   a request; the pointer's canary and shadow come checked from the registry read (aliases.ts);
 * - effects (here): reading the alias, loading versions (version-load.ts), installing them,
 *   freeing the ones no longer served, logging; answering a route is served.ts's.
 * Read apart, the effects would hide which transitions exist.
 *
 * In Lambda, work left running when a response is returned is frozen with the environment and only
 * goes on while a later invocation runs, its S3 timers expiring meanwhile. So the request that
 * starts a re-check waits for it a little (`recheckWaitMs`), and one frozen until it failed is
 * followed by a re-check that its request waits for in full. Other requests never wait.
 */
import { monotonicMs } from '../shared/clock.js';
import { AiaasError, ModelUnavailableError, RegistryUnavailableError } from '../shared/errors.js';
import { isInlineVersion } from '../shared/registry/inline.js';
import { isFileList } from '../shared/registry/integrity.js';
import type { RegistryReader } from '../shared/registry/registry.js';
import type { AliasPointer, CanaryRoute, FileDigest, ShadowRoute } from '../shared/registry/types.js';
import { filesBytes, fitsInMemory } from '../shared/rollout/memory.js';
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
import { answerFrom, type Served, type ServedBy, type ServedSet, type ServiceResult } from './served.js';
import { ShadowRunner } from './shadow.js';
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
  /** Uniform in [0, 1): routes un-keyed requests to a canary, samples the shadow. @default Math.random */
  readonly random?: () => number;
  /**
   * The function's memory (Lambda's AWS_LAMBDA_FUNCTION_MEMORY_SIZE): a canary or shadow that would
   * not fit beside the other versions held (functions/shared/rollout/memory.ts) is not loaded.
   * @default no limit (the local stack)
   */
  readonly memoryMiB?: number;
}

type State = ServingState<ServedSet, AiaasError>;
type Serving = Extract<State, { kind: 'serving' }>;
const COLD: State = { kind: 'cold' };

type Pointer = AliasPointer & { readonly etag: string };

/** A version that did not load or verify, and why (for the log). */
interface Rejected {
  readonly rejected: string;
  readonly error: unknown;
}

/** A canary's or shadow's version as it starts to load: its size for the memory rule, and its load. */
interface RouteLoad {
  readonly version: number;
  readonly bytes: number;
  /** Never rejects: undefined when the version does not load, 'retry' when the registry failed (both logged). */
  readonly loaded: Promise<Served | undefined | 'retry'>;
}

/** See the module comment. */
export class InferenceService {
  private state: State = COLD;
  /** The one registry read in flight: a cold load (requests wait for it) or a re-check (only the request that started it waits). */
  private reading: Promise<ServedSet> | undefined;
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
    this.by = {
      model: options.model,
      alias: options.alias,
      limits: options.limits,
      random: options.random ?? Math.random,
      now: this.now,
    };
    this.source = {
      registry: options.registry,
      model: options.model,
      runtime: options.runtime,
      fastPath: options.fastPath ?? 'auto',
      log: options.log,
    };
  }

  /** The live version being served, if any (for logs and metrics). */
  get version(): number | undefined {
    return this.state.kind === 'serving' ? this.state.served.live.version : undefined;
  }

  /** What is served: the live version, and the canary and shadow with their shares (for tests and logs). */
  get serving():
    | {
        live: number;
        canary?: { version: number; weight: number };
        shadow?: { version: number; sample: number };
      }
    | undefined {
    if (this.state.kind !== 'serving') return undefined;
    const { live, canary, shadow } = this.state.served;
    return {
      live: live.version,
      ...(canary ? { canary: { version: canary.served.version, weight: canary.weight } } : {}),
      ...(shadow ? { shadow: { version: shadow.runner.version, sample: shadow.sample } } : {}),
    };
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
   * Frees the loaded models (their tfjs tensors); the next request loads them again. For tests and
   * benchmarks: call it only when no request is in flight. A re-check still running ends unseen.
   */
  dispose(): void {
    if (this.state.kind === 'serving')
      for (const executor of executorsOf(this.state.served)) executor.dispose();
    this.state = COLD;
    this.reading = undefined;
    this.epoch++;
  }

  /**
   * Answers a route (`routeKey`: the request's routing key, if any). Synchronous once a version is
   * loaded and no re-check is due (no promise, no microtask hop); a promise for the request that
   * starts a re-check (it waits for it, see InferenceOptions.recheckWaitMs) and while the model loads.
   */
  handle(route: Route, body: string, routeKey?: string): ServiceResult | Promise<ServiceResult> {
    const state = this.state;
    const now = this.now();
    if (this.reading !== undefined) this.quietMs = Math.max(this.quietMs, now - this.lastRequestAt);
    this.lastRequestAt = now;
    const step = nextStep(state, this.reading !== undefined, now, this.policy);
    if (step === 'answer') return answerFrom((state as Serving).served, route, body, this.by, routeKey);
    if (step === 'answer-and-check' || step === 'check-then-answer') {
      const { served } = state as Serving;
      const check = this.recheck(served, step === 'check-then-answer');
      if (step === 'check-then-answer') {
        // Waited for in full (the function stays thawed), but never past what a running check takes.
        const limit = this.policy.limitMs;
        const waited = limit === undefined ? check : settledWithin(check, limit);
        return waited.then(() => this.answerNow(route, body, routeKey));
      }
      if (!(this.waitMs > 0)) return answerFrom(served, route, body, this.by, routeKey);
      return settledWithin(check, this.waitMs).then(() => this.answerNow(route, body, routeKey));
    }
    if (step === 'fail') throw (state as Extract<State, { kind: 'failed' }>).failure;
    return this.loadOnce().then((served) => answerFrom(served, route, body, this.by, routeKey));
  }

  /** Answers from what is served now (a re-check may have swapped it), loading if nothing is. */
  private answerNow(route: Route, body: string, routeKey?: string): ServiceResult | Promise<ServiceResult> {
    return this.state.kind === 'serving'
      ? answerFrom(this.state.served, route, body, this.by, routeKey)
      : this.handle(route, body, routeKey);
  }

  /** The cold load every waiting request shares (one at a time). */
  private loadOnce(): Promise<ServedSet> {
    if (this.reading) return this.reading;
    const reading: Promise<ServedSet> = this.coldLoad(this.epoch).finally(() => {
      if (this.reading === reading) this.reading = undefined;
    });
    this.reading = reading;
    return reading;
  }

  /**
   * Starts a re-check; its outcome lands in `state`. `waited`: a request waits for all of it (the
   * process runs throughout, so a failure is the registry's).
   */
  private recheck(set: ServedSet, waited: boolean): Promise<ServedSet> {
    const reading: Promise<ServedSet> = this.check(set, this.epoch, waited).finally(() => {
      if (this.reading === reading) this.reading = undefined;
    });
    this.reading = reading;
    reading.catch(() => undefined);
    return reading;
  }

  /**
   * Loads the version the alias names, with nothing loaded yet, and its canary and shadow beside it. The
   * live version's failure is the answer (503) for `retryAfterMs`, then the next request tries
   * again; a canary's or shadow's is only logged. Callers see a message that names the model and
   * the version, never the registry's details (logged here, once per attempt).
   */
  private async coldLoad(epoch: number): Promise<ServedSet> {
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
      const next = await this.withRoutes(pointer, this.tryLoad(pointer), listedFiles(pointer), undefined);
      if ('rejected' in next) {
        throw new ModelUnavailableError(unservable(model, pointer.version), { cause: next.error });
      }
      if (epoch !== this.epoch) {
        for (const executor of executorsOf(next)) executor.dispose();
        throw new ModelUnavailableError(`Model "${model}" was unloaded while it loaded; retry`);
      }
      this.state = { kind: 'serving', served: next, checkedAt: this.now(), failures: 0 };
      log.info('model loaded', { alias, version: next.live.version, runtime: next.live.executor.runtime });
      this.logRoutes(undefined, next);
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
   * One re-check of the alias: keeps what is loaded unless the pointer changed, and then installs
   * what it names, loading only the versions not held yet. Never throws. A re-check that cannot
   * reach the registry counts as a failure (the next waits longer) unless it was frozen
   * (recheck.ts: afterCheck); one that finds a bad version does not (the registry answered; the
   * version is remembered as rejected and not read again).
   */
  private async check(set: ServedSet, epoch: number, waited: boolean): Promise<ServedSet> {
    const startedAt = this.now();
    this.quietMs = 0;
    let next = set;
    let failure: unknown;
    try {
      next = await this.readAlias(set);
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
    if (failure !== undefined) this.logFailedCheck(failure, set, state, endedAt - startedAt);
    if (epoch !== this.epoch) {
      disposeUnused(next, set);
      return set;
    }
    this.state = state;
    if (next !== set) {
      disposeUnused(set, next);
      if (next.live !== set.live) {
        this.options.log.info('now serving a newly promoted version', {
          alias: this.options.alias,
          from: set.live.version,
          to: next.live.version,
        });
      }
      this.logRoutes(set, next);
    }
    return next;
  }

  /** What serves once the alias is read again (aliasChange decides). Throws when the registry cannot be read. */
  private async readAlias(set: ServedSet): Promise<ServedSet> {
    const { registry, model, alias, log } = this.options;
    // A set missing a route the registry failed to give reads the pointer whole, to retry it.
    const pointer = set.incomplete
      ? await registry.getAlias(model, alias)
      : await registry.getAliasIfChanged(model, alias, set.etag);
    switch (aliasChange(pointer, set.live.version, (etag) => this.rejected.has(etag))) {
      case 'unchanged':
      case 'rejected-before':
        return set;
      case 'gone':
        log.warn('alias no longer exists; still serving the loaded version', {
          alias,
          version: set.live.version,
        });
        return set;
      case 'retagged': // the same live version; its canary or shadow may have changed
      case 'promoted': {
        const target = pointer as Pointer;
        // A promoted canary (or shadow) is already loaded: it becomes the live version as it is.
        const held = heldVersion(set, target.version);
        const live = held ? Promise.resolve(held) : this.tryLoad(target);
        const next = await this.withRoutes(target, live, held?.metadata.files ?? listedFiles(target), set);
        if (!('rejected' in next)) return next;
        log.error('new version failed to load; still serving the previous one', {
          alias,
          serving: set.live.version,
          rejected: target.version,
          reason: next.rejected,
        });
        return set;
      }
    }
  }

  /**
   * The set `pointer` names around its `live` version (held, or loading; `liveFiles`: its files,
   * when known before it loads): its canary and shadow, taken from `held` (what the function holds
   * now) when there, else loaded. Their memory checks go in turn, the loads at once. A route that
   * does not fit in memory, or whose version does not load, is left out (and logged); one the
   * registry failed to give leaves the set `incomplete`, so the next re-check tries again. A live
   * version that fails is the outcome (rejected, or its registry failure thrown): no route starts
   * loading once it has failed, and what loaded beside it is freed.
   */
  private async withRoutes(
    pointer: Pointer,
    live: Promise<Served | Rejected>,
    liveFiles: Readonly<Record<string, FileDigest>> | undefined,
    held: ServedSet | undefined,
  ): Promise<ServedSet | Rejected> {
    // Checked by the registry's read (aliases.ts): well formed, neither one the live version.
    const { canary, shadow } = pointer;
    // Once the live version has failed, no route starts loading (stop()); tryLoad throws only the
    // registry's failure, kept as a value until the one settle point below.
    let failed = false;
    const outcome = live.then(
      (l) => {
        failed = 'rejected' in l;
        return l;
      },
      (error: RegistryUnavailableError) => {
        failed = true;
        return error;
      },
    );
    let files = liveFiles;
    // A pointer written before pointers listed files: the live version's size is known once loaded.
    if (files === undefined && this.options.memoryMiB !== undefined && (canary || shadow)) {
      const l = await outcome;
      if (!('executor' in l)) return liveFailed(l, [], held);
      files = l.metadata.files;
    }
    const size = { version: pointer.version, bytes: filesBytes(files ?? {}) };
    const stop = () => failed;
    const c = canary && (await this.startRoute('canary', canary, size, held, stop));
    const s =
      shadow &&
      (await this.startRoute('shadow', shadow, size, held, stop, typeof c === 'object' ? c : undefined));
    const loadOf = (r: RouteLoad | 'retry' | undefined) => (typeof r === 'object' ? r.loaded : r);
    const [l, cv, sv] = await Promise.all([outcome, loadOf(c), loadOf(s)]);
    if (!('executor' in l)) return liveFailed(l, [cv, sv], held);
    // The same shadow keeps its runner: its timings and log budget carry over.
    const kept = held?.shadow?.runner;
    const runner =
      typeof sv !== 'object'
        ? undefined
        : kept?.served === sv
          ? kept
          : new ShadowRunner(sv, this.options.log, this.now);
    return {
      etag: pointer.etag,
      live: l,
      canary: canary && typeof cv === 'object' ? { served: cv, weight: canary.weight } : undefined,
      shadow: shadow && runner ? { runner, sample: shadow.sample } : undefined,
      ...(cv === 'retry' || sv === 'retry' ? { incomplete: true } : {}),
    };
  }

  /**
   * A canary's or shadow's version, checked against memory beside the live version (and a shadow
   * beside the canary) and then started: held already, or loaded unless `stop()` (the live version
   * failed). Undefined when it does not fit (logged), 'retry' when the registry failed.
   */
  private async startRoute(
    role: 'canary' | 'shadow',
    route: CanaryRoute | ShadowRoute,
    live: { readonly version: number; readonly bytes: number },
    held: ServedSet | undefined,
    stop: () => boolean,
    canary?: RouteLoad,
  ): Promise<RouteLoad | undefined | 'retry'> {
    const { log, alias, model, registry, memoryMiB } = this.options;
    const { version } = route;
    if (canary?.version === version) return canary;
    const files = isFileList(route.files) ? route.files : undefined;
    const inline =
      route.inline !== undefined && isInlineVersion(route.inline, model, version, files)
        ? route.inline
        : undefined;
    let bytes = 0;
    try {
      if (memoryMiB !== undefined) {
        const listed = files ?? inline?.metadata.files ?? (await registry.getMetadata(model, version)).files;
        bytes = filesBytes(listed);
        const beside = canary ? [live, canary] : [live];
        let fit = fitsInMemory([...beside.map((b) => b.bytes), bytes], memoryMiB);
        // A shadow that fits only without the canary waits to see whether the canary loads.
        if (!fit.fits && canary && typeof (await canary.loaded) !== 'object') {
          beside.pop();
          fit = fitsInMemory([live.bytes, bytes], memoryMiB);
        }
        if (!fit.fits) {
          log.error(
            `${role} version not loaded: it does not fit in the function's memory beside the others`,
            {
              alias,
              [role]: version,
              versions: [...beside.map((b) => b.version), version],
              needMiB: fit.needMiB,
              memoryMiB,
            },
          );
          return undefined;
        }
      }
    } catch (error) {
      return this.notLoaded(role, version, error);
    }
    const holding = heldVersion(held, version);
    if (holding) return { version, bytes, loaded: Promise.resolve(holding) };
    if (stop()) return undefined; // the live version failed: nothing is served beside it
    const loaded = loadVersion(
      {
        model,
        alias,
        version,
        seq: 0,
        eventId: '',
        updatedAt: route.since,
        etag: `${role}:${version}`,
        ...(files ? { files } : {}),
        ...(inline ? { inline } : {}),
      },
      this.source,
    ).catch((error: unknown) => this.notLoaded(role, version, error));
    return { version, bytes, loaded };
  }

  /** Logs why a canary's or shadow's version is not served: 'retry' when the registry failed. */
  private notLoaded(role: 'canary' | 'shadow', version: number, error: unknown): 'retry' | undefined {
    const { log, alias } = this.options;
    if (error instanceof RegistryUnavailableError) {
      log.warn(`${role} version not loaded yet: the registry failed; the next check tries again`, {
        alias,
        [role]: version,
        reason: error.message,
        cause: describeCause(error),
      });
      return 'retry';
    }
    log.error(`${role} version failed to load; not served (the live version answers everything)`, {
      alias,
      [role]: version,
      reason: failureReason(error),
      cause: describeCause(error),
    });
    return undefined;
  }

  /** One line per route that started, changed or stopped between `before` and `after`. */
  private logRoutes(before: ServedSet | undefined, after: ServedSet): void {
    const { log, alias } = this.options;
    const c0 = before?.canary;
    const c1 = after.canary;
    if (c1 && (c0?.served !== c1.served || c0.weight !== c1.weight)) {
      log.info('canary routed', { alias, canary: c1.served.version, weight: c1.weight });
    } else if (c0 && !c1) {
      log.info('canary stopped', { alias, canary: c0.served.version, live: after.live.version });
    }
    const s0 = before?.shadow;
    const s1 = after.shadow;
    if (s1 && (s0?.runner !== s1.runner || s0.sample !== s1.sample)) {
      log.info('shadow running', { alias, shadow: s1.runner.version, sample: s1.sample });
    } else if (s0 && !s1) {
      log.info('shadow stopped', { alias, shadow: s0.runner.version });
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

  private logFailedCheck(failure: unknown, set: ServedSet, state: Serving, tookMs: number): void {
    const { log } = this.options;
    const details = {
      version: set.live.version,
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

/** The files a pointer lists for its version (their sizes, for the memory rule), if it lists them. */
function listedFiles(pointer: AliasPointer): Readonly<Record<string, FileDigest>> | undefined {
  return pointer.files ?? pointer.inline?.metadata.files;
}

/**
 * A live version that failed, once what loaded beside it is freed (a version `held` is kept): its
 * rejection, or its registry failure thrown as itself.
 */
function liveFailed(
  failure: Rejected | RegistryUnavailableError,
  beside: readonly (Served | 'retry' | undefined)[],
  held: ServedSet | undefined,
): Rejected {
  for (const s of new Set(beside))
    if (typeof s === 'object' && heldVersion(held, s.version) !== s) s.executor.dispose();
  if (failure instanceof RegistryUnavailableError) throw failure;
  return failure;
}

/** The versions a set holds (a canary that is also the shadow once). */
function servedOf(set: ServedSet): Served[] {
  const out = [set.live];
  if (set.canary && !out.includes(set.canary.served)) out.push(set.canary.served);
  if (set.shadow && !out.includes(set.shadow.runner.served)) out.push(set.shadow.runner.served);
  return out;
}

function executorsOf(set: ServedSet) {
  return servedOf(set).map((s) => s.executor);
}

/** The loaded version `version` of `set`, if it holds it. */
function heldVersion(set: ServedSet | undefined, version: number): Served | undefined {
  return set ? servedOf(set).find((s) => s.version === version) : undefined;
}

/** Frees what `from` holds and `keep` does not. */
function disposeUnused(from: ServedSet, keep: ServedSet): void {
  const kept = executorsOf(keep);
  for (const executor of executorsOf(from)) if (!kept.includes(executor)) executor.dispose();
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
