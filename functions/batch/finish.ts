/**
 * A batch job's final step: reads what ResultWriter recorded for the Distributed Map (its manifest
 * and result files, functions/shared/batch/results.ts) and the job's input, and writes under
 * `batch/<model>/<job>/` the output (input order), failures.csv and manifest.json
 * (functions/shared/batch/assemble.ts). Reads and writes only that job's keys: every key it is
 * given is checked to be there. When the Map itself failed, it still writes what the batches that
 * ran produced, and records the Map's error. Throws typed errors (a wrong event, a missing input).
 */

import {
  type Assembled,
  assembleCsv,
  assembleJsonl,
  collectOutcomes,
  type FailedBatch,
  type FailedRow,
  type Located,
} from '../shared/batch/assemble.js';
import type { BatchAssembleEvent, BatchJobInput, BatchSummary } from '../shared/batch/events.js';
import { parseResultFile, parseResultManifest, type ResultWriterManifest } from '../shared/batch/results.js';
import { IntegrityError, NotFoundError, ValidationError } from '../shared/errors.js';
import {
  assertBatchFormat,
  assertJobId,
  assertModelName,
  isBatchKey,
  keys,
  parseVersion,
} from '../shared/registry/layout.js';
import type { ObjectStore } from '../shared/registry/store.js';

/** Failed rows listed in manifest.json; failures.csv lists them all. */
export const MANIFEST_FAILED_ROWS = 1000;

/** `batch/<model>/<job>/manifest.json`: what a finished job did. */
export interface BatchManifest {
  readonly schema: 1;
  readonly model: string;
  readonly job: string;
  readonly version: number;
  readonly format: 'csv' | 'jsonl';
  /** `succeeded`: the map run finished (some rows or batches may have failed); `failed`: it did not. */
  readonly status: 'succeeded' | 'failed';
  readonly input: string;
  readonly output: string;
  readonly failures: string;
  readonly rows: number;
  readonly succeeded: number;
  readonly failed: number;
  readonly outputs: readonly string[];
  /** The first MANIFEST_FAILED_ROWS failed rows, in input order. */
  readonly failedRows: readonly FailedRow[];
  readonly failedRowsListed: number;
  readonly failedBatches: readonly (FailedBatch & {
    readonly firstLine?: number;
    readonly lastLine?: number;
  })[];
  readonly mapError?: { readonly error: string; readonly cause: string };
  readonly mapRunArn?: string;
  readonly startedAt: string;
  readonly endedAt: string;
  readonly durationMs: number;
  readonly notes: readonly string[];
}

export interface FinishOptions {
  readonly store: ObjectStore;
  /** The registry bucket: ResultWriter's must be it. */
  readonly bucket: string;
  /** The model this function finishes jobs of, when deployed per model. */
  readonly model?: string;
  readonly now?: () => Date;
}

/** See the module comment. */
export async function finishJob(event: unknown, options: FinishOptions): Promise<BatchSummary> {
  const { job, startedAt, map } = checkEvent(event, options.model);
  const { store } = options;
  const { model } = job;
  const results = `${keys.batchResults(model, job.job)}/`;
  // The input is read while ResultWriter's files are (its failure is reported where it is awaited).
  const inputRead = store.get(job.inputKey);
  inputRead.catch(() => undefined);

  // 1. ResultWriter's manifest: where the Map says, else (the Map failed) the newest one written.
  let manifestKey: string | undefined;
  const details = 'ResultWriterDetails' in map ? map.ResultWriterDetails : undefined;
  if (details) {
    if (details.Bucket !== options.bucket || !details.Key.startsWith(results)) {
      throw new ValidationError(
        `ResultWriter wrote to s3://${details.Bucket}/${details.Key}; this job's results belong under s3://${options.bucket}/${results}`,
      );
    }
    manifestKey = details.Key;
  } else {
    const written = (await store.list(results))
      .filter((o) => o.key.endsWith('/manifest.json'))
      .sort((a, b) => (a.lastModified?.getTime() ?? 0) - (b.lastModified?.getTime() ?? 0));
    manifestKey = written.at(-1)?.key;
  }
  let writer: ResultWriterManifest = { ResultFiles: { SUCCEEDED: [], FAILED: [], PENDING: [] } };
  if (manifestKey) {
    const object = await store.get(manifestKey);
    if (!object) throw new NotFoundError(`ResultWriter's manifest ${manifestKey} does not exist`);
    writer = parseResultManifest(new TextDecoder().decode(object.body), manifestKey);
  }

  // 2. Every batch's outcome.
  const read = async (list: readonly { Key: string }[]): Promise<Located[]> => {
    const files = await Promise.all(
      list.map(async ({ Key }) => {
        if (!Key.startsWith(results)) {
          throw new IntegrityError(`ResultWriter's manifest lists ${Key}, outside this job's ${results}`);
        }
        const object = await store.get(Key);
        if (!object) throw new IntegrityError(`ResultWriter's file ${Key} is missing`);
        return parseResultFile(new TextDecoder().decode(object.body), Key).map((child, i) => ({
          child,
          where: `${Key} entry ${i}`,
        }));
      }),
    );
    return files.flat();
  };
  const [succeeded, failed, pending] = await Promise.all([
    read(writer.ResultFiles.SUCCEEDED),
    read(writer.ResultFiles.FAILED),
    read(writer.ResultFiles.PENDING),
  ]);
  const outcomes = collectOutcomes(job.version, { succeeded, failed, pending });

  // 3. The output, in input order.
  const input = await inputRead;
  if (!input) throw new NotFoundError(`The job's input ${job.inputKey} does not exist`);
  const assembled: Assembled =
    job.format === 'csv' ? assembleCsv(input.body, outcomes) : assembleJsonl(input.body, outcomes);

  const output = keys.batchOutput(model, job.job, job.format);
  const failures = keys.batchFailures(model, job.job);
  const manifest = keys.batchManifest(model, job.job);
  const ended = (options.now ?? (() => new Date()))();
  const lineOf = (index: number | undefined) =>
    index === undefined ? undefined : index + (job.format === 'csv' ? 2 : 1);
  const mapError = 'ResultWriterDetails' in map ? undefined : map;
  const record: BatchManifest = {
    schema: 1,
    model,
    job: job.job,
    version: job.version,
    format: job.format,
    status: mapError ? 'failed' : 'succeeded',
    input: job.inputKey,
    output,
    failures,
    rows: assembled.rows,
    succeeded: assembled.succeeded,
    failed: assembled.failed,
    outputs: assembled.outputNames,
    failedRows: assembled.failedRows.slice(0, MANIFEST_FAILED_ROWS),
    failedRowsListed: Math.min(assembled.failedRows.length, MANIFEST_FAILED_ROWS),
    failedBatches: outcomes.failedBatches.map((b) => {
      const firstLine = lineOf(b.firstIndex);
      const lastLine = lineOf(b.lastIndex);
      return {
        ...b,
        ...(firstLine !== undefined ? { firstLine } : {}),
        ...(lastLine !== undefined ? { lastLine } : {}),
      };
    }),
    ...(mapError
      ? { mapError: { error: mapError.Error ?? 'unknown error', cause: mapError.Cause ?? '' } }
      : {}),
    ...(writer.MapRunArn ? { mapRunArn: writer.MapRunArn } : {}),
    startedAt,
    endedAt: ended.toISOString(),
    durationMs: Math.max(0, ended.getTime() - Date.parse(startedAt)),
    notes: assembled.notes,
  };
  await Promise.all([
    store.put(output, assembled.output, {
      contentType: job.format === 'csv' ? 'text/csv' : 'application/x-ndjson',
    }),
    store.put(failures, assembled.failures, { contentType: 'text/csv' }),
  ]);
  // Written last, once both are: its presence says the job's files are complete.
  await store.put(manifest, `${JSON.stringify(record, null, 2)}\n`, { contentType: 'application/json' });
  return {
    model,
    job: job.job,
    version: job.version,
    rows: record.rows,
    succeeded: record.succeeded,
    failed: record.failed,
    output,
    failures,
    manifest,
  };
}

/** The event, checked: names through the layout's checks, the input under the model's batch prefix. */
function checkEvent(
  event: unknown,
  model: string | undefined,
): { job: BatchJobInput; startedAt: string; map: BatchAssembleEvent['map'] } {
  const e = event as Partial<BatchAssembleEvent> | null;
  if (typeof e !== 'object' || e === null || typeof e.job !== 'object' || e.job === null) {
    throw new ValidationError('Not a batch final-step event: expected {job, startedAt, map}');
  }
  const job = e.job;
  const forModel = assertModelName(job.model);
  if (model !== undefined && forModel !== model) {
    throw new ValidationError(
      `This function finishes jobs of model "${model}"; the job is for "${forModel}"`,
    );
  }
  if (typeof job.inputKey !== 'string' || !isBatchKey(forModel, job.inputKey)) {
    throw new ValidationError(
      `The job's input ${JSON.stringify(job.inputKey)} is not under ${keys.batchRoot(forModel)}`,
    );
  }
  const startedAt = typeof e.startedAt === 'string' ? e.startedAt : '';
  if (Number.isNaN(Date.parse(startedAt))) {
    throw new ValidationError(`startedAt must be a time (ISO 8601), got ${JSON.stringify(e.startedAt)}`);
  }
  const map = typeof e.map === 'object' && e.map !== null ? e.map : {};
  const details = (map as { ResultWriterDetails?: { Bucket?: unknown; Key?: unknown } }).ResultWriterDetails;
  if (details !== undefined && (typeof details?.Bucket !== 'string' || typeof details.Key !== 'string')) {
    throw new ValidationError('map.ResultWriterDetails must be {Bucket, Key}');
  }
  return {
    job: {
      model: forModel,
      job: assertJobId(job.job),
      version: parseVersion(job.version),
      format: assertBatchFormat(job.format),
      inputKey: job.inputKey,
      ...(Array.isArray(job.features) ? { features: job.features } : {}),
    },
    startedAt: new Date(Date.parse(startedAt)).toISOString(),
    map,
  };
}
