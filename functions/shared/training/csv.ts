/**
 * A CSV object checked against a model's schema: a header naming every feature and the label, and
 * rows whose fields are plain numbers and whose label the loss accepts. parseCsv (retraining)
 * counts and skips a bad row; checkCsv (before an upload) refuses the file naming line and column.
 */
import { parse } from 'csv-parse/sync';
import { ValidationError } from '../errors.js';
import type { ModelDefinition } from '../manifest.js';

/** Why a row was left out of training. */
export type RejectionKind = 'field-count' | 'empty' | 'not-a-number' | 'not-finite' | 'label' | 'malformed';

export interface Rejection {
  readonly key: string;
  /** 1-based line in the object (the header is line 1). */
  readonly line: number;
  readonly kind: RejectionKind;
  readonly reason: string;
}

/** How many rejections are kept verbatim; the rest are only counted. */
export const MAX_REPORTED_REJECTIONS = 10;

/** What a row's label must be, from the loss the model is trained with. */
type LabelRule = (value: number) => string | undefined;

function labelRule(definition: ModelDefinition): LabelRule {
  switch (definition.compile.loss) {
    case 'binaryCrossentropy':
      return (v) => (v === 0 || v === 1 ? undefined : `must be 0 or 1 for a binary model, got ${v}`);
    case 'categoricalCrossentropy': {
      const classes = definition.layers[definition.layers.length - 1]?.units ?? 0;
      return (v) =>
        Number.isInteger(v) && v >= 0 && v < classes
          ? undefined
          : `must be a class index 0..${classes - 1}, got ${v}`;
    }
    default:
      return () => undefined;
  }
}

// Plain decimal or scientific notation only: Number() would also take '', '0x1f', 'Infinity'.
const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

export interface ParsedCsv {
  readonly x: number[];
  readonly y: number[];
  readonly rows: number;
  readonly rejectedRows: number;
  readonly rejectedByKind: Partial<Record<RejectionKind, number>>;
  readonly rejections: Rejection[];
}

/**
 * Parses one CSV object against the definition's columns. The header is required and must name
 * every feature and the label (any order, extra columns ignored). Rows that do not fit are counted
 * by kind, never used.
 */
export function parseCsv(text: string | Uint8Array, key: string, definition: ModelDefinition): ParsedCsv {
  const rejections: Rejection[] = [];
  const rejectedByKind: Partial<Record<RejectionKind, number>> = {};
  let rejectedRows = 0;
  const reject = (line: number, kind: RejectionKind, reason: string) => {
    rejectedRows++;
    rejectedByKind[kind] = (rejectedByKind[kind] ?? 0) + 1;
    if (rejections.length < MAX_REPORTED_REJECTIONS) rejections.push({ key, line, kind, reason });
  };

  let records: Array<{ record: string[]; info: { lines: number } }>;
  try {
    records = parse(text, {
      bom: true,
      trim: true,
      skip_empty_lines: true,
      // Field counts are checked below, so a short row is one rejection with a clear reason.
      relax_column_count: true,
      // A broken quote spoils one record, not the whole file.
      skip_records_with_error: true,
      on_skip: (error) => {
        if (error) reject(Number(error.lines) || 0, 'malformed', error.message);
        return undefined;
      },
      info: true,
    }) as unknown as Array<{ record: string[]; info: { lines: number } }>;
  } catch (cause) {
    throw new ValidationError(`${key} is not readable CSV: ${(cause as Error).message}`, { cause });
  }

  const header = records[0]?.record;
  if (!header) return { x: [], y: [], rows: 0, rejectedRows, rejectedByKind, rejections };
  const schema = schemaOf(header, key, definition);
  const x: number[] = [];
  const y: number[] = [];
  const values = new Array<number>(schema.columns.length);

  for (let r = 1; r < records.length; r++) {
    const { record, info } = records[r]!;
    const problem = rowProblem(record, schema, values);
    if (problem) {
      reject(info.lines, problem.kind, problem.reason);
      continue;
    }
    for (let c = 0; c < schema.columns.length - 1; c++) x.push(values[c]!);
    y.push(values[schema.columns.length - 1]!);
  }
  return { x, y, rows: y.length, rejectedRows, rejectedByKind, rejections };
}

/** Where the definition's columns are in a file's header, and what its label must be. */
interface Schema {
  readonly header: readonly string[];
  /** The features, then the label. */
  readonly columns: readonly string[];
  /** Each column's position in the header. */
  readonly indices: readonly number[];
  readonly label: string;
  readonly rule: LabelRule;
}

function schemaOf(header: readonly string[], key: string, definition: ModelDefinition): Schema {
  const columns = [...definition.features, definition.label];
  const missing = columns.filter((c) => !header.includes(c));
  if (missing.length > 0) {
    throw new ValidationError(
      `${key}: the header (line 1) lacks column${missing.length > 1 ? 's' : ''} ${missing.join(', ')}; ` +
        `it needs ${columns.join(',')}`,
    );
  }
  return {
    header,
    columns,
    indices: columns.map((c) => header.indexOf(c)),
    label: definition.label,
    rule: labelRule(definition),
  };
}

/** Why a row does not fit the schema, with the header position at fault; else its values in `values`. */
function rowProblem(
  record: readonly string[],
  schema: Schema,
  values: number[],
): { kind: RejectionKind; reason: string; column?: number } | undefined {
  if (record.length !== schema.header.length) {
    return {
      kind: 'field-count',
      reason: `has ${record.length} fields, the header has ${schema.header.length}`,
    };
  }
  for (let c = 0; c < schema.columns.length; c++) {
    const column = schema.indices[c]!;
    const raw = record[column]!;
    const name = schema.columns[c]!;
    if (raw === '') return { kind: 'empty', reason: `${name} is empty`, column };
    if (!NUMBER.test(raw)) {
      return {
        kind: 'not-a-number',
        reason: `${name} is not a number: ${JSON.stringify(raw.slice(0, 40))}`,
        column,
      };
    }
    const value = Number(raw);
    // Float32 storage: what overflows it would train as Infinity.
    if (!Number.isFinite(value) || !Number.isFinite(Math.fround(value))) {
      return { kind: 'not-finite', reason: `${name} is out of range: ${raw.slice(0, 40)}`, column };
    }
    values[c] = value;
  }
  const labelProblem = schema.rule(values[schema.columns.length - 1]!);
  if (labelProblem) {
    return {
      kind: 'label',
      reason: `${schema.label} ${labelProblem}`,
      column: schema.indices[schema.columns.length - 1]!,
    };
  }
  return undefined;
}

/** How many data rows `checkCsv` reads by default. */
export const CHECKED_ROWS = 1000;

/**
 * Checks a CSV against a model's schema before it is uploaded as training data: a header naming
 * every feature and the label, and the first `sampleRows` data rows with the header's number of
 * fields, each feature a number and the label one the loss accepts. Stricter than retraining, which
 * skips a bad row: a file refused here is one the user can fix before it lands in the registry.
 *
 * @returns the number of data rows checked.
 * @throws ValidationError naming the file, the line and the column at fault.
 */
export function checkCsv(
  body: string | Uint8Array,
  file: string,
  definition: ModelDefinition,
  sampleRows = CHECKED_ROWS,
): { checkedRows: number } {
  let records: Array<{ record: string[]; info: { lines: number } }>;
  try {
    records = parse(body, {
      bom: true,
      trim: true,
      skip_empty_lines: true,
      relax_column_count: true,
      info: true,
      to: sampleRows + 1,
    }) as unknown as Array<{ record: string[]; info: { lines: number } }>;
  } catch (cause) {
    const line = (cause as { lines?: number }).lines;
    throw new ValidationError(
      `${file}${line ? ` line ${line}` : ''} is not readable CSV: ${(cause as Error).message}`,
      { cause },
    );
  }
  const header = records[0]?.record;
  if (!header) throw new ValidationError(`${file} is empty: it needs a header line naming the columns`);
  const schema = schemaOf(header, file, definition);
  if (records.length < 2) throw new ValidationError(`${file} has a header but no data rows`);
  const values = new Array<number>(schema.columns.length);
  for (let r = 1; r < records.length; r++) {
    const { record, info } = records[r]!;
    const problem = rowProblem(record, schema, values);
    if (problem) {
      const where =
        problem.column === undefined
          ? `line ${info.lines}`
          : `line ${info.lines}, column ${problem.column + 1} (${schema.header[problem.column]})`;
      throw new ValidationError(`${file} ${where}: ${problem.reason}`);
    }
  }
  return { checkedRows: records.length - 1 };
}
