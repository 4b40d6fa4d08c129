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
import type { BatchResult, BatchRowResult } from './events.js';
import { batchResultOf, type ChildExecution, failureOf, indexesOf, ScoredRows } from './results.js';
import { RowOutcomes } from './row-outcomes.js';
import { TextBuilder } from './text-builder.js';

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
  readonly rows: RowOutcomes;
  readonly failedBatches: FailedBatch[];
  readonly notes: string[];
}

/** Where a child came from, for messages (`<key> entry <n>`). */
export interface Located {
  readonly child: ChildExecution | ScoredRows;
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
  const results = children.succeeded.map(({ child, where }) => ({
    result: child instanceof ScoredRows ? child : batchResultOf(child, where),
    where,
  }));
  const rows = new RowOutcomes(
    results.reduce(
      (n, { result }) => n + (result instanceof ScoredRows ? result.indexes : result.results).length,
      0,
    ),
  );
  const failedBatches: FailedBatch[] = [];
  const notes: string[] = [];
  for (const { result, where } of results) {
    const wrongVersion = result.version !== version;
    if (wrongVersion) notes.push(`${where} was scored by version ${result.version}, not ${version}`);
    if (result instanceof ScoredRows) {
      const { indexes, values, errors, output } = result;
      for (let k = 0; k < indexes.length; k++) {
        const index = indexes[k]!;
        if (wrongVersion) rows.set({ index, error: wrongVersionError(result.version, version) });
        else if (Number.isNaN(values[k])) rows.set({ index, error: errors.get(k)! });
        else rows.setValue(index, output, values[k]!);
      }
      continue;
    }
    for (const row of result.results) {
      const index = (row as { index?: unknown })?.index;
      if (!Number.isSafeInteger(index) || (index as number) < 0) {
        notes.push(`${where} has a result without a row index`);
        continue;
      }
      const outcome: BatchRowResult = wrongVersion
        ? { index: index as number, error: wrongVersionError(result.version, version) }
        : 'outputs' in row && typeof row.outputs === 'object' && row.outputs !== null
          ? row
          : {
              index: index as number,
              error:
                typeof (row as { error?: unknown }).error === 'string'
                  ? (row as { error: string }).error
                  : 'no outputs in its result',
            };
      rows.set(outcome);
    }
  }
  const unrun = (unrunChildren: readonly Located[], pending: boolean) => {
    for (const located of unrunChildren) {
      // A line read as scored rows records no Input, Error or Cause.
      const child: ChildExecution = located.child instanceof ScoredRows ? {} : located.child;
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
        if (!rows.has(index)) rows.set({ index, error: reason });
      }
    }
  };
  unrun(children.failed, false);
  unrun(children.pending, true);
  rows.nameOutputs(firstOutputs(results, rows));
  return { rows, failedBatches, notes };
}

/**
 * The output names: those of the first row, in the order rows first appear in the results, whose
 * outcome has outputs (every row of one version has the same).
 */
function firstOutputs(
  results: readonly { readonly result: BatchResult | ScoredRows }[],
  rows: RowOutcomes,
): readonly string[] {
  for (const { result } of results) {
    const indexes =
      result instanceof ScoredRows
        ? result.indexes
        : result.results.map((row) => (row as { index?: unknown })?.index);
    for (const index of indexes) {
      const names = Number.isSafeInteger(index) ? rows.outputsOf(index as number) : undefined;
      if (names) return names;
    }
  }
  return [];
}

function wrongVersionError(scored: number, version: number): string {
  return `scored by version ${scored}, not the job's version ${version}`;
}

export interface FailedRow {
  readonly line: number;
  readonly index: number;
  readonly reason: string;
}

export interface Assembled {
  /** UTF-8. */
  readonly output: Uint8Array;
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
  const { rows } = outcomes;
  const names = rows.names;
  const out = new TextBuilder(text.length * 2);
  const failedRows: FailedRow[] = [];
  // No row scored: no output names are known, and no output columns are added.
  const empty = ','.repeat(names.length);
  let columns = 0;
  let index = -1;
  let found = 0;
  forEachCsvRecord(text, ',', (record) => {
    if (index < 0) {
      const header = fieldsOf(text, record, ',');
      columns = header.length;
      const taken = new Set(header);
      const outputColumns = names.map((n) => csvCell(taken.has(n) ? `${n}_output` : n));
      out.add(text.slice(record.start, record.end));
      if (outputColumns.length > 0) out.add(`,${outputColumns.join(',')}`);
      out.add('\n');
      index = 0;
      return;
    }
    out.add(
      record.fields === undefined && record.count === columns
        ? text.slice(record.start, record.end)
        : padded(fieldsOf(text, record, ','), columns),
    );
    const outcome = rows.get(index);
    if (outcome !== undefined) found++;
    if (typeof outcome === 'number') {
      out.add(`,${outcome}\n`);
    } else if (outcome && 'outputs' in outcome) {
      for (const name of names) out.add(`,${valueCell(outcome.outputs[name])}`);
      out.add('\n');
    } else {
      failedRows.push({ line: record.line, index, reason: outcome?.error ?? NO_RESULT });
      out.add(`${empty}\n`);
    }
    index++;
  });
  if (index < 0) throw new ValidationError('The input CSV is empty: it needs a header line');
  return finish(out.bytes(), index, found, failedRows, outcomes);
}

/** A row's fields as `columns` CSV cells: the extra cut, the missing empty (as the ItemReader reads them). */
function padded(fields: readonly string[], columns: number): string {
  return Array.from({ length: columns }, (_, k) => csvCell(fields[k] ?? '')).join(',');
}

/** One line per input line, in order, and the failures. */
export function assembleJsonl(input: string | Uint8Array, outcomes: Outcomes): Assembled {
  const text = typeof input === 'string' ? input : new TextDecoder().decode(input);
  const { rows } = outcomes;
  const names = rows.names;
  const out = new TextBuilder(text.length);
  const failedRows: FailedRow[] = [];
  let index = 0;
  let found = 0;
  text.split('\n').forEach((raw, i) => {
    if (raw.trim() === '') return;
    const outcome = rows.get(index);
    if (outcome !== undefined) found++;
    if (typeof outcome === 'number') {
      out.add(`${JSON.stringify([outcome])}\n`);
    } else if (outcome && 'outputs' in outcome) {
      const values = outcome.outputs;
      // A row without the output named has an empty line.
      out.add(`${JSON.stringify(names.length === 1 ? values[names[0]!] : values) ?? ''}\n`);
    } else {
      const reason = outcome?.error ?? NO_RESULT;
      failedRows.push({ line: i + 1, index, reason });
      out.add(`${JSON.stringify({ error: reason })}\n`);
    }
    index++;
  });
  return finish(out.bytes(), index, found, failedRows, outcomes);
}

/** `found`: the input's rows that have an outcome (the others of `outcomes.rows` lie beyond it). */
function finish(
  out: Uint8Array,
  rows: number,
  found: number,
  failedRows: FailedRow[],
  outcomes: Outcomes,
): Assembled {
  const notes = [...outcomes.notes];
  const beyond = outcomes.rows.size - found;
  if (beyond > 0) notes.push(`${beyond} results name rows beyond the input's ${rows} rows`);
  let failures = 'line,index,reason\n';
  for (const f of failedRows) failures += `${f.line},${f.index},${csvCell(f.reason)}\n`;
  return {
    output: out,
    failures,
    rows,
    succeeded: rows - failedRows.length,
    failed: failedRows.length,
    failedRows,
    outputNames: [...outcomes.rows.names],
    notes,
  };
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
