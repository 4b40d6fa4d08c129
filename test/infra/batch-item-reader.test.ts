import { describe, expect, it } from 'vitest';
import { csvItems, jsonLinesItems, readItems } from '../../scripts/local/batch/item-reader.js';
import { applyResultPath, evaluateTemplate, readPath } from '../../scripts/local/batch/json-path.js';

// The rules of "How Step Functions parses input CSV files" (Step Functions developer guide).
describe('the local ItemReader, CSV', () => {
  it('makes one object per row, keyed by the header, every field a string', () => {
    expect(csvItems('a,b\n1,2\n3,4\n')).toEqual([
      { a: '1', b: '2' },
      { a: '3', b: '4' },
    ]);
  });

  it('reads quoted fields with commas, newlines and doubled quotes', () => {
    expect(csvItems('a,b\n"x, y","line 1\nline 2"\n"say ""hi""",z\n')).toEqual([
      { a: 'x, y', b: 'line 1\nline 2' },
      { a: 'say "hi"', b: 'z' },
    ]);
  });

  it('takes a backslash before a backslash, a quote or the delimiter, and drops it before anything else', () => {
    expect(csvItems('path,size\nC:\\\\Program Files\\\\App.exe,1\na\\,b,\\q\n')).toEqual([
      { path: 'C:\\Program Files\\App.exe', size: '1' },
      { path: 'a,b', size: 'q' },
    ]);
  });

  it('fills missing fields with empty strings and drops extra ones', () => {
    expect(csvItems('a,b,c\n1\n1,2,3,4,5\n')).toEqual([
      { a: '1', b: '', c: '' },
      { a: '1', b: '2', c: '3' },
    ]);
  });

  it('reads CRLF, a byte order mark, a missing final newline; an empty line is a row of empty strings', () => {
    expect(csvItems('\ufeffa,b\r\n1,2\r\n\r\n3,4')).toEqual([
      { a: '1', b: '2' },
      { a: '', b: '' },
      { a: '3', b: '4' },
    ]);
  });

  it('honours the delimiter and MaxItems of ReaderConfig, and refuses an empty file', () => {
    expect(readItems('a|b\n1|2\n3|4\n', { InputType: 'CSV', CSVDelimiter: 'PIPE', MaxItems: 1 })).toEqual([
      { a: '1', b: '2' },
    ]);
    expect(() => readItems('', { InputType: 'CSV' })).toThrow(/no header row/);
  });
});

describe('the local ItemReader, JSON Lines', () => {
  it('parses each line, skipping blank ones', () => {
    expect(jsonLinesItems('[1,2]\n\n{"a":1}\n  \n3\n')).toEqual([[1, 2], { a: 1 }, 3]);
  });

  it('fails on a line that is not JSON, naming it', () => {
    expect(() => jsonLinesItems('[1]\n[2]\n{oops\n')).toThrow(
      /Line 3 of the JSON Lines input is not valid JSON/,
    );
  });
});

describe('the local JSONPath', () => {
  it('evaluates payload templates, context paths and States.Format', () => {
    const input = { job: 'j1', version: 2 };
    const context = { Map: { Item: { Index: 4, Value: { x: '1' } } } };
    expect(
      evaluateTemplate(
        {
          'index.$': '$$.Map.Item.Index',
          'row.$': '$$.Map.Item.Value',
          fixed: 1,
          'p.$': "States.Format('a/{}/b', $.job)",
        },
        input,
        context,
      ),
    ).toEqual({ index: 4, row: { x: '1' }, fixed: 1, p: 'a/j1/b' });
  });

  it('fails a path that is not there (States.Runtime), and refuses what it does not emulate', () => {
    expect(() => readPath('$.missing', {}, {})).toThrow(/States.Runtime/);
    expect(() => readPath('$.items[0]', {}, {})).toThrow(/only plain field names/);
    expect(() => evaluateTemplate({ 'x.$': 'States.Array($.a)' }, { a: 1 }, {})).toThrow(
      /only States.Format/,
    );
  });

  it('places results by ResultPath', () => {
    expect(applyResultPath({ a: 1 }, { b: 2 }, '$.map')).toEqual({ a: 1, map: { b: 2 } });
    expect(applyResultPath({ a: 1 }, 5, '$')).toBe(5);
    expect(applyResultPath({ a: 1 }, 5, null)).toEqual({ a: 1 });
  });
});
