/**
 * A batch job's rows read as model inputs, each row judged on its own: a bad row gets its index and
 * what is wrong with it (the column or place, and the problem) and never stops the others. The good
 * rows come back as few input batches as possible (usually one), so the model runs once per batch.
 * - CSV rows (header → text, as the ItemReader gives them) feed the model's one [-1, n] input from
 *   the chosen columns (functions/shared/batch/features.ts); numbers are parsed strictly: plain
 *   decimal or scientific notation, nothing `Number()` would also take ('', '0x1f', 'Infinity').
 * - JSON Lines rows are TF Serving row-format instances, checked exactly as predict requests are.
 * Pure.
 */
import type { BatchItem } from '../shared/batch/events.js';
import type { CsvInput } from '../shared/batch/features.js';
import { ValidationError } from '../shared/errors.js';
import type { Signature } from '../shared/registry/types.js';
import { describeValue, truncate } from './error-text.js';
import { type InputTensor, type Limits, parsePredictRequest } from './predict-request.js';

/** Good rows, batched: `positions` are their places in the batch's Items, in order. */
export interface RowGroup {
  readonly positions: readonly number[];
  readonly inputs: InputTensor[];
}

export interface RowsRead {
  readonly groups: RowGroup[];
  /** Bad rows: position in Items → why. */
  readonly errors: Map<number, string>;
}

// The same rule retraining reads CSV numbers with (functions/shared/training/csv.ts).
const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
const FLOAT32_MAX = 3.4028234663852886e38;

/**
 * CSV rows against the model's one input: the values of `features` in that order, or (undefined)
 * every column in the row's own (header) order, which must then be exactly the input's width.
 */
export function readCsvRows(
  items: readonly BatchItem[],
  input: CsvInput,
  features: readonly string[] | undefined,
): RowsRead {
  const { spec, width } = input;
  const dtype = spec.dtype === 'int32' || spec.dtype === 'bool' ? spec.dtype : 'float32';
  if (spec.dtype !== dtype) {
    throw new ValidationError(`Input "${spec.name}" has dtype ${spec.dtype}, which CSV rows cannot feed`);
  }
  const size = items.length * width;
  const values =
    dtype === 'int32'
      ? new Int32Array(size)
      : dtype === 'bool'
        ? new Uint8Array(size)
        : new Float32Array(size);
  const cell = new CellReader(dtype, spec.vocabularySize);
  const positions: number[] = [];
  const errors = new Map<number, string>();
  let offset = 0;
  for (let p = 0; p < items.length; p++) {
    const row = items[p]!.row;
    if (typeof row !== 'object' || row === null || Array.isArray(row)) {
      errors.set(p, `the row is ${describeValue(row)}, not a CSV record`);
      continue;
    }
    const record = row as Record<string, unknown>;
    const columns = features ?? Object.keys(record);
    if (!features && columns.length !== width) {
      errors.set(
        p,
        `the row has ${columns.length} columns; the model takes ${width} numbers per row (and names no features)`,
      );
      continue;
    }
    let k = 0;
    for (; k < width; k++) {
      const column = columns[k]!;
      const value = cell.read(record[column], column);
      if (cell.problem) break;
      values[offset + k] = value;
    }
    if (cell.problem) {
      errors.set(p, cell.problem);
      cell.problem = undefined;
      continue;
    }
    positions.push(p);
    offset += width;
  }
  const groups: RowGroup[] =
    positions.length === 0
      ? []
      : [
          {
            positions,
            inputs: [
              {
                name: spec.name,
                dtype,
                shape: [positions.length, width],
                values: values.subarray(0, offset),
              },
            ],
          },
        ];
  return { groups, errors };
}

/** Reads one cell; a problem is left in `problem` (no exception per bad cell: a batch may have many). */
class CellReader {
  problem: string | undefined;

  constructor(
    private readonly dtype: 'float32' | 'int32' | 'bool',
    private readonly vocabulary: number | undefined,
  ) {}

  read(raw: unknown, column: string): number {
    let value: number;
    if (raw === undefined) return this.fail(column, ' is missing');
    if (typeof raw === 'number') {
      value = raw;
    } else if (typeof raw === 'string') {
      const text = raw.trim();
      if (text === '') return this.fail(column, ' is empty');
      if (this.dtype === 'bool' && (text === 'true' || text === 'false')) return text === 'true' ? 1 : 0;
      if (!NUMBER.test(text)) return this.fail(column, `: ${describeValue(text)} is not a number`);
      value = Number(text);
    } else {
      return this.fail(column, ` is ${describeValue(raw)}, not a number`);
    }
    if (!(value <= FLOAT32_MAX && value >= -FLOAT32_MAX)) {
      return this.fail(column, `: ${value} is beyond float32's range`);
    }
    if (this.dtype === 'int32' && !(Number.isInteger(value) && value >= -(2 ** 31) && value < 2 ** 31)) {
      return this.fail(column, `: ${value} is not a 32-bit integer`);
    }
    if (this.dtype === 'bool' && value !== 0 && value !== 1) {
      return this.fail(column, `: ${value} is not 0, 1, true or false`);
    }
    const vocabulary = this.vocabulary;
    if (vocabulary !== undefined && !(value > -1 && value < vocabulary)) {
      return this.fail(column, `: ${value} is not an id from 0 to ${vocabulary - 1}`);
    }
    return value;
  }

  /** Records the problem with `column`'s value (named only then: most cells are fine). */
  private fail(column: string, problem: string): number {
    this.problem = `column ${JSON.stringify(truncate(column, 40))}${problem}`;
    return 0;
  }
}

/**
 * JSON Lines rows as TF Serving instances. The whole batch is checked as one request first (the
 * common case: every row good, one parse); when that fails, row by row, so each bad row gets its
 * own error (`instance[2] must be a number, got "abc"`) and the good ones still run together.
 */
export function readInstanceRows(
  items: readonly BatchItem[],
  signature: Signature,
  limits: Limits,
): RowsRead {
  const errors = new Map<number, string>();
  const all = items.map((_, p) => p);
  const together = tryInputs(all, items, signature, limits);
  if (together) return { groups: [{ positions: all, inputs: together }], errors };
  const good: number[] = [];
  const alone = new Map<number, InputTensor[]>();
  for (let p = 0; p < items.length; p++) {
    try {
      alone.set(p, parseInstances([items[p]!.row], signature, limits));
      good.push(p);
    } catch (error) {
      if (!(error instanceof ValidationError)) throw error;
      errors.set(p, error.message.replace(/^instances\[0\]/, 'instance'));
    }
  }
  if (good.length === 0) return { groups: [], errors };
  const rest = tryInputs(good, items, signature, limits);
  // Good rows that still cannot share a batch (instances of different sizes) run one by one.
  const groups = rest
    ? [{ positions: good, inputs: rest }]
    : good.map((p) => ({ positions: [p], inputs: alone.get(p)! }));
  return { groups, errors };
}

function tryInputs(
  positions: readonly number[],
  items: readonly BatchItem[],
  signature: Signature,
  limits: Limits,
): InputTensor[] | undefined {
  try {
    return parseInstances(
      positions.map((p) => items[p]!.row),
      signature,
      limits,
    );
  } catch (error) {
    if (error instanceof ValidationError) return undefined;
    throw error;
  }
}

function parseInstances(rows: readonly unknown[], signature: Signature, limits: Limits): InputTensor[] {
  // The rows were parsed from JSON by the ItemReader: written back, they read as they were (a
  // missing row as null).
  const text = `{"instances":${JSON.stringify(rows)}}`;
  return parsePredictRequest(text, signature, { ...limits, maxInstances: Math.max(rows.length, 1) }).inputs;
}
