/**
 * A batch job's result, assembled: every row of the input gets exactly one outcome (its outputs, or
 * why it failed: a bad row, a failed or never-run batch, no result at all), and the output is
 * written in input order, whatever order the batches finished in.
 * - CSV: each input row (its records as the ItemReader splits them; see assembleCsv), plus one column per output (a single number as such, larger
 *   outputs as JSON text); a failed row's output cells are empty.
 * - JSON Lines: one line per input line, the row's prediction as TF Serving writes one instance
 *   (one output: its value; several: an object by output name), or `{"error": "..."}`.
 * - failures.csv: `line,index,reason`, the line in the input file (1-based, the CSV header is line
 *   1) and the row's 0-based index among data rows.
 * Pure: the caller reads and writes the objects.
 */
import { ValidationError } from '../errors.js';
import { fieldsOf, forEachCsvRecord } from './csv-records.js';
import type { BatchRowResult } from './events.js';
import { batchResultOf, type ChildExecution, failureOf, indexesOf } from './results.js';

/** A whole batch that produced no row results. */
export interface FailedBatch {
  /** Its rows, when its input was recorded. */
  readonly rows?: number;
  readonly firstIndex?: number;
  readonly lastIndex?: number;
  readonly error: string;
  readonly cause: string;
}

export interface Outcomes {
  readonly byIndex: Map<number, BatchRowResult>;
  readonly failedBatches: FailedBatch[];
  readonly notes: string[];
}

/** Where a child came from, for messages (`<key> entry <n>`). */
export interface Located {
  readonly child: ChildExecution;
  readonly where: string;
}

/**
 * Row outcomes from the children ResultWriter recorded. A row scored by another version than the
 * job's counts as failed (the job's guarantee is one version for every row).
 */
export function collectOutcomes(
  version: number,
  children: {
    readonly succeeded: readonly Located[];
    readonly failed: readonly Located[];
    readonly pending: readonly Located[];
  },
): Outcomes {
  const byIndex = new Map<number, BatchRowResult>();
  const failedBatches: FailedBatch[] = [];
  const notes: string[] = [];
  for (const { child, where } of children.succeeded) {
    const result = batchResultOf(child, where);
    const wrongVersion = result.version !== version;
    if (wrongVersion) notes.push(`${where} was scored by version ${result.version}, not ${version}`);
    for (const row of result.results) {
      const index = (row as { index?: unknown })?.index;
      if (!Number.isSafeInteger(index) || (index as number) < 0) {
        notes.push(`${where} has a result without a row index`);
        continue;
      }
      const outcome: BatchRowResult = wrongVersion
        ? {
            index: index as number,
            error: `scored by version ${result.version}, not the job's version ${version}`,
          }
        : 'outputs' in row && typeof row.outputs === 'object' && row.outputs !== null
          ? row
          : {
              index: index as number,
              error:
                typeof (row as { error?: unknown }).error === 'string'
                  ? (row as { error: string }).error
                  : 'no outputs in its result',
            };
      byIndex.set(index as number, outcome);
    }
  }
  const unrun = (located: readonly Located[], pending: boolean) => {
    for (const { child } of located) {
      const { error, cause } = pending
        ? { error: 'PENDING', cause: 'the map run stopped before this batch ran' }
        : failureOf(child);
      const indexes = indexesOf(child);
      failedBatches.push({
        ...(indexes ? { rows: indexes.length } : {}),
        ...(indexes && indexes.length > 0
          ? { firstIndex: Math.min(...indexes), lastIndex: Math.max(...indexes) }
          : {}),
        error,
        cause,
      });
      const reason = `its batch ${pending ? 'never ran' : 'failed'}: ${error}${cause ? `: ${cause}` : ''}`;
      for (const index of indexes ?? []) {
        if (!byIndex.has(index)) byIndex.set(index, { index, error: reason });
      }
    }
  };
  unrun(children.failed, false);
  unrun(children.pending, true);
  return { byIndex, failedBatches, notes };
}

export interface FailedRow {
  readonly line: number;
  readonly index: number;
  readonly reason: string;
}

export interface Assembled {
  readonly output: string;
  readonly failures: string;
  readonly rows: number;
  readonly succeeded: number;
  readonly failed: number;
  readonly failedRows: FailedRow[];
  readonly outputNames: string[];
  readonly notes: string[];
}

const NO_RESULT = 'no result: its batch was not recorded by the map run';

/**
 * The input CSV (header first) with one column per output, and its failures. Its records are the
 * ItemReader's (csv-records.ts), so a row's index is the record the Map gave that index. A plain
 * row (no quotes, backslashes or CR, as many fields as the header) is copied as it was; any other
 * is written as the fields the ItemReader read (cut or padded to the header's), quoted as RFC 4180
 * says, so the output is plain CSV whatever escapes the input used.
 */
export function assembleCsv(input: string | Uint8Array, outcomes: Outcomes): Assembled {
  const decoded = typeof input === 'string' ? input : new TextDecoder().decode(input);
  const text = decoded.charCodeAt(0) === 0xfeff ? decoded.slice(1) : decoded;
  const names = outputNamesOf(outcomes);
  const out: string[] = [];
  const failedRows: FailedRow[] = [];
  // No row scored: no output names are known, and no output columns are added.
  const empty = ','.repeat(names.length);
  let columns = 0;
  let index = -1;
  forEachCsvRecord(text, ',', (record) => {
    if (index < 0) {
      const header = fieldsOf(text, record, ',');
      columns = header.length;
      const taken = new Set(header);
      const outputColumns = names.map((n) => csvCell(taken.has(n) ? `${n}_output` : n));
      out.push(
        outputColumns.length > 0
          ? `${text.slice(record.start, record.end)},${outputColumns.join(',')}`
          : text.slice(record.start, record.end),
      );
      index = 0;
      return;
    }
    const row =
      record.fields === undefined && record.count === columns
        ? text.slice(record.start, record.end)
        : padded(fieldsOf(text, record, ','), columns);
    const outcome = outcomes.byIndex.get(index);
    if (outcome && 'outputs' in outcome) {
      let line = row;
      for (const name of names) line += `,${valueCell(outcome.outputs[name])}`;
      out.push(line);
    } else {
      failedRows.push({ line: record.line, index, reason: outcome?.error ?? NO_RESULT });
      out.push(row + empty);
    }
    index++;
  });
  if (index < 0) throw new ValidationError('The input CSV is empty: it needs a header line');
  return finish(out, index, failedRows, names, outcomes);
}

/** A row's fields as `columns` CSV cells: the extra cut, the missing empty (as the ItemReader reads them). */
function padded(fields: readonly string[], columns: number): string {
  return Array.from({ length: columns }, (_, k) => csvCell(fields[k] ?? '')).join(',');
}

/** One line per input line, in order, and the failures. */
export function assembleJsonl(input: string | Uint8Array, outcomes: Outcomes): Assembled {
  const text = typeof input === 'string' ? input : new TextDecoder().decode(input);
  const names = outputNamesOf(outcomes);
  const out: string[] = [];
  const failedRows: FailedRow[] = [];
  let index = 0;
  text.split('\n').forEach((raw, i) => {
    if (raw.trim() === '') return;
    const outcome = outcomes.byIndex.get(index);
    if (outcome && 'outputs' in outcome) {
      const values = outcome.outputs;
      out.push(JSON.stringify(names.length === 1 ? values[names[0]!] : values));
    } else {
      const reason = outcome?.error ?? NO_RESULT;
      failedRows.push({ line: i + 1, index, reason });
      out.push(JSON.stringify({ error: reason }));
    }
    index++;
  });
  return finish(out, index, failedRows, names, outcomes);
}

function finish(
  out: string[],
  rows: number,
  failedRows: FailedRow[],
  outputNames: string[],
  outcomes: Outcomes,
): Assembled {
  const notes = [...outcomes.notes];
  let beyond = 0;
  for (const index of outcomes.byIndex.keys()) if (index >= rows) beyond++;
  if (beyond > 0) notes.push(`${beyond} results name rows beyond the input's ${rows} rows`);
  const failures = [
    'line,index,reason',
    ...failedRows.map((f) => `${f.line},${f.index},${csvCell(f.reason)}`),
  ];
  return {
    output: out.length > 0 ? `${out.join('\n')}\n` : '',
    failures: `${failures.join('\n')}\n`,
    rows,
    succeeded: rows - failedRows.length,
    failed: failedRows.length,
    failedRows,
    outputNames,
    notes,
  };
}

/** The output names, from the first row that has outputs (every row of one version has the same). */
function outputNamesOf(outcomes: Outcomes): string[] {
  for (const outcome of outcomes.byIndex.values()) {
    if ('outputs' in outcome) return Object.keys(outcome.outputs);
  }
  return [];
}

/** An output value as one CSV cell: a single number as such, anything larger as JSON text. */
function valueCell(value: unknown): string {
  let v = value;
  while (Array.isArray(v) && v.length === 1) v = v[0];
  if (typeof v === 'number') return String(v);
  if (v === null || v === undefined) return '';
  return csvCell(typeof v === 'string' ? v : JSON.stringify(v));
}

function csvCell(text: string): string {
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}
