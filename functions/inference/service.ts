import { monotonicMs } from '../shared/clock.js';
import {
  AiaasError,
  IntegrityError,
  ModelUnavailableError,
  NotFoundError,
  RegistryUnavailableError,
} from '../shared/errors.js';
import { parseModelJson } from '../shared/model/artifacts.js';
import { compileFastPath, fastPathReason } from '../shared/model/fast-path.js';
import { loadReceived, receiveVersion } from '../shared/model/receive.js';
import type { ModelRegistry } from '../shared/registry/registry.js';
import type { AliasPointer, VersionMetadata } from '../shared/registry/types.js';
import type { TfRuntime } from '../shared/runtime/types.js';
import {
  type Limits,
  metadataResponse,
  parsePredictRequest,
  predictResponse,
  type Route,
  statusResponse,
} from './api.js';
import { type Executor, fastPathExecutor, tfjsExecutor, warmUp } from './executor.js';
import {
  afterCheck,
  defaultMaxBackoffMs,
  nextStep,
  type RecheckPolicy,
  recheckDelayMs,
  type ServingState,
} from './recheck.js';

/** Minimal structured logger (Powertools' Logger fits). */
export interface Log {
  info(message: string, extra?: Record<string, unknown>): void;
  warn(message: string, extra?: Record<string, unknown>): void;
  error(message: string, extra?: Record<string, unknown>): void;
}

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
  readonly registry: ModelRegistry;
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

/** One loaded version. */
interface Served {
  readonly version: number;
  readonly etag: string;
  readonly executor: Executor;
  readonly metadata: VersionMetadata;
}

type State = ServingState<Served, AiaasError>;
type Serving = Extract<State, { kind: 'serving' }>;
const COLD: State = { kind: 'cold' };

/** What a route answers, before HTTP framing. */
export interface ServiceResult {
  readonly status: number;
  readonly body: unknown;
  readonly version?: number;
}

/**
 * The model behind one function: loaded on first use, kept warm in memory, re-checked against its
 * alias (recheck.ts decides when), swapped to a newly promoted version without a restart. A version
 * that fails to load or verify never replaces the one being served.
 *
 * In Lambda, work left running when a response is returned is frozen with the environment and only
 * goes on while a later invocation runs, its S3 timers expiring meanwhile. So the request that
 * starts a re-check waits for it a little (`recheckWaitMs`), and one frozen until it failed is
 * followed by a re-check that its request waits for in full. Other requests never wait.
 */
export class InferenceService {
  private state: State = COLD;
  /** The one registry read in flight: a cold load (requests wait for it) or a re-check (only the request that started it waits). */
  private reading: Promise<Served> | undefined;
  /** Bumped by dispose(): a read started before must not install what it read. */
  private epoch = 0;
  /** Pointer etags whose version failed verification: versions are immutable, so don't retry them. */
  private readonly rejected = new Map<string, string>();
  private readonly now: () => number;
  private readonly policy: RecheckPolicy;
  private readonly waitMs: number;

  constructor(private readonly options: InferenceOptions) {
    this.now = options.now ?? monotonicMs;
    this.policy = {
      intervalMs: options.aliasCheckMs,
      maxBackoffMs: options.maxBackoffMs ?? defaultMaxBackoffMs(options.aliasCheckMs),
      retryAfterMs: options.retryAfterMs ?? 1_000,
      ...(options.recheckLimitMs !== undefined ? { limitMs: options.recheckLimitMs } : {}),
    };
    this.waitMs = options.recheckWaitMs ?? 200;
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
    const step = nextStep(state, this.reading !== undefined, this.now(), this.policy);
    if (step === 'answer') return this.answer((state as Serving).served, route, body);
    if (step === 'answer-and-check' || step === 'check-then-answer') {
      const { served } = state as Serving;
      const check = this.recheck(served, step === 'check-then-answer');
      if (step === 'check-then-answer') return check.then(() => this.answerNow(route, body));
      if (!(this.waitMs > 0)) return this.answer(served, route, body);
      return settledWithin(check, this.waitMs).then(() => this.answerNow(route, body));
    }
    if (step === 'fail') throw (state as Extract<State, { kind: 'failed' }>).failure;
    return this.loadOnce().then((served) => this.answer(served, route, body));
  }

  /** Answers from what is served now (a re-check may have swapped it), loading if nothing is. */
  private answerNow(route: Route, body: string): ServiceResult | Promise<ServiceResult> {
    return this.state.kind === 'serving'
      ? this.answer(this.state.served, route, body)
      : this.handle(route, body);
  }

  private answer(served: Served, route: Route, body: string): ServiceResult {
    if (route.version !== undefined && route.version !== served.version) {
      throw new NotFoundError(
        `Version ${route.version} of "${this.options.model}" is not served; alias "${this.options.alias}" serves version ${served.version}`,
      );
    }
    if (route.label !== undefined && route.label !== this.options.alias) {
      throw new NotFoundError(
        `Label "${route.label}" is not served here; this function serves alias "${this.options.alias}"`,
      );
    }
    switch (route.kind) {
      case 'status':
        return { status: 200, body: statusResponse(served.version, 'AVAILABLE'), version: served.version };
      case 'metadata':
        return {
          status: 200,
          version: served.version,
          body: metadataResponse(this.options.model, served.version, served.executor.signature, {
            alias: this.options.alias,
            runtime: served.executor.runtime,
            created_at: served.metadata.createdAt,
            source: served.metadata.source,
            metrics: served.metadata.metrics,
            parent: served.metadata.parent,
          }),
        };
      case 'predict': {
        const request = parsePredictRequest(body, served.executor.signature, this.options.limits);
        const outputs = served.executor.predict(request.inputs);
        return {
          status: 200,
          version: served.version,
          body: predictResponse(request, outputs, this.options.model, served.version),
        };
      }
    }
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
      let next: Served;
      try {
        next = await this.load(pointer);
      } catch (error) {
        if (error instanceof RegistryUnavailableError) throw error;
        this.rejected.set(pointer.etag, failureReason(error));
        throw new ModelUnavailableError(unservable(model, pointer.version), { cause: error });
      }
      if (epoch !== this.epoch) {
        next.executor.dispose();
        throw new ModelUnavailableError(`Model "${model}" was unloaded while it loaded; retry`);
      }
      this.state = { kind: 'serving', served: next, checkedAt: this.now(), failures: 0 };
      log.info('model loaded', { alias, version: next.version, runtime: next.executor.runtime });
      return next;
    } catch (error) {
      // Whatever the registry holds wrong (a malformed alias object, say) is the service's state,
      // not the caller's mistake: 503, retried by itself.
      const failure =
        error instanceof RegistryUnavailableError || error instanceof ModelUnavailableError
          ? error
          : new ModelUnavailableError(`Model "${model}" cannot be served (details in the function's logs)`, {
              cause: error,
            });
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
    const { registry, model, alias, log } = this.options;
    const startedAt = this.now();
    let next = served;
    let failure: unknown;
    try {
      const pointer = await registry.getAliasIfChanged(model, alias, served.etag);
      if (pointer === undefined) {
        log.warn('alias no longer exists; still serving the loaded version', {
          alias,
          version: served.version,
        });
      } else if (pointer !== 'unchanged') {
        if (pointer.version === served.version) {
          next = { ...served, etag: pointer.etag };
        } else if (!this.rejected.has(pointer.etag)) {
          try {
            next = await this.load(pointer);
          } catch (error) {
            if (error instanceof RegistryUnavailableError) throw error;
            const reason = failureReason(error);
            this.rejected.set(pointer.etag, reason);
            log.error('new version failed to load; still serving the previous one', {
              alias,
              serving: served.version,
              rejected: pointer.version,
              reason,
            });
          }
        }
      }
    } catch (error) {
      failure = error ?? new Error('unknown failure');
    }
    const endedAt = this.now();
    const failuresBefore = this.state.kind === 'serving' ? this.state.failures : 0;
    const state = afterCheck(
      failuresBefore,
      { served: next, failed: failure !== undefined, startedAt, endedAt, waited },
      this.policy,
    );
    if (failure !== undefined) {
      const details = {
        version: served.version,
        reason: (failure as Error).message,
        cause: describeCause(failure),
        tookMs: Math.round(endedAt - startedAt),
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
    const swapped = next.executor !== served.executor;
    if (epoch !== this.epoch) {
      if (swapped) next.executor.dispose();
      return served;
    }
    this.state = state;
    if (swapped) {
      served.executor.dispose();
      log.info('now serving a newly promoted version', { alias, from: served.version, to: next.version });
    }
    return next;
  }

  /**
   * Reads and verifies a version, then compiles it for the fast path or loads it in tfjs. tfjs is
   * imported only for a version that needs it, and then as soon as model.json says so, so its start
   * overlaps the download of the weights, which then arrive straight into its tensors.
   */
  private async load(pointer: AliasPointer & { readonly etag: string }): Promise<Served> {
    const { registry, model, log } = this.options;
    const { version, etag } = pointer;
    const fastPath = this.options.fastPath ?? 'auto';
    let runtime: Promise<TfRuntime> | undefined;
    const startRuntime = () => {
      if (!runtime) {
        runtime = this.options.runtime();
        runtime.catch(() => undefined);
      }
      return runtime;
    };
    if (fastPath === 'off') startRuntime();
    let modelJson: ReturnType<typeof parseModelJson> | undefined;
    // A version for tfjs has its weights received straight into tensors once the runtime is up.
    const received = await receiveVersion(registry, model, version, {
      ...(pointer.files ? { files: pointer.files } : {}),
      ...(pointer.inline ? { inline: pointer.inline } : {}),
      runtimeFor: (json) => {
        modelJson = json;
        return fastPath === 'off' || fastPathReason(json) !== undefined ? startRuntime() : undefined;
      },
    });
    const { metadata, files } = received;
    let why = 'the fast path is off';
    if (fastPath === 'auto' && !received.weights) {
      const compiled = compileFastPath(
        modelJson ?? parseModelJson(files.get('model.json') ?? new Uint8Array()),
        files,
        metadata.signature,
      );
      if ('model' in compiled) return this.ready(version, etag, metadata, fastPathExecutor(compiled.model));
      why = compiled.reason;
    } else if (fastPath === 'auto' && modelJson) {
      why = fastPathReason(modelJson) ?? why;
    }
    const tf = await startRuntime();
    if (tf.requested !== 'auto' && tf.requested !== tf.kind) {
      // Serving, but not on the configured backend (e.g. a `native` image whose tfjs-node fails).
      log.error('configured tfjs runtime did not load', {
        requested: tf.requested,
        runtime: tf.kind,
        notes: tf.notes,
      });
    }
    let executor: Executor;
    try {
      const loaded = await loadReceived(tf, received);
      executor = tfjsExecutor(tf, loaded, (leaked) => log.warn('tensors leaked by a prediction', { leaked }));
    } catch (error) {
      if (error instanceof AiaasError) throw error;
      throw new IntegrityError(`version ${version} does not load in tfjs: ${(error as Error).message}`, {
        cause: error,
      });
    }
    log.info('running on tfjs', { version, runtime: tf.kind, notes: tf.notes, fastPath: why });
    return this.ready(version, etag, metadata, executor);
  }

  private ready(version: number, etag: string, metadata: VersionMetadata, executor: Executor): Served {
    const failed = warmUp(executor);
    if (failed) this.options.log.warn('warm-up prediction failed', { version, reason: failed });
    return { version, etag, executor, metadata };
  }
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
