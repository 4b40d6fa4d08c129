/**
 * What a Distributed Map's ItemReader makes of an S3 object, for the local executor, following
 * Step Functions' documented rules ("How Step Functions parses input CSV files"):
 * - CSV (header in the first row): every field is a string; records end at a newline (CRLF or LF)
 *   outside double quotes; `""` inside quotes is a quote; a backslash escapes a backslash, a quote
 *   or the delimiter, and is dropped before any other character; a row with fewer fields than the
 *   header gets empty strings, one with more loses the extra fields. Each item is an object from
 *   header name to text. Choices where the documentation is silent: a UTF-8 byte order mark before
 *   the header is dropped; a final newline ends the last record (no empty item); an empty line
 *   between records is a record whose fields are all empty strings (so no row disappears); a quote
 *   inside an unquoted field is kept as text. These record rules live in
 *   functions/shared/batch/csv-records.ts, which the final step shares (a row's index is one record).
 * - JSON Lines: one item per line, the parsed JSON value; blank lines are skipped; a line that is
 *   not JSON fails the read (States.ItemReaderFailed, naming the line), as the whole Map then
 *   fails. A JSON Lines job therefore needs valid JSON on every line; a CSV row is always readable.
 */
import { type CsvRecord, fieldsOf, forEachCsvRecord } from '../../../functions/shared/batch/csv-records.js';
import { StatesError } from './json-path.js';

const DELIMITERS: Record<string, string> = { COMMA: ',', PIPE: '|', SEMICOLON: ';', SPACE: ' ', TAB: '\t' };

/** The items of an object's text, for `ReaderConfig` (InputType CSV or JSONL). */
export function readItems(text: string, readerConfig: Record<string, unknown>): unknown[] {
  const type = readerConfig.InputType;
  const maxItems = maxItemsOf(readerConfig);
  if (type === 'CSV') return csvItems(text, csvDelimiter(readerConfig), maxItems);
  if (type === 'JSONL') return jsonLinesItems(text, maxItems);
  throw new StatesError(
    'States.ItemReaderFailed',
    `InputType ${String(type)} is not emulated (CSV and JSONL are)`,
  );
}

function maxItemsOf(readerConfig: Record<string, unknown>): number {
  return typeof readerConfig.MaxItems === 'number' ? readerConfig.MaxItems : Number.POSITIVE_INFINITY;
}

/** The CSV delimiter ReaderConfig names (with the header in the first row, the one emulated). */
function csvDelimiter(readerConfig: Record<string, unknown>): string {
  if ((readerConfig.CSVHeaderLocation ?? 'FIRST_ROW') !== 'FIRST_ROW') {
    throw new StatesError('States.ItemReaderFailed', 'only CSVHeaderLocation FIRST_ROW is emulated');
  }
  const delimiter = DELIMITERS[String(readerConfig.CSVDelimiter ?? 'COMMA')];
  if (!delimiter)
    throw new StatesError('States.ItemReaderFailed', `CSVDelimiter ${String(readerConfig.CSVDelimiter)}`);
  return delimiter;
}

/** A Map's items, made one by one as its batches need them. */
export interface ItemSource {
  readonly count: number;
  /** Item `index` (from 0), made anew at each call. */
  at(index: number): unknown;
}

/**
 * The items of an object's text (as readItems), each made only when asked: a CSV text is split into
 * records at once (an unreadable input fails here, before any child runs), but a row's object is
 * made when its batch is, so rows do not all live through the whole map run.
 */
export function itemSource(text: string, readerConfig: Record<string, unknown>): ItemSource {
  if (readerConfig.InputType !== 'CSV') {
    const items = readItems(text, readerConfig);
    return { count: items.length, at: (index) => items[index] };
  }
  const delimiter = csvDelimiter(readerConfig);
  const maxItems = maxItemsOf(readerConfig);
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  let header: string[] | undefined;
  const records: CsvRecord[] = [];
  forEachCsvRecord(body, delimiter, (record) => {
    if (!header) header = fieldsOf(body, record, delimiter);
    else if (records.length < maxItems) records.push(record);
  });
  if (!header)
    throw new StatesError('States.ItemReaderFailed', 'The CSV file is empty: it has no header row');
  const names = header;
  return {
    count: records.length,
    at(index) {
      const fields = fieldsOf(body, records[index]!, delimiter);
      const item: Record<string, string> = {};
      for (let i = 0; i < names.length; i++) item[names[i]!] = fields[i] ?? '';
      return item;
    },
  };
}

/** CSV records as objects keyed by the header row. */
export function csvItems(
  text: string,
  delimiter = ',',
  maxItems = Number.POSITIVE_INFINITY,
): Record<string, string>[] {
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  let header: string[] | undefined;
  const items: Record<string, string>[] = [];
  forEachCsvRecord(body, delimiter, (record) => {
    const fields = fieldsOf(body, record, delimiter);
    if (!header) {
      header = fields;
      return;
    }
    if (items.length >= maxItems) return;
    const item: Record<string, string> = {};
    for (let i = 0; i < header.length; i++) item[header[i]!] = fields[i] ?? '';
    items.push(item);
  });
  if (!header)
    throw new StatesError('States.ItemReaderFailed', 'The CSV file is empty: it has no header row');
  return items;
}

/** The records of a CSV text by the rules above, each an array of field texts. */
export function csvRecords(text: string, delimiter: string): string[][] {
  const records: string[][] = [];
  forEachCsvRecord(text, delimiter, (record) => records.push(fieldsOf(text, record, delimiter)));
  return records;
}

/** JSON Lines: one parsed value per non-blank line. */
export function jsonLinesItems(text: string, maxItems = Number.POSITIVE_INFINITY): unknown[] {
  const items: unknown[] = [];
  let start = 0;
  let line = 0;
  while (start <= text.length && items.length < maxItems) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    line++;
    const raw = text.slice(start, end);
    start = end + 1;
    if (raw.trim() === '') {
      if (end === text.length) break;
      continue;
    }
    try {
      items.push(JSON.parse(raw));
    } catch (error) {
      throw new StatesError(
        'States.ItemReaderFailed',
        `Line ${line} of the JSON Lines input is not valid JSON: ${(error as Error).message}`,
      );
    }
  }
  return items;
}
