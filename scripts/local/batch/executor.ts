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
import { type ChildOutcome, execute, type TaskHandler } from './interpreter.js';

/** What the local executor leaves out; the local stack prints it once. */
export const NOT_EMULATED = [
  'IAM: the state machine role and the assemble role are not checked (the local S3 accepts any key and signature).',
  'Lambda: no concurrency limits, throttling, cold starts, memory or CPU sizes; batches of one job share this process and one warm handler.',
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
  readonly assemble?: TaskHandler;
  /** The scorer, instead of the bundle's (tests). */
  readonly score?: TaskHandler;
  readonly onProgress?: (progress: LocalBatchProgress) => void;
  /** Where NOT_EMULATED is printed (once per process). @default stderr */
  readonly log?: (line: string) => void;
  /** Retry waits scaled by this (tests). @default 1 */
  readonly retryDelayScale?: number;
  /** Tasks get JSON copies of their input and output, as from Lambda (the bench also measures `false`). @default true */
  readonly copyPayloads?: boolean;
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
  const assemble = options.assemble ?? localAssembler(model.name, s3);
  const timedAssemble: TaskHandler = async (event) => {
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
        [rendered.scorerArn]: options.score ?? (await bundleScorer(options.bundle, model, s3)),
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
      ...(options.copyPayloads !== undefined ? { copyPayloads: options.copyPayloads } : {}),
    });
    return { ...result, progress, timings };
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

/** One warm batch handler per bundle, model and registry, as one function per model would be. */
const scorers = new Map<string, Promise<TaskHandler>>();

async function bundleScorer(
  bundle: string | undefined,
  model: LocalBatchJobOptions['model'],
  s3: LocalBatchJobOptions['s3'],
): Promise<TaskHandler> {
  const path = bundle ?? join(DIST, 'functions/inference/index.mjs');
  const key = JSON.stringify([path, model.name, model.fastPath, s3.endpoint, s3.bucket]);
  let scorer = scorers.get(key);
  if (!scorer) {
    scorer = (async () => {
      const mod = (await import(pathToFileURL(path).href)) as {
        createBatchHandler?: (config: InferenceConfig) => TaskHandler;
      };
      if (typeof mod.createBatchHandler !== 'function') {
        throw new Error(`${path} exports no createBatchHandler: run npm run build`);
      }
      return mod.createBatchHandler({
        bucket: s3.bucket,
        model: model.name,
        alias: 'live',
        endpoint: s3.endpoint,
        aliasCheckSeconds: 60,
        fastPath: model.fastPath ?? 'auto',
        limits: { maxInstances: 10_000, maxElements: 1_000_000, maxBodyBytes: 6 * 1024 * 1024 },
      });
    })();
    scorers.set(key, scorer);
    scorer.catch(() => scorers.delete(key));
  }
  return scorer;
}

/** The assemble step, in this process, on the local S3. */
function localAssembler(model: string, s3: LocalBatchJobOptions['s3']): TaskHandler {
  return createAssembleHandler({ bucket: s3.bucket, endpoint: s3.endpoint, model });
}

/** Lambda gives a function its credentials in the environment; s3rver takes any. */
function localCredentials(): void {
  process.env.AWS_ACCESS_KEY_ID ??= LOCAL_CREDENTIALS.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY ??= LOCAL_CREDENTIALS.secretAccessKey;
  process.env.AWS_REGION ??= 'us-east-1';
}
