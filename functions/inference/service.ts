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

/** Minimal structured logger (Powertools' Logger fits). */
export interface Log {
  info(message: string, extra?: Record<string, unknown>): void;
  warn(message: string, extra?: Record<string, unknown>): void;
  error(message: string, extra?: Record<string, unknown>): void;
}

export interface InferenceOptions {
  readonly model: string;
  readonly alias: string;
  /** Re-read the alias at most this often; between checks the loaded version is served as is. */
  readonly aliasCheckMs: number;
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

/** What a route answers, before HTTP framing. */
export interface ServiceResult {
  readonly status: number;
  readonly body: unknown;
  readonly version?: number;
}

/**
 * The model behind one function: loaded on first use, kept warm in memory, re-checked against its
 * alias at most every `aliasCheckMs`, swapped to a newly promoted version without a restart. A
 * version that fails to load or verify never replaces the one being served.
 */
export class InferenceService {
  private served: Served | undefined;
  private refreshing: Promise<Served> | undefined;
  private lastCheck = Number.NEGATIVE_INFINITY;
  private lastFailureAt = Number.NEGATIVE_INFINITY;
  private lastFailure: AiaasError | undefined;
  /** Pointer etags whose version failed verification: versions are immutable, so don't retry them. */
  private readonly rejected = new Map<string, string>();
  private readonly now: () => number;

  constructor(private readonly options: InferenceOptions) {
    this.now = options.now ?? monotonicMs;
  }

  /** The version being served, if any (for logs and metrics). */
  get version(): number | undefined {
    return this.served?.version;
  }

  /**
   * Frees the loaded model (its tfjs tensors); the next request loads it again. For tests and
   * benchmarks: call it only when no request or load is in flight.
   */
  dispose(): void {
    this.served?.executor.dispose();
    this.served = undefined;
    this.refreshing = undefined;
    this.lastCheck = Number.NEGATIVE_INFINITY;
  }

  /**
   * Answers a route. Synchronous while the loaded version needs no alias check (nearly every warm
   * request: no promise, no microtask hop), a promise when the registry must be read first.
   */
  handle(route: Route, body: string): ServiceResult | Promise<ServiceResult> {
    const served = this.fresh(this.now());
    if (served) return this.answer(served, route, body);
    return this.current().then((current) => this.answer(current, route, body));
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

  /** The loaded version, while its alias needs no check yet. */
  private fresh(now: number): Served | undefined {
    return this.served && now - this.lastCheck < this.options.aliasCheckMs ? this.served : undefined;
  }

  /**
   * The model to serve now: loads it on first use, re-checks the alias when the interval is up.
   * The check runs inside the invocation (one conditional GET, a load only after a promotion):
   * Lambda freezes the environment when the handler returns, so background work would stall and
   * its S3 timers would expire during the freeze.
   */
  async current(): Promise<Served> {
    const now = this.now();
    const fresh = this.fresh(now);
    if (fresh) return fresh;
    if (!this.served && this.lastFailure && now - this.lastFailureAt < (this.options.retryAfterMs ?? 1_000)) {
      throw this.lastFailure;
    }
    this.refreshing ??= this.refresh().finally(() => {
      this.refreshing = undefined;
    });
    return this.refreshing;
  }

  private async refresh(): Promise<Served> {
    const { registry, model, alias, log } = this.options;
    const served = this.served;
    try {
      const pointer = served
        ? await registry.getAliasIfChanged(model, alias, served.etag)
        : await registry.getAlias(model, alias);
      this.lastCheck = this.now();
      if (pointer === 'unchanged') return served!;
      if (pointer === undefined) {
        if (served) {
          log.warn('alias no longer exists; still serving the loaded version', {
            alias,
            version: served.version,
          });
          return served;
        }
        throw new ModelUnavailableError(
          `Model "${model}" has no version on alias "${alias}" yet; publish and promote one`,
        );
      }
      if (served && pointer.version === served.version) {
        this.served = { ...served, etag: pointer.etag };
        return this.served;
      }
      const rejectedWhy = this.rejected.get(pointer.etag);
      if (rejectedWhy !== undefined) {
        if (served) return served;
        throw new ModelUnavailableError(
          `Version ${pointer.version} of "${model}" cannot be served: ${rejectedWhy}`,
        );
      }
      try {
        const next = await this.load(pointer);
        this.served = next;
        this.lastFailure = undefined;
        if (served) {
          served.executor.dispose();
          log.info('now serving a newly promoted version', { alias, from: served.version, to: next.version });
        } else {
          log.info('model loaded', { alias, version: next.version, runtime: next.executor.runtime });
        }
        return next;
      } catch (error) {
        const reason =
          error instanceof AiaasError ? error.message : `load failed: ${(error as Error).message}`;
        if (!(error instanceof RegistryUnavailableError)) this.rejected.set(pointer.etag, reason);
        if (served) {
          log.error('new version failed to load; still serving the previous one', {
            alias,
            serving: served.version,
            rejected: pointer.version,
            reason,
          });
          return served;
        }
        throw error instanceof RegistryUnavailableError
          ? error
          : new ModelUnavailableError(
              `Version ${pointer.version} of "${model}" cannot be served: ${reason}`,
              { cause: error },
            );
      }
    } catch (error) {
      if (served) {
        // Keep answering from memory; the next interval tries the registry again.
        this.lastCheck = this.now();
        log.warn('alias check failed; still serving the loaded version', {
          version: served.version,
          reason: (error as Error).message,
        });
        return served;
      }
      // Whatever the registry holds wrong (a malformed alias object, say) is the service's state,
      // not the caller's mistake: 503, retried by itself.
      const failure =
        error instanceof RegistryUnavailableError || error instanceof ModelUnavailableError
          ? error
          : new ModelUnavailableError(
              `Model "${model}" cannot be served: ${error instanceof AiaasError ? error.message : 'load failed'}`,
              { cause: error },
            );
      this.lastFailure = failure;
      this.lastFailureAt = this.now();
      log.error('model could not be loaded', { alias, reason: failure.message, cause: describeCause(error) });
      throw failure;
    }
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

function describeCause(error: unknown): string | undefined {
  const cause = (error as { cause?: unknown })?.cause;
  if (!cause) return undefined;
  const c = cause as { name?: string; message?: string; code?: string };
  return [c.name, c.code, c.message].filter(Boolean).join(': ');
}
