/**
 * The model's function scoring one batch of a batch job (Step Functions Distributed Map → a
 * BatchEvent, functions/shared/batch/events.ts). Contract:
 * - rows are scored by the version the job pinned (`BatchInput.version`), never the alias: a
 *   promotion mid-job cannot change which version scores a row. That version is loaded once and
 *   kept across batches: one pinned version at a time, beside whatever the function serves;
 * - every row gets a result, in Items order: its outputs by output name (as TF Serving writes one
 *   instance of each), or `error` naming the column or place and the problem. A bad row never
 *   fails the batch; the good rows run through the model together (batch-rows.ts);
 * - a wrong job fails the whole batch with a typed error the state machine records: another model
 *   (ValidationError), a version that does not exist (NotFoundError), a malformed event or a model
 *   CSV rows cannot feed (ValidationError / InvalidNameError); an unreachable registry is a
 *   RegistryUnavailableError, worth a retry.
 */
import {
  type BatchEvent,
  type BatchItem,
  type BatchResult,
  type BatchRowResult,
  isBatchEvent,
} from '../shared/batch/events.js';
import { batchFeatures, csvInputOf } from '../shared/batch/features.js';
import { ValidationError } from '../shared/errors.js';
import { assertBatchFormat, assertJobId, assertModelName, parseVersion } from '../shared/registry/layout.js';
import type { RegistryReader } from '../shared/registry/registry.js';
import type { ObjectReader } from '../shared/registry/store.js';
import type { TfRuntime } from '../shared/runtime/types.js';
import { nest, type OutputTensor } from './answers.js';
import { type RowGroup, type RowsRead, readCsvRows, readInstanceRows } from './batch-rows.js';
import { configFromEnv, type InferenceConfig } from './config.js';
import type { Executor } from './executor.js';
import type { Log } from './log.js';
import type { InputTensor, Limits } from './predict-request.js';
import { registryReader, runtimeOnce } from './registry-access.js';
import type { Served } from './served.js';
import { loadVersion } from './version-load.js';

export interface BatchScorerOptions {
  readonly model: string;
  readonly registry: RegistryReader;
  readonly runtime: () => Promise<TfRuntime>;
  readonly fastPath: 'auto' | 'off';
  readonly log: Log;
  /** Rows per model call (`maxInstances`); numbers per batch are bounded by the event's size instead. */
  readonly limits: Limits;
}

/** The job a batch belongs to, checked. */
interface BatchJob {
  readonly version: number;
  readonly format: 'csv' | 'jsonl';
  readonly features: readonly string[] | undefined;
}

interface Pinned {
  readonly version: number;
  readonly loading: Promise<Served>;
  /** Its model was freed because another version was pinned after it. */
  disposed: boolean;
}

/** See the module comment. */
export class BatchScorer {
  private pinned: Pinned | undefined;

  constructor(private readonly options: BatchScorerOptions) {}

  async score(event: unknown): Promise<BatchResult> {
    const { items, job } = checkEvent(event, this.options.model);
    if (items.length === 0) return { version: job.version, results: [] };
    // Scoring is synchronous once the version is at hand, so nothing frees it mid-batch; a batch
    // whose version was replaced while it waited (two jobs at once, locally) loads it again.
    for (let attempt = 0; attempt < 3; attempt++) {
      const pinned = this.pin(job.version);
      const served = await pinned.loading;
      if (pinned.disposed) continue;
      return { version: served.version, results: scoreRows(served, items, job, this.options.limits) };
    }
    throw new ValidationError(
      `Version ${job.version} of "${this.options.model}" was replaced by another job's version three times while loading; run one job at a time`,
    );
  }

  /** Frees the pinned version's model. */
  dispose(): void {
    const pinned = this.pinned;
    this.pinned = undefined;
    if (pinned) retire(pinned);
  }

  private pin(version: number): Pinned {
    if (this.pinned?.version === version) return this.pinned;
    const { registry, model, runtime, fastPath, log } = this.options;
    const previous = this.pinned;
    const pinned: Pinned = {
      version,
      disposed: false,
      loading: loadVersion(
        { model, alias: 'batch', version, seq: 0, eventId: '', updatedAt: '', etag: '' },
        { registry, model, runtime, fastPath, log },
      ),
    };
    this.pinned = pinned;
    pinned.loading.then(
      () => {
        if (previous) retire(previous);
      },
      // Not kept: the next batch reads it again (an unreachable registry may come back).
      () => {
        if (this.pinned === pinned) this.pinned = previous;
      },
    );
    return pinned;
  }
}

function retire(pinned: Pinned): void {
  if (pinned.disposed) return;
  pinned.disposed = true;
  pinned.loading.then(
    (served) => served.executor.dispose(),
    () => undefined,
  );
}

/** The event's job and items, checked: a malformed event is the state machine's mistake, not a row's. */
function checkEvent(event: unknown, model: string): { items: readonly BatchItem[]; job: BatchJob } {
  if (!isBatchEvent(event)) throw new ValidationError('Not a batch event: expected {Items, BatchInput}');
  const input = (event as BatchEvent).BatchInput;
  const forModel = assertModelName(input.model);
  if (forModel !== model) {
    throw new ValidationError(`This function serves model "${model}"; the batch is for model "${forModel}"`);
  }
  assertJobId(input.job);
  const features = input.features;
  if (
    features !== undefined &&
    features !== null &&
    !(Array.isArray(features) && features.every((f) => typeof f === 'string'))
  ) {
    throw new ValidationError('BatchInput.features must be a list of column names');
  }
  const items = event.Items;
  for (let i = 0; i < items.length; i++) {
    const item = items[i] as Partial<BatchItem> | null;
    if (typeof item !== 'object' || item === null || !Number.isSafeInteger(item.index) || item.index! < 0) {
      throw new ValidationError(`Items[${i}] must be {index, row} with index a row number from 0`);
    }
  }
  return {
    items,
    job: {
      version: parseVersion(input.version),
      format: assertBatchFormat(input.format),
      features: features && features.length > 0 ? features : undefined,
    },
  };
}

/** Each item's result, in Items order. */
function scoreRows(
  served: Served,
  items: readonly BatchItem[],
  job: BatchJob,
  limits: Limits,
): BatchRowResult[] {
  const { executor, metadata } = served;
  let read: RowsRead;
  if (job.format === 'csv') {
    const input = csvInputOf(executor.signature);
    const { features } = batchFeatures(metadata, job.features, input.width);
    read = readCsvRows(items, input, features);
  } else {
    read = readInstanceRows(items, executor.signature, {
      ...limits,
      // Bounded by the event's size (Step Functions passes at most 256 KiB), not per request.
      maxElements: Number.MAX_SAFE_INTEGER,
      maxBodyBytes: Number.MAX_SAFE_INTEGER,
    });
  }
  const results = new Array<BatchRowResult>(items.length);
  for (const [p, error] of read.errors) results[p] = { index: items[p]!.index, error };
  for (const group of read.groups) predictGroup(executor, group, items, results, limits.maxInstances);
  return results;
}

/** Runs a group's rows through the model, `maxRows` at a time; a call the model refuses is retried row by row. */
function predictGroup(
  executor: Executor,
  group: RowGroup,
  items: readonly BatchItem[],
  results: BatchRowResult[],
  maxRows: number,
): void {
  const { positions, inputs } = group;
  for (let start = 0; start < positions.length; start += maxRows) {
    const end = Math.min(positions.length, start + maxRows);
    const chunk = positions.length <= maxRows ? inputs : inputs.map((t) => rowsOf(t, start, end));
    let outputs: OutputTensor[];
    try {
      outputs = executor.predict(chunk);
    } catch (error) {
      if (!(error instanceof ValidationError)) throw error;
      if (end - start === 1) {
        const p = positions[start]!;
        results[p] = { index: items[p]!.index, error: error.message };
        continue;
      }
      for (let r = start; r < end; r++) {
        predictGroup(
          executor,
          { positions: [positions[r]!], inputs: inputs.map((t) => rowsOf(t, r, r + 1)) },
          items,
          results,
          1,
        );
      }
      continue;
    }
    const inner = outputs.map((o) => o.shape.slice(1));
    const strides = inner.map((d) => d.reduce((a, b) => a * b, 1));
    for (let r = 0; r < end - start; r++) {
      const values: Record<string, unknown> = {};
      for (let k = 0; k < outputs.length; k++) {
        values[outputs[k]!.name] = nest(outputs[k]!.values, inner[k]!, r * strides[k]!);
      }
      const p = positions[start + r]!;
      results[p] = { index: items[p]!.index, outputs: values };
    }
  }
}

/** Rows [start, end) of a batched input. */
function rowsOf(tensor: InputTensor, start: number, end: number): InputTensor {
  const per = tensor.shape.slice(1).reduce((a, b) => a * b, 1);
  return {
    ...tensor,
    shape: [end - start, ...tensor.shape.slice(1)],
    values: tensor.values.subarray(start * per, end * per),
  };
}

export interface BatchHandlerDeps {
  /** The registry's objects. @default an S3ObjectReader with the config's endpoint and timeouts */
  readonly store?: ObjectReader;
  readonly runtime?: () => Promise<TfRuntime>;
  readonly log?: Log;
}

export type BatchHandler = (event: unknown) => Promise<BatchResult>;

/**
 * A batch entry for one model's function: the Lambda `handler` routes batch events to the
 * env-configured one below; the local executor builds one per model with explicit config.
 */
export function createBatchHandler(config: InferenceConfig, deps: BatchHandlerDeps = {}): BatchHandler {
  const scorer = new BatchScorer({
    model: config.model,
    registry: registryReader(config, deps.store),
    runtime: deps.runtime ?? runtimeOnce(),
    fastPath: config.fastPath ?? 'auto',
    log: deps.log ?? jsonLog,
    limits: config.limits,
  });
  return (event) => scorer.score(event);
}

/** One JSON line per entry on the function's log, as Lambda collects it. */
const jsonLog: Log = {
  info: (message, extra) => console.log(JSON.stringify({ level: 'INFO', message, ...extra })),
  warn: (message, extra) => console.warn(JSON.stringify({ level: 'WARN', message, ...extra })),
  error: (message, extra) => console.error(JSON.stringify({ level: 'ERROR', message, ...extra })),
};

let envBatchHandler: BatchHandler | undefined;

/** Scores a batch event in Lambda, configured from the environment on first use. Throws typed errors. */
export function handleBatchEvent(event: BatchEvent): Promise<BatchResult> {
  envBatchHandler ??= createBatchHandler(configFromEnv());
  return envBatchHandler(event);
}

export { isBatchEvent };
