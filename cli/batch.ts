/**
 * `aiaas batch`: score a CSV or JSON Lines file with a model through its batch state machine (Step
 * Functions Distributed Map), and follow jobs. The input is checked against the version that will
 * score it before anything is uploaded (a CSV header naming the model's features); a local file is
 * uploaded to `batch/<model>/<job>/input.*`, an S3 URI under `batch/<model>/` is used as it is. The
 * version is resolved once, when the job starts, and pinned for every row. The same Step Functions
 * calls go to AWS or, for the local stack, to its local endpoint (scripts/local/step-functions-api.ts):
 * StartExecution, DescribeExecution, ListMapRuns/DescribeMapRun for progress. The job's own record
 * (`job.json`) and the final step's `manifest.json` in the registry are what `status` and `ls` read.
 * One module that reads better whole: the three commands share the job record, the state machine
 * lookup and the progress display, and each is a few lines over them.
 */
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { extname } from 'node:path';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  PutObjectCommand,
  type S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import {
  DescribeExecutionCommand,
  type DescribeExecutionCommandOutput,
  DescribeMapRunCommand,
  ListMapRunsCommand,
  ListStateMachinesCommand,
  SFNClient,
  StartExecutionCommand,
} from '@aws-sdk/client-sfn';
import { SingleBar } from 'cli-progress';
import type { Command } from 'commander';
import { parse } from 'csv-parse/sync';
import { type BatchJobInput, batchStateMachineName } from '../functions/shared/batch/events.js';
import { batchFeatures, checkHeader, csvInputOf } from '../functions/shared/batch/features.js';
import { AIAAS_BUCKET, AIAAS_S3_ENDPOINT, readString } from '../functions/shared/env.js';
import {
  AiaasError,
  ConfigurationError,
  NotFoundError,
  ValidationError,
} from '../functions/shared/errors.js';
import { loadManifest } from '../functions/shared/manifest.js';
import {
  assertAliasName,
  assertBatchFormat,
  assertJobId,
  DEFAULT_ALIAS,
  isBatchKey,
  keys,
  parseVersion,
  prefixesOf,
} from '../functions/shared/registry/layout.js';
import type { ModelRegistry } from '../functions/shared/registry/registry.js';
import { createS3Client } from '../functions/shared/registry/store.js';
import { type LocalStackInfo, readStackInfo, resolveTarget } from './context.js';
import { manifestEntry, manifestPath } from './retrain.js';

/** What the CLI records when it starts a job: `batch/<model>/<job>/job.json`. */
export interface JobRecord {
  readonly schema: 1;
  readonly input: BatchJobInput;
  readonly alias?: string;
  readonly stateMachineArn: string;
  readonly executionArn: string;
  readonly startedAt: string;
  readonly startedBy: string;
}

interface Io {
  readonly out: (line?: string) => void;
  readonly note: (line: string) => void;
  readonly modelArg: (value: string) => string;
}

/** Where jobs run: the registry and the Step Functions endpoint (AWS's, or the local stack's). */
interface Jobs {
  readonly registry: ModelRegistry;
  readonly bucket: string;
  readonly sfn: SFNClient;
  readonly s3: () => S3Client;
  readonly local: boolean;
}

function jobsTarget(): Jobs {
  const target = resolveTarget();
  const registry = target.registry;
  const bucket = (registry.store as { bucket?: string }).bucket ?? '';
  const deployed = readString(process.env, AIAAS_BUCKET) ?? readString(process.env, AIAAS_S3_ENDPOINT);
  if (deployed) {
    const endpoint = readString(process.env, AIAAS_S3_ENDPOINT);
    return {
      registry,
      bucket,
      local: false,
      // The region and credentials of the usual chain; AWS_ENDPOINT_URL_SFN points it elsewhere.
      sfn: new SFNClient({}),
      s3: () => createS3Client({ ...(endpoint ? { endpoint } : {}) }),
    };
  }
  const info = readStackInfo() as (LocalStackInfo & { stepFunctions?: string }) | undefined;
  if (!info?.stepFunctions) {
    throw new ConfigurationError(
      'The running local stack has no batch jobs endpoint: restart it with `npm start`',
    );
  }
  const credentials = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };
  return {
    registry,
    bucket,
    local: true,
    sfn: new SFNClient({ endpoint: info.stepFunctions, region: 'us-east-1', credentials }),
    s3: () => createS3Client({ endpoint: info.endpoint, region: 'us-east-1', credentials }),
  };
}

/** `<yyyymmdd>-<hhmmss>-<6 hex>`: sortable by start, unique, a valid execution name and key segment. */
export function newJobId(now = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  return `${stamp}-${randomBytes(3).toString('hex')}`;
}

/** The input format from a file or key name. */
function formatOf(name: string): 'csv' | 'jsonl' {
  const ext = extname(name).toLowerCase();
  if (ext === '.csv') return 'csv';
  if (ext === '.jsonl' || ext === '.ndjson') return 'jsonl';
  throw new ValidationError(`${name}: batch input is a .csv (with a header) or a .jsonl file of instances`);
}

/** `s3://bucket/key` → its key, which must be in the registry bucket under `batch/<model>/`. */
function s3Key(uri: string, bucket: string, model: string): string {
  const match = /^s3:\/\/([^/]+)\/(.+)$/.exec(uri);
  if (!match) throw new ValidationError(`${uri} is not an S3 URI (s3://bucket/key)`);
  const [, inBucket, key] = match as unknown as [string, string, string];
  if (inBucket !== bucket || !isBatchKey(model, key)) {
    throw new ValidationError(
      `${uri}: a batch job reads only s3://${bucket}/${keys.batchRoot(model)}...; copy the input there or pass a local file`,
    );
  }
  return key;
}

/**
 * Checks the input against the version before any upload: a CSV's header against the columns the
 * job will read (functions/shared/batch/features.ts), a JSON Lines file's first line as JSON.
 */
function checkInput(
  text: string,
  format: 'csv' | 'jsonl',
  metadata: Awaited<ReturnType<ModelRegistry['getMetadata']>>,
  features: readonly string[],
): void {
  const firstLine = text.replace(/^\uFEFF/, '').split(/\r?\n/, 1)[0] ?? '';
  if (format === 'jsonl') {
    try {
      JSON.parse(firstLine);
    } catch (error) {
      throw new ValidationError(`Line 1 of the input is not JSON: ${(error as Error).message}`);
    }
    return;
  }
  const input = csvInputOf(metadata.signature);
  const chosen = batchFeatures(metadata, features, input.width);
  if (firstLine.trim() === '')
    throw new ValidationError('The CSV is empty: its first line must be the header');
  let header: string[];
  try {
    header = ((parse(firstLine, { relax_quotes: true }) as string[][])[0] ?? []).map((h) => h.trim());
  } catch (error) {
    throw new ValidationError(`The CSV header cannot be read: ${(error as Error).message}`);
  }
  checkHeader(header, chosen.features, input.width);
}

const PART_BYTES = 8 * 1024 * 1024;

/** Uploads `bytes` to `key`, in parts for a large file, telling `progress` as parts land. */
async function upload(
  s3: S3Client,
  bucket: string,
  key: string,
  bytes: Uint8Array,
  contentType: string,
  progress: (done: number, total: number) => void,
): Promise<void> {
  progress(0, bytes.byteLength);
  if (bytes.byteLength <= PART_BYTES) {
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: bytes, ContentType: contentType }));
    progress(bytes.byteLength, bytes.byteLength);
    return;
  }
  const { UploadId } = await s3.send(
    new CreateMultipartUploadCommand({ Bucket: bucket, Key: key, ContentType: contentType }),
  );
  try {
    const parts: { ETag: string; PartNumber: number }[] = [];
    let done = 0;
    for (let start = 0, n = 1; start < bytes.byteLength; start += PART_BYTES, n++) {
      const body = bytes.subarray(start, Math.min(bytes.byteLength, start + PART_BYTES));
      const { ETag } = await s3.send(
        new UploadPartCommand({ Bucket: bucket, Key: key, UploadId, PartNumber: n, Body: body }),
      );
      parts.push({ ETag: ETag ?? '', PartNumber: n });
      done += body.byteLength;
      progress(done, bytes.byteLength);
    }
    await s3.send(
      new CompleteMultipartUploadCommand({
        Bucket: bucket,
        Key: key,
        UploadId,
        MultipartUpload: { Parts: parts },
      }),
    );
  } catch (error) {
    await s3
      .send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId }))
      .catch(() => undefined);
    throw error;
  }
}

async function stateMachineArn(jobs: Jobs, model: string): Promise<string> {
  let app = 'aiaas';
  try {
    app = loadManifest(manifestPath()).app;
  } catch {}
  const name = batchStateMachineName(app, model);
  let nextToken: string | undefined;
  for (let page = 0; page < 100; page++) {
    const listed = await jobs.sfn.send(new ListStateMachinesCommand({ ...(nextToken ? { nextToken } : {}) }));
    const found = listed.stateMachines?.find((m) => m.name === name);
    if (found?.stateMachineArn) return found.stateMachineArn;
    nextToken = listed.nextToken;
    if (!nextToken) break;
  }
  throw new ConfigurationError(
    `No state machine "${name}"${jobs.local ? ' in the local stack' : ''}: give the model "batch": {} in the manifest and deploy it`,
  );
}

const bytes = (n: number) =>
  n >= 1e6 ? `${(n / 1e6).toFixed(1)} MB` : n >= 1e3 ? `${(n / 1e3).toFixed(1)} kB` : `${n} B`;
const count = (n: number) => n.toLocaleString('en-US');

/** Rows done and failed, from the Map Run (AWS counts items of failed batches as failed). */
async function mapProgress(
  jobs: Jobs,
  executionArn: string,
): Promise<{ total: number; done: number; failed: number } | undefined> {
  const runs = await jobs.sfn.send(new ListMapRunsCommand({ executionArn }));
  const mapRunArn = runs.mapRuns?.[0]?.mapRunArn;
  if (!mapRunArn) return undefined;
  const run = await jobs.sfn.send(new DescribeMapRunCommand({ mapRunArn }));
  const items = run.itemCounts;
  if (!items) return undefined;
  return {
    total: items.total ?? 0,
    done: (items.succeeded ?? 0) + (items.failed ?? 0) + (items.timedOut ?? 0) + (items.aborted ?? 0),
    failed: (items.failed ?? 0) + (items.timedOut ?? 0) + (items.aborted ?? 0),
  };
}

/** Polls the execution to its end, showing rows done / failed, rate and ETA. */
async function follow(
  jobs: Jobs,
  executionArn: string,
  pollMs: number,
): Promise<DescribeExecutionCommandOutput> {
  const bar = new SingleBar({
    format: 'scoring [{bar}] {value}/{total} rows | {failed} failed | {rate} rows/s | ETA {eta_formatted}',
    hideCursor: true,
    stream: process.stderr,
    noTTYOutput: true,
    notTTYSchedule: 2000,
    etaBuffer: 20,
  });
  let started = false;
  const firstAt = Date.now();
  try {
    for (;;) {
      const execution = await jobs.sfn.send(new DescribeExecutionCommand({ executionArn }));
      const progress = await mapProgress(jobs, executionArn).catch(() => undefined);
      if (progress && progress.total > 0) {
        const rate = Math.round(progress.done / Math.max(0.001, (Date.now() - firstAt) / 1000));
        const payload = { failed: count(progress.failed), rate: count(rate) };
        if (!started) {
          bar.start(progress.total, progress.done, payload);
          started = true;
        }
        bar.setTotal(progress.total);
        bar.update(progress.done, payload);
      }
      if (execution.status !== 'RUNNING' && execution.status !== 'PENDING_REDRIVE') return execution;
      await new Promise((resolve) => setTimeout(resolve, pollMs));
    }
  } finally {
    if (started) bar.stop();
  }
}

async function readJson<T>(registry: ModelRegistry, key: string): Promise<T | undefined> {
  const object = await registry.store.get(key);
  if (!object) return undefined;
  try {
    return JSON.parse(new TextDecoder().decode(object.body)) as T;
  } catch {
    throw new AiaasError(`${key} is not valid JSON`);
  }
}

interface ManifestView {
  readonly status: string;
  readonly version: number;
  readonly rows: number;
  readonly succeeded: number;
  readonly failed: number;
  readonly output: string;
  readonly failures: string;
  readonly durationMs: number;
  readonly failedBatches: readonly unknown[];
  readonly mapError?: { readonly error: string; readonly cause: string };
}

function printManifest(io: Io, bucket: string, manifest: ManifestView, manifestKey: string): void {
  io.out(
    `${manifest.status === 'succeeded' ? 'Done' : 'Failed'}: ${count(manifest.rows)} rows, ${count(manifest.succeeded)} scored, ${count(manifest.failed)} failed, by v${manifest.version} in ${(manifest.durationMs / 1000).toFixed(1)} s`,
  );
  if (manifest.mapError) io.out(`  map error: ${manifest.mapError.error}: ${manifest.mapError.cause}`);
  if (manifest.failedBatches.length > 0) io.out(`  ${manifest.failedBatches.length} batches failed whole`);
  io.out(`  output:   s3://${bucket}/${manifest.output}`);
  io.out(`  failures: s3://${bucket}/${manifest.failures}`);
  io.out(`  manifest: s3://${bucket}/${manifestKey}`);
}

export function batchCommand(program: Command, io: Io): void {
  const { out, note, modelArg } = io;
  const batch = program
    .command('batch')
    .description(
      'score a CSV (header naming the features) or JSON Lines file with a model, on its batch state machine',
    )
    .argument('<model>', 'model name', modelArg)
    .argument('<input>', 'a local .csv / .jsonl file, or s3://<registry bucket>/batch/<model>/...')
    .option('-o, --output <file>', 'also download the output to this file')
    .option('--version <n>', 'the version that scores every row', (v: string) => parseVersion(v))
    .option(
      '--alias <alias>',
      "the alias whose version scores every row (default: the manifest's, else live)",
      (a: string) => assertAliasName(a),
    )
    .option('--job <id>', 'the job id (default: <date>-<time>-<random>)', (j: string) => assertJobId(j))
    .option('--no-wait', 'start the job and return')
    .action(
      async (
        model: string,
        input: string,
        opts: { output?: string; version?: number; alias?: string; job?: string; wait: boolean },
      ) => {
        if (opts.version !== undefined && opts.alias !== undefined) {
          throw new ValidationError('Give --version or --alias, not both');
        }
        const jobs = jobsTarget();
        const { registry, bucket } = jobs;
        // The version is resolved now, once: every row of the job is scored by it.
        const alias =
          opts.version === undefined
            ? (opts.alias ?? manifestEntry(model)?.alias ?? DEFAULT_ALIAS)
            : undefined;
        const version =
          opts.version ?? (alias ? (await registry.getAlias(model, alias))?.version : undefined);
        if (version === undefined)
          throw new NotFoundError(`${model}@${alias} is not set: pass --version <n>`);
        const metadata = await registry.getMetadata(model, version);
        const features = manifestEntry(model)?.definition?.features ?? [];
        const job = opts.job ?? newJobId();
        const fromS3 = input.startsWith('s3://');
        const format = assertBatchFormat(formatOf(input));
        const inputKey = fromS3 ? s3Key(input, bucket, model) : keys.batchInput(model, job, format);
        let body: Uint8Array;
        if (fromS3) {
          const object = await registry.store.get(inputKey);
          if (!object) throw new NotFoundError(`${input} does not exist`);
          body = object.body;
        } else {
          body = await readFile(input);
        }
        checkInput(new TextDecoder().decode(body.subarray(0, 64 * 1024)), format, metadata, features);
        const stateMachine = await stateMachineArn(jobs, model);
        if ((await registry.store.list(keys.batchJob(model, job))).length > 0 && !fromS3) {
          throw new ValidationError(`Job ${job} of ${model} already exists`);
        }
        if (!fromS3) {
          const bar = new SingleBar({
            format: 'uploading [{bar}] {percentage}% | {done}/{size}',
            hideCursor: true,
            stream: process.stderr,
            noTTYOutput: false,
          });
          let barStarted = false;
          try {
            await upload(
              jobs.s3(),
              bucket,
              inputKey,
              body,
              format === 'csv' ? 'text/csv' : 'application/x-ndjson',
              (done, total) => {
                const payload = { done: bytes(done), size: bytes(total) };
                if (!barStarted) bar.start(total, done, payload);
                barStarted = true;
                bar.update(done, payload);
              },
            );
          } finally {
            if (barStarted) bar.stop();
          }
        }
        const jobInput: BatchJobInput = { model, version, job, format, inputKey, features };
        const started = await jobs.sfn.send(
          new StartExecutionCommand({
            stateMachineArn: stateMachine,
            name: job,
            input: JSON.stringify(jobInput),
          }),
        );
        const executionArn = started.executionArn ?? '';
        const record: JobRecord = {
          schema: 1,
          input: jobInput,
          ...(alias ? { alias } : {}),
          stateMachineArn: stateMachine,
          executionArn,
          startedAt: (started.startDate ?? new Date()).toISOString(),
          startedBy: registry.actor,
        };
        await registry.store.put(keys.batchJobRecord(model, job), `${JSON.stringify(record, null, 2)}\n`, {
          contentType: 'application/json',
        });
        out(
          `Job ${job}: ${model} v${version}${alias ? ` (${alias})` : ''}, input s3://${bucket}/${inputKey}`,
        );
        if (!opts.wait) {
          out(`Follow it with: aiaas batch status ${job}`);
          return;
        }
        const ended = await follow(jobs, executionArn, jobs.local ? 300 : 2000);
        const manifestKey = keys.batchManifest(model, job);
        const manifest = await readJson<ManifestView>(registry, manifestKey);
        if (manifest) printManifest(io, bucket, manifest, manifestKey);
        if (ended.status !== 'SUCCEEDED') {
          throw new AiaasError(
            `Job ${job} ${String(ended.status).toLowerCase()}: ${ended.error ?? 'no error given'}${ended.cause ? `: ${ended.cause}` : ''}`,
          );
        }
        if (!manifest) throw new AiaasError(`Job ${job} ended without writing ${manifestKey}`);
        if (opts.output) {
          const output = await registry.store.get(manifest.output);
          if (!output) throw new NotFoundError(`The output s3://${bucket}/${manifest.output} is missing`);
          await writeFile(opts.output, output.body);
          out(`Wrote ${opts.output} (${bytes(output.body.byteLength)})`);
        }
        if (manifest.failed > 0) note(`${count(manifest.failed)} rows failed: see the failures file`);
      },
    );

  batch
    .command('status')
    .description("a job's state: progress while it runs, then its counts and files")
    .argument('<job>', 'job id', (j: string) => assertJobId(j))
    .option('-m, --model <name>', 'the model (default: looked up)', modelArg)
    .option('--json', 'machine-readable output')
    .action(async (job: string, opts: { model?: string; json?: boolean }) => {
      const jobs = jobsTarget();
      const { registry, bucket } = jobs;
      let model = opts.model;
      if (!model) {
        for (const m of await registry.listModels()) {
          if (await registry.store.get(keys.batchJobRecord(m, job))) {
            model = m;
            break;
          }
        }
      }
      const record = model ? await readJson<JobRecord>(registry, keys.batchJobRecord(model, job)) : undefined;
      if (!model || !record)
        throw new NotFoundError(`No batch job ${job}${opts.model ? ` of ${opts.model}` : ''}`);
      const manifestKey = keys.batchManifest(model, job);
      const manifest = await readJson<ManifestView>(registry, manifestKey);
      let execution: DescribeExecutionCommandOutput | undefined;
      let progress: Awaited<ReturnType<typeof mapProgress>>;
      try {
        execution = await jobs.sfn.send(new DescribeExecutionCommand({ executionArn: record.executionArn }));
        progress = await mapProgress(jobs, record.executionArn);
      } catch (error) {
        // A local stack restarted since: the execution is gone, its files are not.
        if ((error as Error).name !== 'ExecutionDoesNotExist') throw error;
      }
      const status = execution?.status ?? (manifest ? manifest.status.toUpperCase() : 'UNKNOWN');
      if (opts.json) return out(JSON.stringify({ job, model, status, record, progress, manifest }, null, 2));
      out(
        `Job ${job}: ${model} v${record.input.version}, ${status.toLowerCase()} (started ${record.startedAt})`,
      );
      if (!manifest && progress) {
        out(`  ${count(progress.done)}/${count(progress.total)} rows done, ${count(progress.failed)} failed`);
      }
      if (manifest) printManifest(io, bucket, manifest, manifestKey);
      if (execution?.error)
        out(`  error: ${execution.error}${execution.cause ? `: ${execution.cause}` : ''}`);
    });

  batch
    .command('ls')
    .description("a model's batch jobs, newest first")
    .argument('<model>', 'model name', modelArg)
    .option('--json', 'machine-readable output')
    .action(async (model: string, opts: { json?: boolean }) => {
      const { registry } = jobsTarget();
      const root = keys.batchRoot(model);
      const listed = await registry.store.list(root);
      const ids = prefixesOf(listed, root)
        .map((p) => p.slice(root.length, -1))
        .sort()
        .reverse();
      const present = new Set(listed.map((o) => o.key));
      const rows = await Promise.all(
        ids.map(async (job) => {
          const record = await readJson<JobRecord>(registry, keys.batchJobRecord(model, job)).catch(
            () => undefined,
          );
          const manifest = present.has(keys.batchManifest(model, job))
            ? await readJson<ManifestView>(registry, keys.batchManifest(model, job)).catch(() => undefined)
            : undefined;
          return {
            job,
            startedAt: record?.startedAt ?? '',
            version: record?.input.version ?? manifest?.version,
            status: manifest?.status ?? (record ? 'running' : 'unknown'),
            rows: manifest?.rows,
            failed: manifest?.failed,
            output: manifest?.output,
          };
        }),
      );
      if (opts.json) return out(JSON.stringify({ model, jobs: rows }, null, 2));
      if (rows.length === 0) return out(`No batch jobs of ${model}`);
      const table = [
        ['JOB', 'STARTED', 'VERSION', 'STATUS', 'ROWS', 'FAILED'],
        ...rows.map((r) => [
          r.job,
          r.startedAt.replace('T', ' ').slice(0, 19),
          r.version === undefined ? '' : `v${r.version}`,
          r.status,
          r.rows === undefined ? '' : count(r.rows),
          r.failed === undefined ? '' : count(r.failed),
        ]),
      ];
      const widths = table[0]!.map((_, i) => Math.max(...table.map((r) => r[i]!.length)));
      for (const r of table)
        out(
          r
            .map((c, i) => c.padEnd(widths[i]!))
            .join('  ')
            .trimEnd(),
        );
    });
}
