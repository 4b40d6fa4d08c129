/**
 * Step Functions' ResultWriter output, read as untrusted text. For a Distributed Map it writes, under
 * its prefix, `<map run id>/manifest.json` — `{DestinationBucket, MapRunArn, ResultFiles: {SUCCEEDED,
 * FAILED, PENDING: [{Key, Size}]}}` — and the files it lists, `SUCCEEDED_<n>.json`, `FAILED_<n>.json`
 * (`PENDING_<n>.json`): a JSON array (OutputType JSON) or JSON Lines (OutputType JSONL). With
 * Transformation NONE each entry is a child execution, with `Status`, `Input` and `Output` as JSON
 * strings, and `Error` / `Cause` for a failed one; with COMPACT a succeeded child is its output
 * alone, while failed and pending ones stay as with NONE (their Input names their rows). Both
 * layouts are read. A child's output is the function's BatchResult, or the Lambda task's envelope
 * `{Payload: ...}`. This module turns those into one outcome per row index; anything malformed is
 * an IntegrityError naming the file. Pure.
 */
import { IntegrityError } from '../errors.js';
import type { BatchResult } from './events.js';

export interface ResultWriterManifest {
  readonly MapRunArn?: string;
  readonly ResultFiles: Readonly<
    Record<'SUCCEEDED' | 'FAILED' | 'PENDING', readonly { readonly Key: string }[]>
  >;
}

/**
 * One child execution (a batch) as ResultWriter records it with Transformation NONE; with COMPACT,
 * a succeeded child's entry is its output instead (see batchResultOf).
 */
export interface ChildExecution {
  /** A COMPACT entry's own fields (the child's output). */
  readonly [field: string]: unknown;
  readonly Status?: string;
  readonly Input?: string;
  readonly Output?: string;
  readonly Error?: string;
  readonly Cause?: string;
}

export function parseResultManifest(text: string, key: string): ResultWriterManifest {
  const value = parseJson(text, key) as Partial<ResultWriterManifest> | null;
  const files = value?.ResultFiles as Record<string, unknown> | undefined;
  if (typeof value !== 'object' || value === null || typeof files !== 'object' || files === null) {
    throw new IntegrityError(`${key} is not a ResultWriter manifest (no ResultFiles)`);
  }
  const list = (kind: string) => {
    const entries = files[kind] ?? [];
    if (!Array.isArray(entries) || !entries.every((e) => typeof (e as { Key?: unknown })?.Key === 'string')) {
      throw new IntegrityError(`${key}: ResultFiles.${kind} must be a list of {Key}`);
    }
    return entries as { Key: string }[];
  };
  return {
    ...(typeof value.MapRunArn === 'string' ? { MapRunArn: value.MapRunArn } : {}),
    ResultFiles: { SUCCEEDED: list('SUCCEEDED'), FAILED: list('FAILED'), PENDING: list('PENDING') },
  };
}

/** A SUCCEEDED_n / FAILED_n / PENDING_n file: a JSON array, or JSON Lines. */
export function parseResultFile(text: string, key: string): ChildExecution[] {
  const trimmed = text.trim();
  if (trimmed === '') return [];
  const entries: unknown[] = trimmed.startsWith('[')
    ? (parseJson(trimmed, key) as unknown[])
    : trimmed
        .split('\n')
        .filter((line) => line.trim() !== '')
        .map((line, i) => parseJson(line, `${key} line ${i + 1}`));
  if (!Array.isArray(entries)) throw new IntegrityError(`${key} is not a list of child executions`);
  return entries.map((entry, i) => {
    if (typeof entry !== 'object' || entry === null) {
      throw new IntegrityError(`${key}: entry ${i} is not a child execution`);
    }
    return entry as ChildExecution;
  });
}

/** Fields of a NONE entry: an entry with none of them is a COMPACT one (the output itself). */
const EXECUTION_FIELDS = ['Status', 'Input', 'Output', 'ExecutionArn'] as const;

/**
 * A succeeded child's BatchResult: its Output (Transformation NONE) or the entry itself (COMPACT),
 * or the Lambda task's `Payload` in either.
 */
export function batchResultOf(child: ChildExecution, where: string): BatchResult {
  const recorded = EXECUTION_FIELDS.some((field) => field in child);
  const output = !recorded
    ? child
    : typeof child.Output === 'string'
      ? parseJson(child.Output, `${where} Output`)
      : child.Output;
  const result = (
    typeof output === 'object' && output !== null && 'Payload' in output
      ? (output as { Payload: unknown }).Payload
      : output
  ) as Partial<BatchResult> | null;
  if (
    typeof result !== 'object' ||
    result === null ||
    !Number.isSafeInteger(result.version) ||
    !Array.isArray(result.results)
  ) {
    throw new IntegrityError(`${where}: Output is not a batch result ({version, results})`);
  }
  return result as BatchResult;
}

/** The row indexes a child was given (its Input's Items), or undefined when its Input is not recorded. */
export function indexesOf(child: ChildExecution): number[] | undefined {
  if (typeof child.Input !== 'string') return undefined;
  try {
    const input = JSON.parse(child.Input) as { Items?: { index?: unknown }[] };
    if (!Array.isArray(input.Items)) return undefined;
    const indexes = input.Items.map((item) => item?.index);
    return indexes.every((i): i is number => Number.isSafeInteger(i) && (i as number) >= 0)
      ? indexes
      : undefined;
  } catch {
    return undefined;
  }
}

/** A failed child's reason: its error name and the message inside a Lambda error's Cause. */
export function failureOf(child: ChildExecution): { readonly error: string; readonly cause: string } {
  const error = typeof child.Error === 'string' ? child.Error : 'unknown error';
  let cause = typeof child.Cause === 'string' ? child.Cause : '';
  try {
    const parsed = JSON.parse(cause) as { errorMessage?: unknown };
    if (typeof parsed?.errorMessage === 'string') cause = parsed.errorMessage;
  } catch {}
  return { error, cause: cause.length > 500 ? `${cause.slice(0, 500)}…` : cause };
}

function parseJson(text: string, where: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new IntegrityError(`${where} is not valid JSON: ${(error as Error).message}`);
  }
}
