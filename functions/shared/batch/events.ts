/**
 * The shapes a batch job passes between its parts: the Step Functions Distributed Map hands the
 * model's function batches of rows (ItemSelector adds each row's index, ItemBatcher adds
 * `BatchInput`); the function answers a result per row; the job's input names what to score.
 * Plain data, shared by the function, the state machine's definition, the local executor and the
 * CLI, so the names are defined once.
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
  readonly BatchInput: Pick<BatchJobInput, 'model' | 'version' | 'job' | 'format'>;
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
