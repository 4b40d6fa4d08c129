import { createHash } from 'node:crypto';
import { parse } from 'csv-parse/sync';
import { sha256 } from '../digest.js';
import { ConfigurationError, ValidationError } from '../errors.js';
import type { ModelDefinition } from '../manifest.js';
import type { ObjectStore } from '../registry/store.js';

/** Examples as flat row-major arrays: compact enough for Lambda memory, and what tensor2d takes. */
export interface Examples {
  /** rows × features values, row-major. */
  readonly x: Float32Array;
  /** One label per row (a class index for categorical models). */
  readonly y: Float32Array;
  readonly rows: number;
  readonly features: number;
}

/** Why a row was left out of training. */
export type RejectionKind = 'field-count' | 'empty' | 'not-a-number' | 'not-finite' | 'label' | 'malformed';

export interface Rejection {
  readonly key: string;
  /** 1-based line in the object (the header is line 1). */
  readonly line: number;
  readonly kind: RejectionKind;
  readonly reason: string;
}

export interface DatasetObject {
  readonly key: string;
  readonly sha256: string;
  readonly size: number;
  readonly rows: number;
  readonly rejectedRows: number;
}

/** An object under the dataset prefix that retraining could not use at all, and why. */
export interface SkippedObject {
  readonly key: string;
  /** Absent when the object could not be read. */
  readonly sha256?: string;
  readonly size?: number;
  readonly reason: string;
}

export interface Dataset extends Examples {
  readonly featureNames: readonly string[];
  readonly label: string;
  /** The CSV objects read, in key order. */
  readonly objects: readonly DatasetObject[];
  /** Objects left out whole (unreadable, or a header without the model's columns), in key order. */
  readonly skipped: readonly SkippedObject[];
  /** sha256 over every object's key and sha256, skipped ones too: changes exactly when the data does. */
  readonly fingerprint: string;
  readonly rejectedRows: number;
  readonly rejectedByKind: Readonly<Partial<Record<RejectionKind, number>>>;
  /** The first few rejections, for the report and the logs. */
  readonly rejections: readonly Rejection[];
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

export interface LoadDatasetOptions {
  /** Refuse (ConfigurationError) before downloading when the CSV objects total more bytes than this. */
  readonly maxBytes?: number;
}

/** The CSV objects under a prefix, in key order (S3's own order, made explicit). */
export async function listDatasetObjects(store: ObjectStore, prefix: string) {
  const listed = await store.list(prefix);
  return listed
    .filter((o) => o.key.toLowerCase().endsWith('.csv'))
    .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

/**
 * Reads every `.csv` object under `prefix`, in key order, into one dataset. An object that cannot
 * be used at all (gone, not readable as CSV, a header without the model's columns) is skipped and
 * listed in `skipped` with the reason, so one bad upload does not block every retrain. Throws
 * ConfigurationError when there is no CSV object or it is too large, ValidationError when every
 * object was skipped.
 */
export async function loadDataset(
  store: ObjectStore,
  prefix: string,
  definition: ModelDefinition,
  options: LoadDatasetOptions = {},
): Promise<Dataset> {
  const listed = await listDatasetObjects(store, prefix);
  if (listed.length === 0) {
    throw new ConfigurationError(
      `No training data: no .csv object under ${store.description}/${prefix} (upload one with "aiaas dataset put")`,
    );
  }
  const totalBytes = listed.reduce((n, o) => n + o.size, 0);
  if (options.maxBytes !== undefined && totalBytes > options.maxBytes) {
    throw new ConfigurationError(
      `Training data under ${prefix} is ${mib(totalBytes)} MiB in ${listed.length} objects; retraining in ` +
        `Lambda reads at most ${mib(options.maxBytes)} MiB. Train larger data sets outside Lambda (see retrain.ts)`,
    );
  }

  const x: number[] = [];
  const y: number[] = [];
  const objects: DatasetObject[] = [];
  const rejections: Rejection[] = [];
  const rejectedByKind: Partial<Record<RejectionKind, number>> = {};
  let rejectedRows = 0;
  const skipped: SkippedObject[] = [];
  const fingerprint = createHash('sha256');
  // One object at a time, so peak memory is one file's text plus the numbers so far.
  for (const { key } of listed) {
    const object = await store.get(key);
    if (!object) {
      // Removed since the listing: it is not part of the data any more.
      skipped.push({ key, reason: 'removed while the training data was read' });
      continue;
    }
    const digest = sha256(object.body);
    fingerprint.update(`${key}\0${digest}\n`);
    let parsed: ParsedCsv;
    try {
      parsed = parseCsv(object.body, key, definition);
    } catch (error) {
      if (!(error instanceof ValidationError)) throw error;
      skipped.push({ key, sha256: digest, size: object.body.byteLength, reason: error.message });
      continue;
    }
    for (const v of parsed.x) x.push(v);
    for (const v of parsed.y) y.push(v);
    rejectedRows += parsed.rejectedRows;
    for (const [kind, n] of Object.entries(parsed.rejectedByKind) as [RejectionKind, number][]) {
      rejectedByKind[kind] = (rejectedByKind[kind] ?? 0) + n;
    }
    for (const r of parsed.rejections) if (rejections.length < MAX_REPORTED_REJECTIONS) rejections.push(r);
    objects.push({
      key,
      sha256: digest,
      size: object.body.byteLength,
      rows: parsed.rows,
      rejectedRows: parsed.rejectedRows,
    });
  }

  if (objects.length === 0) {
    throw new ValidationError(
      `No usable training data under ${store.description}/${prefix}: every object was skipped (` +
        `${skipped.map((o) => `${o.key}: ${o.reason}`).join('; ')})`,
    );
  }
  return {
    x: Float32Array.from(x),
    y: Float32Array.from(y),
    rows: y.length,
    features: definition.features.length,
    featureNames: definition.features,
    label: definition.label,
    objects,
    skipped,
    fingerprint: fingerprint.digest('hex'),
    rejectedRows,
    rejectedByKind,
    rejections,
  };
}

function mib(bytes: number): string {
  return (bytes / 2 ** 20).toFixed(1);
}

export interface Split {
  readonly train: Examples;
  readonly validation: Examples;
  readonly seed: number;
  readonly validationSplit: number;
  readonly method: 'row-hash';
}

/** A seeded 32-bit hash of one row's stored values (features and label). */
function rowHash(x: Float32Array, y: Float32Array, row: number, features: number, seed: number): number {
  const bits = new Uint32Array(x.buffer, x.byteOffset + row * features * 4, features);
  let h = seed >>> 0;
  const mix = (word: number) => {
    let k = Math.imul(word, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    h ^= Math.imul(k, 0x1b873593);
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  };
  for (let i = 0; i < features; i++) mix(bits[i]!);
  mix(new Uint32Array(y.buffer, y.byteOffset + row * 4, 1)[0]!);
  // murmur3's finalizer: spreads every input bit over the whole word.
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * Splits deterministically into train and validation. Each row's side is decided by a seeded hash
 * of its own values rather than by a shuffle of positions, for two reasons that matter to the
 * promotion gate: a row keeps its side when data is appended, so the live version (trained on
 * earlier data with the same seed) is never scored on rows it trained on; and duplicate rows land on
 * the same side, so they cannot leak from train into validation.
 */
export function splitDataset(data: Examples, validationSplit: number, seed: number): Split {
  const { x, y, rows, features } = data;
  const threshold = validationSplit * 2 ** 32;
  const isValidation = new Uint8Array(rows);
  let validationRows = 0;
  for (let r = 0; r < rows; r++) {
    if (rowHash(x, y, r, features, seed) < threshold) {
      isValidation[r] = 1;
      validationRows++;
    }
  }
  const take = (wanted: number, count: number): Examples => {
    const outX = new Float32Array(count * features);
    const outY = new Float32Array(count);
    let i = 0;
    for (let r = 0; r < rows; r++) {
      if (isValidation[r] !== wanted) continue;
      outX.set(x.subarray(r * features, (r + 1) * features), i * features);
      outY[i++] = y[r]!;
    }
    return { x: outX, y: outY, rows: count, features };
  };
  return {
    train: take(0, rows - validationRows),
    validation: take(1, validationRows),
    seed,
    validationSplit,
    method: 'row-hash',
  };
}
