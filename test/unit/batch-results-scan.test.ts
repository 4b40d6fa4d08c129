/**
 * Reading ResultWriter's COMPACT lines without JSON.parse (functions/shared/batch/results.ts,
 * scanScoredRows): a line it reads means what JSON.parse reads from it, whatever the numbers,
 * error texts and output names hold; any other line, however close to the layout, is left to
 * JSON.parse (which refuses it when malformed), and the function's own lines are read by it.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { BatchResult, BatchRowResult } from '../../functions/shared/batch/events.js';
import { parseResultFile, ScoredRows, scanScoredRows } from '../../functions/shared/batch/results.js';

/** What a scanned line says, as the BatchResult JSON.parse would give. */
function asParsed(scored: ScoredRows): BatchResult {
  return {
    version: scored.version,
    results: scored.indexes.map(
      (index, k): BatchRowResult =>
        Number.isNaN(scored.values[k])
          ? { index, error: scored.errors.get(k)! }
          : { index, outputs: { [scored.output]: [scored.values[k]] } },
    ),
  };
}

/** Text with the characters JSON strings must escape, and others beyond ASCII. */
const texts = fc.string({
  unit: fc.oneof(
    fc.constantFrom('"', '\\', '\n', '\u0001', '\u2028', 'é', '\ud83d'),
    fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }),
  ),
  maxLength: 12,
});

/** Batch results as the function writes them: every scored row the same one output. */
const results = fc.record({
  version: fc.nat({ max: 10_000 }),
  output: texts,
  rows: fc.array(
    fc.oneof(
      fc.record({ index: fc.nat(), value: fc.double({ noNaN: true, noDefaultInfinity: true }) }),
      fc.record({ index: fc.integer({ min: 0, max: 1e15 - 1 }), error: texts }),
    ),
    { maxLength: 8 },
  ),
});

function line(
  version: number,
  output: string,
  rows: readonly ({ index: number; value: number } | { index: number; error: string })[],
): string {
  return JSON.stringify({
    version,
    results: rows.map((r) => ('error' in r ? r : { index: r.index, outputs: { [output]: [r.value] } })),
  });
}

describe('scanning COMPACT lines', () => {
  it("reads the function's own lines, as JSON.parse reads them", () => {
    fc.assert(
      fc.property(results, (r) => {
        const text = line(r.version, r.output, r.rows);
        const scored = scanScoredRows(text);
        expect(scored).toBeDefined();
        expect(asParsed(scored!)).toEqual(JSON.parse(text));
      }),
      { numRuns: 500 },
    );
  });

  it('reads a changed line only when JSON.parse reads the same from it, and otherwise leaves it', () => {
    // Each line changed at one place: a character dropped, doubled or replaced by one that matters to JSON.
    const changed = fc
      .tuple(
        results.map((r) => line(r.version, r.output, r.rows)),
        fc.nat(),
        fc.constantFrom('', '"', '\\', ',', ' ', '0', '-', '.', 'e', ']', '}', '{', ':', '\u0000', 'x'),
        fc.boolean(),
      )
      .map(([text, at, char, insert]) => {
        const i = at % (text.length + 1);
        return `${text.slice(0, i)}${char}${text.slice(insert ? i : i + 1)}`;
      });
    let read = 0;
    fc.assert(
      fc.property(changed, (text) => {
        const scored = scanScoredRows(text);
        if (scored === undefined) return;
        read++;
        expect(asParsed(scored)).toEqual(JSON.parse(text));
      }),
      { numRuns: 3000 },
    );
    // The changes that keep a line valid (a digit more, a row dropped) are read too.
    expect(read).toBeGreaterThan(20);
  });

  it('leaves to JSON.parse what it does not read: spaces, other fields, other shapes, several outputs', () => {
    for (const text of [
      '{"version": 1,"results":[]}',
      '{"version":1,"results":[{"index":1,"outputs":{"a":[1]}}],"extra":1}',
      '{"version":1,"results":[{"index":1,"outputs":{"a":1}}]}',
      '{"version":1,"results":[{"index":1,"outputs":{"a":[[1]]}}]}',
      '{"version":1,"results":[{"index":1,"outputs":{"a":[1],"b":[2]}}]}',
      '{"version":1,"results":[{"index":1,"outputs":{"a":[1]}},{"index":2,"outputs":{"b":[2]}}]}',
      '{"version":1,"results":[{"index":01,"outputs":{"a":[1]}}]}',
      '{"version":1,"results":[{"index":1.5,"outputs":{"a":[1]}}]}',
      '{"version":1,"results":[{"index":1234567890123456,"outputs":{"a":[1]}}]}',
      '{"version":1,"results":[{"index":1,"outputs":{"a":[01]}}]}',
      '{"version":1,"results":[{"index":1,"outputs":{"a":[1.]}}]}',
      '{"version":1,"results":[{"index":1,"error":"a\u0001b"}]}',
      '{"version":1,"results":[{"index":1,"error":"\\x"}]}',
      '{"version":-1,"results":[]}',
      '{"Payload":{"version":1,"results":[]}}',
      '{"version":1,"results":[]}\r',
    ]) {
      expect(scanScoredRows(text), text).toBeUndefined();
    }
  });

  it('keeps the file order of lines, scanned or parsed, and refuses a malformed one naming its line', () => {
    const scanned = line(1, 'p', [{ index: 0, value: 0.5 }]);
    const parsed = '{"version":1, "results":[{"index":1,"outputs":{"p":[0.25]}}]}';
    const entries = parseResultFile(`${scanned}\n${parsed}\n`, 'k');
    expect(entries.map((e) => JSON.parse(JSON.stringify(e instanceof ScoredRows ? asParsed(e) : e)))).toEqual(
      [JSON.parse(scanned), JSON.parse(parsed)],
    );
    expect(() => parseResultFile(`${scanned}\n${scanned.slice(0, -1)}\n`, 'k')).toThrow(
      /^k line 2 is not valid JSON/,
    );
  });
});
