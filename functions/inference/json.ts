/**
 * TF Serving's JSON, read and written as TF Serving does (g3doc/api_rest.md, "JSON conformance";
 * util/json_tensor.cc): request bodies may hold the bare tokens `NaN`, `Infinity` and `-Infinity`
 * for float values, and float outputs are written so that a client reads them back as floats
 * (`4.0`, not `4`), non-finite ones as those tokens. Everything else is standard JSON.
 */

/** A parsed request body, and whether it held a non-finite token (only then may a value be non-finite). */
export interface ParsedJson {
  readonly value: unknown;
  readonly nonFinite: boolean;
}

/**
 * Parses a request body. Standard JSON goes to JSON.parse (the common case, at native speed); only
 * a body JSON.parse refuses and that names a token is read again by `parseJsonWithNonFinite`.
 * Throws a SyntaxError saying where the text stops being JSON.
 */
export function parseRequestJson(text: string): ParsedJson {
  try {
    return { value: JSON.parse(text), nonFinite: false };
  } catch (error) {
    if (!text.includes('NaN') && !text.includes('Infinity')) throw error;
  }
  return { value: parseJsonWithNonFinite(text), nonFinite: true };
}

/** Characters a JSON string may not hold raw, and the escape character: such strings go to JSON.parse. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: JSON strings may not hold these raw.
const SPECIAL = /[\u0000-\u001f\\]/;
const LITERALS: readonly (readonly [string, unknown])[] = [
  ['true', true],
  ['false', false],
  ['null', null],
  ['NaN', Number.NaN],
  ['Infinity', Number.POSITIVE_INFINITY],
  ['-Infinity', Number.NEGATIVE_INFINITY],
];

/**
 * JSON plus the bare tokens `NaN`, `Infinity` and `-Infinity` as numbers (what TF Serving's parser
 * takes: rapidjson with kParseNanAndInfFlag). Iterative, so nesting depth costs memory, never the
 * stack. Like TF Serving, it refuses a number literal too large for a double (`1e999`): a client
 * meaning infinity writes `Infinity`.
 */
export function parseJsonWithNonFinite(text: string): unknown {
  return new TolerantParser(text).parse();
}

class TolerantParser {
  private i = 0;
  constructor(private readonly text: string) {}

  parse(): unknown {
    const { text } = this;
    // Open containers, innermost last, and for objects the key whose value is being read.
    const open: (unknown[] | Record<string, unknown>)[] = [];
    const keys: string[] = [];
    for (;;) {
      // Read one value: a scalar, or the start of a container (then go on with its first entry).
      this.space();
      let value: unknown;
      const c = text.charCodeAt(this.i);
      if (c === 123 /* { */ || c === 91 /* [ */) {
        this.i++;
        this.space();
        if (text.charCodeAt(this.i) === (c === 123 ? 125 : 93)) {
          this.i++;
          value = c === 123 ? {} : [];
        } else {
          open.push(c === 123 ? {} : []);
          if (c === 123) keys.push(this.key());
          continue;
        }
      } else if (c === 34 /* " */) {
        value = this.string();
      } else if ((c >= 48 && c <= 57) || (c === 45 && text.charCodeAt(this.i + 1) !== 73)) {
        value = this.number();
      } else {
        value = this.literal();
      }
      // Store it, then close every container that ends here.
      for (;;) {
        const top = open[open.length - 1];
        if (top === undefined) {
          this.space();
          if (this.i < text.length) this.fail('expected the end of the input');
          return value;
        }
        const array = Array.isArray(top);
        if (array) top.push(value);
        else {
          const k = keys[keys.length - 1]!;
          // JSON.parse makes "__proto__" an own property; an assignment would set the prototype.
          if (k === '__proto__')
            Object.defineProperty(top, k, { value, writable: true, enumerable: true, configurable: true });
          else top[k] = value;
        }
        this.space();
        const next = text.charCodeAt(this.i);
        if (next === 44 /* , */) {
          this.i++;
          if (!array) keys[keys.length - 1] = this.key();
          break;
        }
        if (next !== (array ? 93 : 125)) this.fail(array ? 'expected "," or "]"' : 'expected "," or "}"');
        this.i++;
        open.pop();
        if (!array) keys.pop();
        value = top;
      }
    }
  }

  private fail(what: string): never {
    const { text, i } = this;
    throw new SyntaxError(
      i >= text.length
        ? `Unexpected end of JSON input (${what})`
        : `Unexpected ${describeAt(text, i)} at position ${i} (${what})`,
    );
  }

  private space(): void {
    const { text } = this;
    let i = this.i;
    for (;;) {
      const c = text.charCodeAt(i);
      if (c === 32 || c === 10 || c === 13 || c === 9) i++;
      else break;
    }
    this.i = i;
  }

  private string(): string {
    const { text } = this;
    // The closing quote, skipping escaped characters.
    let end = this.i + 1;
    for (;;) {
      end = text.indexOf('"', end);
      if (end < 0) {
        this.i = text.length;
        this.fail('a string is not closed');
      }
      let slashes = 0;
      while (text.charCodeAt(end - 1 - slashes) === 92) slashes++;
      if (slashes % 2 === 0) break;
      end++;
    }
    const inner = text.slice(this.i + 1, end);
    this.i = end + 1;
    if (!SPECIAL.test(inner)) return inner;
    try {
      return JSON.parse(`"${inner}"`) as string;
    } catch {
      this.i -= inner.length + 2;
      return this.fail('a string holds a bad escape or a control character');
    }
  }

  private key(): string {
    this.space();
    if (this.text.charCodeAt(this.i) !== 34) this.fail('expected a key in double quotes');
    const k = this.string();
    this.space();
    if (this.text.charCodeAt(this.i) !== 58) this.fail('expected ":" after a key');
    this.i++;
    return k;
  }

  /** A JSON number: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? */
  private number(): number {
    const { text } = this;
    const start = this.i;
    let i = start;
    let c = text.charCodeAt(i);
    if (c === 45) c = text.charCodeAt(++i);
    if (c === 48) c = text.charCodeAt(++i);
    else if (c >= 49 && c <= 57) {
      do c = text.charCodeAt(++i);
      while (c >= 48 && c <= 57);
    } else this.fail('expected a value');
    if (c === 46) {
      c = text.charCodeAt(++i);
      if (!(c >= 48 && c <= 57)) this.at(i, 'expected a digit after "."');
      do c = text.charCodeAt(++i);
      while (c >= 48 && c <= 57);
    }
    if (c === 101 || c === 69) {
      c = text.charCodeAt(++i);
      if (c === 43 || c === 45) c = text.charCodeAt(++i);
      if (!(c >= 48 && c <= 57)) this.at(i, 'expected a digit in the exponent');
      do c = text.charCodeAt(++i);
      while (c >= 48 && c <= 57);
    }
    const value = +text.slice(start, i);
    if (value - value !== 0)
      this.fail(`the number ${text.slice(start, Math.min(i, start + 20))} is too large for a double`);
    this.i = i;
    return value;
  }

  private at(i: number, what: string): never {
    this.i = i;
    return this.fail(what);
  }

  private literal(): unknown {
    for (const [word, value] of LITERALS) {
      if (this.text.startsWith(word, this.i)) {
        this.i += word.length;
        return value;
      }
    }
    return this.fail('expected a value');
  }
}

function describeAt(text: string, i: number): string {
  const code = text.codePointAt(i)!;
  return code >= 32 && code < 127
    ? `token ${String.fromCodePoint(code)}`
    : `character U+${code.toString(16).padStart(4, '0')}`;
}

/**
 * A float as TF Serving writes it: whole numbers with `.0` (`4.0`), non-finite ones as the tokens
 * `NaN`, `Infinity`, `-Infinity` (which is what String() gives them). Whole numbers of 1e21 and
 * more are in exponent form already, which clients read as floats.
 */
export function writeFloat(v: number): string {
  if (!Number.isInteger(v)) return `${v}`;
  if (v === 0) return 1 / v < 0 ? '-0.0' : '0.0';
  return v < 1e21 && v > -1e21 ? `${v}.0` : `${v}`;
}
