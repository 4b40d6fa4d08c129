/**
 * The local batch executor: runs a model's batch state machine, as `cdk synth` renders it
 * (infra/batch-definition.ts), against the local stack: the input and ResultWriter's files in the
 * local S3 (s3rver), each batch scored in this process by the built inference bundle's
 * `createBatchHandler` (the code the model's function runs for a BatchEvent), the final step by the
 * assemble handler. `runLocalBatchJob` is what the local stack's batch jobs call; it reports rows
 * done and failed as batches finish.
 *
 * What it does not emulate is NOT_EMULATED, printed once per process.
 */
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { DIST } from '../../../cli/paths.js';
import { createAssembleHandler } from '../../../functions/batch/assemble.js';
import type { InferenceConfig } from '../../../functions/inference/config.js';
import {
  type BatchJobInput,
  type BatchResult,
  batchStateMachineName,
} from '../../../functions/shared/batch/events.js';
import type { ModelSpec } from '../../../functions/shared/manifest.js';
import { createS3Client, type ObjectStore, S3ObjectStore } from '../../../functions/shared/registry/store.js';
import type { RenderedBatchDefinition } from '../../../infra/batch-definition.js';
import { LOCAL_CREDENTIALS } from '../s3.js';
import { type ChildOutcome, execute, type TaskFunction, type TaskHandler } from './interpreter.js';
import { LambdaPool } from './lambda-pool.js';

/** What the local executor leaves out; the local stack prints it once. */
export const NOT_EMULATED = [
  'IAM: the state machine role and the assemble role are not checked (the local S3 accepts any key and signature).',
  'Lambda: batches run in at most one execution environment (a worker thread) per core, not MaxConcurrency; no throttling, memory or CPU sizes; an environment idle for 5 minutes is stopped.',
  'Step Functions: Express and Standard children run alike, once each; quotas other than the 256 KiB payload are not applied; no DescribeMapRun, redrive, stop, X-Ray or CloudWatch logs.',
  'A Task past its TimeoutSeconds fails with States.Timeout, but its handler is not killed: it finishes in the background.',
  'ResultWriter files are cut at 8 MiB (Step Functions: 5 GB); ARNs, names and dates in them are made up locally.',
  'CSV and JSON Lines where the Step Functions documentation is silent follow the choices in scripts/local/batch/item-reader.ts.',
] as const;

let told = false;
/** Prints NOT_EMULATED once per process. */
export function tellNotEmulated(
  log: (line: string) => void = (line) => process.stderr.write(`${line}\n`),
): void {
  if (told) return;
  told = true;
  log(
    `Local batch jobs run the deployed state machine's definition here, except:\n- ${NOT_EMULATED.join('\n- ')}`,
  );
}

/** Progress of a job, after each batch. */
export interface LocalBatchProgress {
  /** Rows the input has, once read. */
  readonly rows?: number;
  /** Rows of finished batches (scored or failed). */
  readonly rowsDone: number;
  /** Rows that failed: rows the model refused, and every row of a batch that failed whole. */
  readonly rowsFailed: number;
  readonly batchesDone: number;
  readonly batchesFailed: number;
}

export interface LocalBatchJobOptions {
  /** The model's manifest entry: its `batch` settings (defaults when absent), timeout, fast path. */
  readonly model: Pick<ModelSpec, 'name' | 'timeoutSeconds' | 'batch' | 'fastPath'>;
  /** The execution input. */
  readonly input: BatchJobInput;
  /** The local S3 and its registry bucket. */
  readonly s3: { readonly endpoint: string; readonly bucket: string };
  /** The state machine's name. @default batchStateMachineName('aiaas', model) */
  readonly stateMachineName?: string;
  /** The definition to run. @default the model's, rendered from the construct (loads aws-cdk-lib) */
  readonly definition?: RenderedBatchDefinition;
  /** The built inference bundle. @default dist/functions/inference/index.mjs */
  readonly bundle?: string;
  /** The final step. @default functions/batch/assemble.ts's handler, in this process */
  readonly assemble?: TaskFunction;
  /** The scorer, instead of the bundle's (tests). */
  readonly score?: TaskHandler;
  readonly onProgress?: (progress: LocalBatchProgress) => void;
  /** Where NOT_EMULATED is printed (once per process). @default stderr */
  readonly log?: (line: string) => void;
  /** Retry waits scaled by this (tests). @default 1 */
  readonly retryDelayScale?: number;
  /**
   * Lambda execution environments (worker threads, lambda-pool.ts) the bundle's scorer runs in; 0
   * runs it in this thread. @default one per core (os.availableParallelism()), at most the Map's MaxConcurrency
   */
  readonly threads?: number;
}

/** Where a job's time went, in milliseconds (the Distributed Map's phases and the final step). */
export interface LocalBatchTimings {
  /** Reading the input from S3 and splitting it into records (ItemReader). */
  readonly readMs?: number;
  /** The child executions: making each batch (ItemSelector, ItemBatcher) as it starts, scoring it; ResultWriter's full files. */
  readonly childrenMs?: number;
  /** ResultWriter's last files and its manifest. */
  readonly resultsMs?: number;
  /** The final step. */
  readonly assembleMs?: number;
}

export interface LocalBatchResult {
  readonly status: 'SUCCEEDED' | 'FAILED';
  /** The execution's output (the assemble step's summary) when it succeeded. */
  readonly output?: unknown;
  readonly error?: string;
  readonly cause?: string;
  readonly startDate: Date;
  readonly stopDate: Date;
  readonly progress: LocalBatchProgress;
  readonly timings: LocalBatchTimings;
  /** Execution environments (worker threads) the batches were scored in; 0: this thread. */
  readonly threads: number;
}

/** Runs one batch job of `options.model` locally, to the end. */
export async function runLocalBatchJob(options: LocalBatchJobOptions): Promise<LocalBatchResult> {
  tellNotEmulated(options.log);
  localCredentials();
  const { model, s3 } = options;
  const rendered = options.definition ?? (await renderFor(model, s3.bucket));
  const client = createS3Client({
    endpoint: s3.endpoint,
    credentials: LOCAL_CREDENTIALS,
    region: 'us-east-1',
  });
  const store: ObjectStore = new S3ObjectStore(client, s3.bucket, s3.endpoint);
  let progress: LocalBatchProgress = { rowsDone: 0, rowsFailed: 0, batchesDone: 0, batchesFailed: 0 };
  const onChild = (outcome: ChildOutcome) => {
    const refused =
      outcome.status === 'SUCCEEDED'
        ? ((outcome.output as Partial<BatchResult> | null)?.results ?? []).filter((r) => 'error' in r).length
        : outcome.items;
    progress = {
      ...progress,
      rowsDone: progress.rowsDone + outcome.items,
      rowsFailed: progress.rowsFailed + refused,
      batchesDone: progress.batchesDone + 1,
      batchesFailed: progress.batchesFailed + (outcome.status === 'FAILED' ? 1 : 0),
    };
    options.onProgress?.(progress);
  };
  const timings: { -readonly [K in keyof LocalBatchTimings]: number } = {};
  const threads = options.score
    ? 0
    : (options.threads ?? Math.min(availableParallelism(), maxConcurrencyOf(rendered)));
  const assemble = options.assemble ?? localAssembler(model.name, s3);
  const timedAssemble: TaskFunction = async (event) => {
    const started = performance.now();
    try {
      return await assemble(event);
    } finally {
      timings.assembleMs = performance.now() - started;
    }
  };
  try {
    const result = await execute(rendered.definition, options.input, {
      tasks: {
        [rendered.scorerArn]: options.score ?? (await bundleScorer(options, threads)),
        [rendered.assemblerArn]: timedAssemble,
      },
      store,
      bucket: s3.bucket,
      stateMachineName: options.stateMachineName ?? batchStateMachineName('aiaas', model.name),
      executionName: options.input.job,
      onMapStart: (rows) => {
        progress = { ...progress, rows };
        options.onProgress?.(progress);
      },
      onChild,
      onPhase: (phase, ms) => {
        timings[`${phase}Ms`] = ms;
      },
      ...(options.retryDelayScale !== undefined ? { retryDelayScale: options.retryDelayScale } : {}),
    });
    return { ...result, progress, timings, threads };
  } finally {
    client.destroy();
  }
}

/** The model's definition as deployed (imports the CDK only when called). */
async function renderFor(
  model: LocalBatchJobOptions['model'],
  bucket: string,
): Promise<RenderedBatchDefinition> {
  const { localBatchDefinition } = await import('./definition.js');
  return localBatchDefinition(model, bucket);
}

/** Warm scorers by bundle, model, registry and threads, as one function per model would be. */
const scorers = new Map<string, { readonly endpoint: string; readonly scorer: Promise<TaskHandler> }>();

/** Stops the execution environments of jobs on the local S3 at `endpoint` (its local stack is stopping). */
export async function stopScorers(endpoint: string): Promise<void> {
  const stopping: Promise<void>[] = [];
  for (const [key, entry] of scorers) {
    if (entry.endpoint !== endpoint) continue;
    scorers.delete(key);
    stopping.push(
      entry.scorer.then((s) => (s instanceof LambdaPool ? s.close() : undefined)).catch(() => {}),
    );
  }
  await Promise.all(stopping);
}

async function bundleScorer(options: LocalBatchJobOptions, threads: number): Promise<TaskHandler> {
  const { model, s3 } = options;
  const bundle = pathToFileURL(options.bundle ?? join(DIST, 'functions/inference/index.mjs')).href;
  const key = JSON.stringify([bundle, model.name, model.fastPath, s3.endpoint, s3.bucket, threads]);
  let scorer = scorers.get(key)?.scorer;
  if (!scorer) {
    const config: InferenceConfig = {
      bucket: s3.bucket,
      model: model.name,
      alias: 'live',
      endpoint: s3.endpoint,
      aliasCheckSeconds: 60,
      fastPath: model.fastPath ?? 'auto',
      limits: { maxInstances: 10_000, maxElements: 1_000_000, maxBodyBytes: 6 * 1024 * 1024 },
    };
    scorer =
      threads > 0
        ? Promise.resolve(new LambdaPool({ bundle, config, size: threads }))
        : inThread(bundle, config);
    scorers.set(key, { endpoint: s3.endpoint, scorer });
    scorer.catch(() => scorers.delete(key));
  }
  return scorer;
}

/** The bundle's batch handler in this thread. */
async function inThread(bundle: string, config: InferenceConfig): Promise<TaskHandler> {
  const mod = (await import(bundle)) as { createBatchHandler?: (config: InferenceConfig) => TaskHandler };
  if (typeof mod.createBatchHandler !== 'function') {
    throw new Error(`${bundle} exports no createBatchHandler: run npm run build`);
  }
  return mod.createBatchHandler(config);
}

/** The largest MaxConcurrency of the definition's Maps (0: unlimited, as Step Functions reads it). */
function maxConcurrencyOf(rendered: RenderedBatchDefinition): number {
  const limits = Object.values(rendered.definition.States)
    .filter((state) => state.Type === 'Map')
    .map((state) => Number(state.MaxConcurrency ?? 0));
  return limits.some((m) => !(m > 0)) ? Number.POSITIVE_INFINITY : Math.max(1, ...limits);
}

/** The assemble step, in this process, on the local S3. */
function localAssembler(model: string, s3: LocalBatchJobOptions['s3']): TaskFunction {
  return createAssembleHandler({ bucket: s3.bucket, endpoint: s3.endpoint, model });
}

/** Lambda gives a function its credentials in the environment; s3rver takes any. */
function localCredentials(): void {
  process.env.AWS_ACCESS_KEY_ID ??= LOCAL_CREDENTIALS.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY ??= LOCAL_CREDENTIALS.secretAccessKey;
  process.env.AWS_REGION ??= 'us-east-1';
}
