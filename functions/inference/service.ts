import type { Tensor } from '@tensorflow/tfjs-core';
import {
  AiaasError,
  IntegrityError,
  ModelUnavailableError,
  NotFoundError,
  RegistryUnavailableError,
} from '../shared/errors.js';
import { type AnyModel, disposeModel, loadModel, registryIOHandler } from '../shared/model/artifacts.js';
import type { ModelRegistry } from '../shared/registry/registry.js';
import type { Signature, VersionMetadata } from '../shared/registry/types.js';
import type { TfRuntime } from '../shared/runtime/types.js';
import {
  type Limits,
  metadataResponse,
  type OutputTensor,
  type PredictRequest,
  parsePredictRequest,
  predictResponse,
  type Route,
  statusResponse,
} from './api.js';

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
  /** Loads tfjs; called at the first request, never at import. */
  readonly runtime: () => Promise<TfRuntime>;
  readonly log: Log;
  readonly now?: () => number;
  /** After a failed cold load, wait this long before the next attempt (answering 503 meanwhile). */
  readonly retryAfterMs?: number;
}

/** One loaded version. */
interface Served {
  readonly version: number;
  readonly etag: string;
  readonly runtime: TfRuntime;
  readonly loaded: AnyModel & { signature: Signature };
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
    this.now = options.now ?? (() => performance.now());
  }

  /** The version being served, if any (for logs and metrics). */
  get version(): number | undefined {
    return this.served?.version;
  }

  async handle(route: Route, body: string): Promise<ServiceResult> {
    const served = await this.current();
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
          body: metadataResponse(this.options.model, served.version, served.loaded.signature, {
            alias: this.options.alias,
            runtime: served.runtime.kind,
            created_at: served.metadata.createdAt,
            source: served.metadata.source,
            metrics: served.metadata.metrics,
            parent: served.metadata.parent,
          }),
        };
      case 'predict': {
        const request = parsePredictRequest(body, served.loaded.signature, this.options.limits);
        const outputs = this.run(served, request);
        return {
          status: 200,
          version: served.version,
          body: predictResponse(request, outputs, this.options.model, served.version),
        };
      }
    }
  }

  /** Runs the model synchronously, so no swap can dispose it mid-flight; frees every tensor it made. */
  private run(served: Served, request: PredictRequest): OutputTensor[] {
    const { tf } = served.runtime;
    const names = served.loaded.signature.outputs.map((o) => o.name);
    const before = tf.memory().numTensors;
    const inputs = request.inputs.map((i) => tf.tensor(i.values, i.shape, i.dtype));
    let outputs: Tensor[] = [];
    try {
      if (served.loaded.format === 'layers-model') {
        const out = served.loaded.model.predict(inputs.length === 1 ? inputs[0]! : inputs);
        outputs = Array.isArray(out) ? out : [out];
      } else {
        const feed = Object.fromEntries(request.inputs.map((spec, k) => [spec.name, inputs[k]!]));
        const out = served.loaded.model.execute(feed, names);
        outputs = Array.isArray(out) ? out : [out];
      }
      return outputs.map((t, k) => ({
        name: names[k] ?? `output_${k}`,
        shape: t.shape,
        values: t.dataSync() as Float32Array,
      }));
    } finally {
      for (const t of inputs) t.dispose();
      for (const t of outputs) t.dispose();
      const leaked = tf.memory().numTensors - before;
      if (leaked > 0) this.options.log.warn('tensors leaked by a prediction', { leaked });
    }
  }

  /**
   * The model to serve now: loads it on first use, re-checks the alias when the interval is up.
   * The check runs inside the invocation (one conditional GET, a load only after a promotion):
   * Lambda freezes the environment when the handler returns, so background work would stall and
   * its S3 timers would expire during the freeze.
   */
  async current(): Promise<Served> {
    const now = this.now();
    if (this.served && now - this.lastCheck < this.options.aliasCheckMs) return this.served;
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
    // Start tfjs while the registry answers: a cold start pays for the slower of the two, not both.
    const runtime = this.options.runtime();
    runtime.catch(() => undefined);
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
        const next = await this.load(pointer.version, pointer.etag, await runtime);
        this.served = next;
        this.lastFailure = undefined;
        if (served) {
          disposeModel(served.loaded);
          log.info('now serving a newly promoted version', { alias, from: served.version, to: next.version });
        } else {
          log.info('model loaded', {
            alias,
            version: next.version,
            runtime: next.runtime.kind,
            notes: next.runtime.notes,
          });
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

  private async load(version: number, etag: string, runtime: TfRuntime): Promise<Served> {
    const handler = registryIOHandler(this.options.registry, this.options.model, version);
    let loaded: Awaited<ReturnType<typeof loadModel>>;
    try {
      loaded = await loadModel(runtime, handler);
    } catch (error) {
      if (error instanceof AiaasError) throw error;
      throw new IntegrityError(`version ${version} does not load in tfjs: ${(error as Error).message}`, {
        cause: error,
      });
    }
    this.warmUp(runtime, loaded);
    return { version, etag, runtime, loaded, metadata: handler.metadata! };
  }

  /** One prediction on zeros, so the first real request does not pay for kernel setup. */
  private warmUp(runtime: TfRuntime, loaded: AnyModel & { signature: Signature }) {
    const { tf } = runtime;
    try {
      tf.tidy(() => {
        const inputs = loaded.signature.inputs.map((s) =>
          tf.zeros(
            s.shape.map((d) => d ?? 1),
            s.dtype === 'int32' ? 'int32' : 'float32',
          ),
        );
        if (loaded.format === 'layers-model') loaded.model.predict(inputs.length === 1 ? inputs[0]! : inputs);
        else
          loaded.model.execute(
            Object.fromEntries(loaded.signature.inputs.map((s, k) => [s.name, inputs[k]!])),
          );
      });
    } catch (error) {
      this.options.log.warn('warm-up prediction failed', { reason: (error as Error).message });
    }
  }
}

function describeCause(error: unknown): string | undefined {
  const cause = (error as { cause?: unknown })?.cause;
  if (!cause) return undefined;
  const c = cause as { name?: string; message?: string; code?: string };
  return [c.name, c.code, c.message].filter(Boolean).join(': ');
}
