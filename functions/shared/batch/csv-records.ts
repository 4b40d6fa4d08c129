/**
 * The records of a CSV text as a Step Functions Distributed Map's ItemReader splits them
 * ("How Step Functions parses input CSV files"), shared by the local ItemReader
 * (scripts/local/batch/item-reader.ts) and the final step (assemble.ts), so a row's index means
 * the same record to both:
 * - a record ends at a newline (LF, CRLF or a lone CR) outside double quotes, or at the end of the
 *   text; a newline that ends the text ends its last record (no empty record after it), and an
 *   empty line is a record of one empty field;
 * - a double quote at the start of a field opens a quoted field, `""` inside one is a quote, and
 *   a quote elsewhere is text;
 * - a backslash escapes the next character (a backslash, a quote, the delimiter, a newline), and
 *   is dropped before any other character.
 * A record without quotes, backslashes or a lone CR (nearly every one) is found with indexOf and
 * its fields made only when asked; the others are read character by character. Pure.
 */

const QUOTE = 34;
const BACKSLASH = 92;
const LF = 10;
const CR = 13;

/** One record: where it is in the text and the line its first character is on (1-based). */
export interface CsvRecord {
  /** Its first character. */
  readonly start: number;
  /** Just past its last character, before its line break. */
  readonly end: number;
  readonly line: number;
  /** How many fields it has. */
  readonly count: number;
  /** Its fields, when it was read character by character; otherwise `fieldsOf` makes them. */
  readonly fields: string[] | undefined;
}

/** Calls `visit` for each record of `text` (a byte order mark is the caller's to drop), in order. */
export function forEachCsvRecord(text: string, delimiter: string, visit: (record: CsvRecord) => void): void {
  const sep = delimiter.charCodeAt(0);
  const n = text.length;
  // The next quote, backslash and CR at or after `i`: each looked up again only once passed, so
  // the whole text is searched once for each.
  let quote = -1;
  let backslash = -1;
  let cr = -1;
  let line = 1;
  let i = 0;
  while (i < n) {
    let lf = text.indexOf('\n', i);
    if (lf < 0) lf = n;
    if (quote >= 0 && quote < i) quote = -1;
    if (quote === -1) quote = indexOr(text, '"', i, n);
    if (backslash >= 0 && backslash < i) backslash = -1;
    if (backslash === -1) backslash = indexOr(text, '\\', i, n);
    if (cr >= 0 && cr < i) cr = -1;
    if (cr === -1) cr = indexOr(text, '\r', i, n);
    const end = lf > i && text.charCodeAt(lf - 1) === CR ? lf - 1 : lf;
    if (quote >= end && backslash >= end && cr >= end) {
      let count = 1;
      for (let d = text.indexOf(delimiter, i); d >= 0 && d < end; d = text.indexOf(delimiter, d + 1)) count++;
      visit({ start: i, end, line, count, fields: undefined });
      line++;
      i = lf + 1;
      continue;
    }
    const read = readRecord(text, i, sep);
    visit({ start: i, end: read.end, line, count: read.fields.length, fields: read.fields });
    line += lineBreaks(text, i, read.next);
    i = read.next;
  }
}

/** A record's fields (made from its text when it was found without reading it character by character). */
export function fieldsOf(text: string, record: CsvRecord, delimiter: string): string[] {
  return record.fields ?? text.slice(record.start, record.end).split(delimiter);
}

/** The position of `char` at or after `from`, or `n` when there is none. */
function indexOr(text: string, char: string, from: number, n: number): number {
  const at = text.indexOf(char, from);
  return at < 0 ? n : at;
}

/** Line breaks (LF, CRLF, lone CR) in text[from, to). */
function lineBreaks(text: string, from: number, to: number): number {
  let breaks = 0;
  for (let i = from; i < to; i++) {
    const c = text.charCodeAt(i);
    if (c === LF || (c === CR && text.charCodeAt(i + 1) !== LF)) breaks++;
  }
  return breaks;
}

/** One record read character by character from `start`: its fields, its end and the next record's start. */
function readRecord(
  text: string,
  start: number,
  sep: number,
): { fields: string[]; end: number; next: number } {
  const fields: string[] = [];
  const n = text.length;
  let field = '';
  let quoted = false;
  let fieldStart = true;
  let i = start;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c === BACKSLASH) {
      if (i + 1 < n) field += text[i + 1];
      i += 2;
      fieldStart = false;
      continue;
    }
    if (quoted) {
      if (c === QUOTE) {
        if (text.charCodeAt(i + 1) === QUOTE) {
          field += '"';
          i += 2;
        } else {
          quoted = false;
          i++;
        }
      } else {
        // A run of plain characters at once: most of a quoted field.
        let j = i + 1;
        while (j < n) {
          const d = text.charCodeAt(j);
          if (d === QUOTE || d === BACKSLASH) break;
          j++;
        }
        field += text.slice(i, j);
        i = j;
      }
      continue;
    }
    if (c === QUOTE && fieldStart) {
      quoted = true;
      fieldStart = false;
      i++;
    } else if (c === sep) {
      fields.push(field);
      field = '';
      fieldStart = true;
      i++;
    } else if (c === LF || c === CR) {
      fields.push(field);
      return { fields, end: i, next: i + (c === CR && text.charCodeAt(i + 1) === LF ? 2 : 1) };
    } else {
      let j = i + 1;
      while (j < n) {
        const d = text.charCodeAt(j);
        if (d === sep || d === LF || d === CR || d === BACKSLASH) break;
        j++;
      }
      field += text.slice(i, j);
      fieldStart = false;
      i = j;
    }
  }
  fields.push(field);
  return { fields, end: n, next: n };
}
