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
 * an IntegrityError naming the file. A COMPACT line exactly as the function writes it (no spaces,
 * every scored row one output of one number) is read by scanScoredRows without building an object
 * per row; any other line is parsed as JSON, so only that layout is assumed, never trusted. Pure.
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
export function parseResultFile(text: string, key: string): (ChildExecution | ScoredRows)[] {
  const trimmed = text.trim();
  if (trimmed === '') return [];
  const entries: unknown[] = trimmed.startsWith('[')
    ? (parseJson(trimmed, key) as unknown[])
    : trimmed
        .split('\n')
        .filter((line) => line.trim() !== '')
        .map((line, i) => scanScoredRows(line) ?? parseJson(line, `${key} line ${i + 1}`));
  if (!Array.isArray(entries)) throw new IntegrityError(`${key} is not a list of child executions`);
  return entries.map((entry, i) => {
    if (typeof entry !== 'object' || entry === null) {
      throw new IntegrityError(`${key}: entry ${i} is not a child execution`);
    }
    return entry as ChildExecution | ScoredRows;
  });
}

/**
 * A succeeded batch's result read by scanScoredRows: for each row in order, its index and either
 * its one output's value (`{"<output>": [value]}`) or, where the value is NaN, its error.
 */
export class ScoredRows {
  readonly indexes: number[] = [];
  readonly values: number[] = [];
  /** Errors by position in the batch. */
  readonly errors = new Map<number, string>();
  constructor(
    readonly version: number,
    /** The output every scored row has, or '' when none was scored. */
    public output: string,
  ) {}
}

const VERSION = '{"version":';
const RESULTS = ',"results":[';
const INDEX = '{"index":';
const OUTPUTS = ',"outputs":{"';
const ERROR = ',"error":"';

/**
 * A COMPACT line as the function writes it — `{"version":V,"results":[` then rows
 * `{"index":I,"outputs":{"<output>":[<number>]}}` (the same output in each) or
 * `{"index":I,"error":"<text>"}`, then `]}` — or undefined for any other text, which the caller
 * parses as JSON (and refuses there when malformed). Reads what JSON.parse would: the numbers as
 * JSON numbers, the error texts as JSON strings.
 */
export function scanScoredRows(line: string): ScoredRows | undefined {
  if (!isAt(line, VERSION, 0)) return undefined;
  let at = VERSION.length;
  const version = digitsEnd(line, at);
  if (version < 0 || !isAt(line, RESULTS, version)) return undefined;
  const scored = new ScoredRows(digitsValue(line, at, version), '');
  at = version + RESULTS.length;
  // `,"outputs":{"<output>":[`, once the first scored row has named its output.
  let outputs = '';
  if (line.charCodeAt(at) !== CLOSE_BRACKET) {
    for (;;) {
      if (!isAt(line, INDEX, at)) return undefined;
      const index = digitsEnd(line, at + INDEX.length);
      if (index < 0) return undefined;
      const position = scored.indexes.length;
      scored.indexes.push(digitsValue(line, at + INDEX.length, index));
      at = index;
      if (outputs !== '' && isAt(line, outputs, at)) {
        at += outputs.length;
      } else if (outputs === '' && isAt(line, OUTPUTS, at)) {
        const end = stringEnd(line, at + OUTPUTS.length - 1);
        const name = end < 0 ? undefined : readString(line.slice(at + OUTPUTS.length - 1, end));
        if (name === undefined || !isAt(line, ':[', end)) return undefined;
        scored.output = name;
        outputs = line.slice(at, end + 2);
        at = end + 2;
      } else if (isAt(line, ERROR, at)) {
        const end = stringEnd(line, at + ERROR.length - 1);
        if (end < 0 || line.charCodeAt(end) !== CLOSE_BRACE) return undefined;
        const error = readString(line.slice(at + ERROR.length - 1, end));
        if (error === undefined) return undefined;
        scored.errors.set(position, error);
        scored.values.push(Number.NaN);
        at = end + 1;
        if (!nextRow()) break;
        continue;
      } else {
        return undefined;
      }
      const number = numberEnd(line, at);
      if (number < 0 || !isAt(line, ']}}', number)) return undefined;
      scored.values.push(Number(line.slice(at, number)));
      at = number + 3;
      if (!nextRow()) break;
    }
  }
  return line.length === at + 2 && line.endsWith(']}') ? scored : undefined;

  /** Past a row: true when another follows (`,`), false at the list's end. */
  function nextRow(): boolean {
    if (line.charCodeAt(at) !== COMMA) return false;
    at++;
    return true;
  }
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

const QUOTE = 34;
const BACKSLASH = 92;
const COMMA = 44;
const CLOSE_BRACE = 125;
const CLOSE_BRACKET = 93;
const ZERO = 48;
const NINE = 57;

/** Just past the digits of a JSON row index or version at `at` (at most 15: a safe integer), or -1. */
function digitsEnd(text: string, at: number): number {
  let i = at;
  while (i < text.length && i - at < 16) {
    const c = text.charCodeAt(i);
    if (c < ZERO || c > NINE) break;
    i++;
  }
  const digits = i - at;
  if (digits === 0 || digits > 15 || (digits > 1 && text.charCodeAt(at) === ZERO)) return -1;
  return i;
}

/** The value of the digits text[from, to). */
function digitsValue(text: string, from: number, to: number): number {
  let value = 0;
  for (let i = from; i < to; i++) value = value * 10 + text.charCodeAt(i) - ZERO;
  return value;
}

/** True when `token` is in `text` at `at` (as startsWith says, but cheaper on V8 for each row). */
function isAt(text: string, token: string, at: number): boolean {
  return text.slice(at, at + token.length) === token;
}

/** Just past the JSON number at `at` (`-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?`), or -1. */
function numberEnd(text: string, at: number): number {
  let i = at;
  if (text.charCodeAt(i) === 45) i++;
  const int = i;
  while (isDigit(text.charCodeAt(i))) i++;
  if (i === int || (i - int > 1 && text.charCodeAt(int) === ZERO)) return -1;
  if (text.charCodeAt(i) === 46) {
    const fraction = ++i;
    while (isDigit(text.charCodeAt(i))) i++;
    if (i === fraction) return -1;
  }
  const e = text.charCodeAt(i);
  if (e === 101 || e === 69) {
    i++;
    const sign = text.charCodeAt(i);
    if (sign === 43 || sign === 45) i++;
    const exponent = i;
    while (isDigit(text.charCodeAt(i))) i++;
    if (i === exponent) return -1;
  }
  return i;
}

function isDigit(c: number): boolean {
  return c >= ZERO && c <= NINE;
}

/** Just past the JSON string whose opening quote is at `at`, or -1. */
function stringEnd(text: string, at: number): number {
  for (let i = at + 1; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) return i + 1;
    if (c === BACKSLASH) i++;
  }
  return -1;
}

/** A JSON string literal's value, or undefined when it is not one. */
function readString(literal: string): string | undefined {
  if (!literal.includes('\\')) {
    // No escapes: its text, unless it holds a control character JSON refuses.
    for (let i = 1; i < literal.length - 1; i++) if (literal.charCodeAt(i) < 32) return undefined;
    return literal.slice(1, -1);
  }
  try {
    return JSON.parse(literal) as string;
  } catch {
    return undefined;
  }
}

function parseJson(text: string, where: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new IntegrityError(`${where} is not valid JSON: ${(error as Error).message}`);
  }
}
