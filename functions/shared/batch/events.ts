/**
 * The shapes a batch job passes between its parts: the Step Functions Distributed Map hands the
 * model's function batches of rows (ItemSelector adds each row's index, ItemBatcher adds
 * `BatchInput`); the function answers a result per row; the job's input names what to score.
 * Plain data, shared by the function, the state machine's definition, the local executor and the
 * CLI, so the names are defined once.
 *
 * Entry points (H4 → H5, for the build and the CDK):
 * - batches: the model's inference function, same bundle and `handler` export
 *   (functions/inference/handler.ts → batch.ts); the bundle also exports `createBatchHandler(config)`
 *   for the local executor (one per model, like `createHandler`).
 * - the final step: functions/batch/assemble.ts, export `handler` (event: BatchAssembleEvent, below;
 *   answers a BatchSummary; env AIAAS_BUCKET, optional AIAAS_S3_ENDPOINT and AIAAS_MODEL, which
 *   then must match the job's), and `createAssembleHandler({bucket, endpoint?, model?, store?})`
 *   for the local executor. It reads the ResultWriter output and the input, and writes
 *   keys.batchOutput / batchFailures / batchManifest (functions/shared/registry/layout.ts).
 * - errors: a wrong job fails a batch with ValidationError, InvalidNameError or NotFoundError (do
 *   not retry: it fails the same way); RegistryUnavailableError is worth a retry.
 * - ResultWriter's prefix is keys.batchResults(model, job) (`batch/<model>/<job>/results`);
 *   the state machine is named batchStateMachineName(app, model) so the CLI finds it.
 * - the CLI speaks the Step Functions API (StartExecution with `name` = the job id and input =
 *   BatchJobInput; DescribeExecution; ListMapRuns + DescribeMapRun for progress), to AWS or, for
 *   the local stack, to the endpoint in AWS_ENDPOINT_URL_SFN (scripts/local/step-functions-api.ts
 *   serves those calls over the local executor).
 */

/** What starts a job (the state machine's execution input). The version is pinned by whoever starts it. */
export interface BatchJobInput {
  readonly model: string;
  /** The version that scores every row, resolved from the alias when the job starts. */
  readonly version: number;
  readonly job: string;
  readonly format: 'csv' | 'jsonl';
  /** Registry key of the input (`batch/<model>/<job>/input.csv|jsonl`, or any key under `batch/<model>/`). */
  readonly inputKey: string;
  /**
   * The CSV columns that feed the model, in input order: the manifest's definition features. The
   * CLI always sets it ([] when the model has no definition), so a definition may pass it on with
   * `features.$`. The function prefers the features the version was trained with (its metadata),
   * then these, then the header's order (see functions/inference/batch.ts). Additive (H4).
   */
  readonly features?: readonly string[];
}

/** One item as ItemSelector builds it: the row's 0-based index among data rows, and the row. */
export interface BatchItem {
  readonly index: number;
  /** CSV: the row as the ItemReader gives it (header → text); JSON Lines: the parsed line. */
  readonly row: unknown;
}

/** The event the model's function receives for a batch (ItemBatcher's shape). */
export interface BatchEvent {
  readonly Items: readonly BatchItem[];
  readonly BatchInput: Pick<BatchJobInput, 'model' | 'version' | 'job' | 'format' | 'features'>;
}

/** One row's outcome: its predictions (one value per output, by output name), or why it failed. */
export type BatchRowResult =
  | { readonly index: number; readonly outputs: Readonly<Record<string, unknown>> }
  | { readonly index: number; readonly error: string };

/** What the function answers for a batch. */
export interface BatchResult {
  readonly version: number;
  readonly results: readonly BatchRowResult[];
}

/** True when `event` is a batch (and not a function URL request). */
export function isBatchEvent(event: unknown): event is BatchEvent {
  const e = event as Partial<BatchEvent> | null;
  return (
    typeof e === 'object' &&
    e !== null &&
    Array.isArray(e.Items) &&
    typeof e.BatchInput === 'object' &&
    e.BatchInput !== null
  );
}

/**
 * What the job's final step receives (additive, H4): the job's input, when the execution started
 * (`$$.Execution.StartTime`), and the Distributed Map's output — `{MapRunArn, ResultWriterDetails:
 * {Bucket, Key}}` where Key is ResultWriter's manifest.json. When the Map itself failed (e.g. more
 * failed batches than tolerated) and the definition catches that into `map` (`{Error, Cause}`),
 * the step still writes the output and the manifest from what ResultWriter wrote under
 * keys.batchResults, and records the Map's error.
 */
export interface BatchAssembleEvent {
  readonly job: BatchJobInput;
  readonly startedAt: string;
  readonly map:
    | {
        readonly MapRunArn?: string;
        readonly ResultWriterDetails: { readonly Bucket: string; readonly Key: string };
      }
    | { readonly Error?: string; readonly Cause?: string };
}

/** What the final step answers (the execution's output): counts and where the files are. */
export interface BatchSummary {
  readonly model: string;
  readonly job: string;
  readonly version: number;
  readonly rows: number;
  readonly succeeded: number;
  readonly failed: number;
  readonly output: string;
  readonly failures: string;
  readonly manifest: string;
}

/** The state machine of a model's batch jobs (its name, so the CLI can find it): `<app>-<model>-batch`. */
export function batchStateMachineName(app: string, model: string): string {
  return `${app}-${model}-batch`;
}
