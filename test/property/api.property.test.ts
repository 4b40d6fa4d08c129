/**
 * Property-based tests of the pure request layer (routing, body decoding, predict parsing) and of
 * the registry key layout: whatever a client or the CLI sends, the answer is a typed 4xx error or
 * a well-formed result, never an untyped throw, a hang, or a key outside the model's own prefix.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_LIMITS,
  decodeBody,
  type Limits,
  parsePredictRequest,
  type Route,
  route,
} from '../../functions/inference/api.js';
import { AiaasError, InvalidNameError, ValidationError } from '../../functions/shared/errors.js';
import {
  assertAliasName,
  assertFileName,
  assertModelName,
  keys,
  MAX_VERSION,
  NAME_PATTERN,
  parseVersion,
} from '../../functions/shared/registry/layout.js';
import type { Signature } from '../../functions/shared/registry/types.js';
import { nameLike } from '../support/arbitraries.js';

const SERVED = 'lin';

const signatures: Record<string, Signature> = {
  single: {
    inputs: [{ name: 'features', dtype: 'float32', shape: [null, 3] }],
    outputs: [{ name: 'y', dtype: 'float32', shape: [null, 1] }],
  },
  free: {
    inputs: [{ name: 'x', dtype: 'float32', shape: [null, null, 2] }],
    outputs: [{ name: 'y', dtype: 'float32', shape: [null, 1] }],
  },
  multi: {
    inputs: [
      { name: 'a', dtype: 'float32', shape: [null, 2] },
      { name: 'b', dtype: 'int32', shape: [null] },
      { name: 'c', dtype: 'bool', shape: [null, 1] },
    ],
    outputs: [{ name: 'y', dtype: 'float32', shape: [null, 1] }],
  },
};
const signatureArb = fc.constantFrom(...Object.keys(signatures)).map((k) => signatures[k]!);

/** Small limits so the limit paths are reached by ordinary random inputs. */
const small: Limits = { maxInstances: 20, maxElements: 60, maxBodyBytes: 512 };
const limitsArb = fc.constantFrom(DEFAULT_LIMITS, small);

/** Only typed client errors (4xx) may escape; anything else is a bug the handler would answer 500 to. */
function clientErrorOrValue<T>(fn: () => T): { ok: true; value: T } | { ok: false; error: AiaasError } {
  try {
    return { ok: true, value: fn() };
  } catch (error) {
    if (!(error instanceof AiaasError)) throw error;
    expect(error.status).toBeGreaterThanOrEqual(400);
    expect(error.status).toBeLessThan(500);
    expect(error.message.length).toBeGreaterThan(0);
    return { ok: false, error };
  }
}

// ---- arbitraries -------------------------------------------------------------------------------

const oddMethods = [
  'GET',
  'POST',
  'HEAD',
  'PUT',
  'DELETE',
  'PATCH',
  'OPTIONS',
  'TRACE',
  'CONNECT',
  'get',
  'post',
  'Post',
  'head',
  '',
  ' POST',
  'POST ',
  'PO\u0000ST',
  'ПОСТ',
];
const methodArb = fc.oneof(fc.constantFrom(...oddMethods), fc.string({ maxLength: 12 }));

const segmentArb = fc.oneof(
  fc.constantFrom(
    SERVED,
    'other',
    '..',
    '.',
    '',
    '%2F',
    '%2f',
    '%2E%2E',
    '..%2F..%2Fother',
    '%',
    '%E0%A4%A',
    '%00',
    'lin%00',
    'LIN',
    'l%69n',
    'lin:predict',
    'versions',
    'labels',
    'metadata',
    '1',
    '0',
    '01',
    '-1',
    '1e3',
    '99999999999',
    '2147483648',
    'live',
    'Live',
    'ünïcødé',
    '模型',
    '🙂',
    'a'.repeat(64),
    'a'.repeat(300),
  ),
  fc.string({ maxLength: 20 }),
  fc.string({ unit: 'grapheme', maxLength: 10 }),
  fc.webSegment(),
);
const verbArb = fc.constantFrom('', ':predict', ':classify', ':regress', ':PREDICT', ':', '/metadata', '/');
const pathArb = fc.oneof(
  // Shaped like the API, with random segments and suffixes.
  fc
    .tuple(
      segmentArb,
      fc.option(fc.tuple(fc.constantFrom('versions', 'labels', 'other'), segmentArb)),
      verbArb,
      fc.option(fc.webQueryParameters()),
      fc.constantFrom('', '/', '//'),
    )
    .map(
      ([model, sub, verb, query, trail]) =>
        `/v1/models/${model}${sub ? `/${sub[0]}/${sub[1]}` : ''}${verb}${query ? `?${query}` : ''}${trail}`,
    ),
  fc.webPath(),
  fc.string({ maxLength: 200 }),
  fc.constantFrom(
    '/',
    '',
    '//',
    '/v1',
    '/v1/models',
    '/v1/models/',
    '/../../etc/passwd',
    '/v1/models/../models/lin',
    '/v1/models/lin/../other:predict',
    '/v1/models/lin%2F..%2Fother:predict',
    '/v1/models/lin/versions/1/../2:predict',
  ),
);

// ---- routing -----------------------------------------------------------------------------------

function checkRoute(r: Route) {
  expect(['predict', 'status', 'metadata']).toContain(r.kind);
  // Whatever the path says, only the served model can come out of routing.
  expect(r.model).toBe(SERVED);
  if (r.version !== undefined) {
    expect(Number.isInteger(r.version)).toBe(true);
    expect(r.version).toBeGreaterThan(0);
  }
  if (r.label !== undefined) expect(r.label).toMatch(NAME_PATTERN);
}

describe('route (property)', () => {
  it('answers a route of the served model or a 404/405, for any method and path', () => {
    fc.assert(
      fc.property(methodArb, pathArb, (method, path) => {
        const result = clientErrorOrValue(() => route(method, path, SERVED));
        if (result.ok) checkRoute(result.value);
        else expect([404, 405]).toContain(result.error.status);
      }),
      { numRuns: 3000 },
    );
  });

  it('routes every valid TF Serving path of the served model, whatever the trailing slashes', () => {
    const version = fc.integer({ min: 1, max: MAX_VERSION });
    const label = fc.stringMatching(/^[a-z0-9][a-z0-9_-]{0,20}$/);
    fc.assert(
      fc.property(
        fc.option(
          fc.oneof(
            version.map((v) => ({ v })),
            label.map((l) => ({ l })),
          ),
        ),
        fc.constantFrom('predict', 'status', 'metadata'),
        fc.constantFrom('', '/', '///'),
        (target, kind, trail) => {
          const sub = target ? ('v' in target ? `/versions/${target.v}` : `/labels/${target.l}`) : '';
          const suffix = kind === 'predict' ? ':predict' : kind === 'metadata' ? '/metadata' : '';
          const r = route(
            kind === 'predict' ? 'POST' : 'GET',
            `/v1/models/${SERVED}${sub}${suffix}${trail}`,
            SERVED,
          );
          expect(r.kind).toBe(kind);
          if (target && 'v' in target) expect(r.version).toBe(target.v);
          if (target && 'l' in target) expect(r.label).toBe(target.l);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('stays fast on very long paths (no super-linear regex on attacker-sized input)', () => {
    const long = fc.oneof(
      fc.integer({ min: 10_000, max: 64_000 }).map((n) => `${'/'.repeat(n)}x`),
      fc.integer({ min: 10_000, max: 64_000 }).map((n) => `/v1/models/${'a'.repeat(n)}:predict`),
      fc.integer({ min: 10_000, max: 64_000 }).map((n) => `/v1/models/lin${'/'.repeat(n)}x`),
      fc.integer({ min: 10_000, max: 64_000 }).map((n) => `/v1/models/lin/versions/${'1'.repeat(n)}:predict`),
      fc.integer({ min: 10_000, max: 64_000 }).map((n) => `${'%2F'.repeat(n / 3)}`),
    );
    fc.assert(
      fc.property(long, methodArb, (path, method) => {
        const started = performance.now();
        clientErrorOrValue(() => route(method, path, SERVED));
        expect(performance.now() - started).toBeLessThan(50);
      }),
      { numRuns: 60 },
    );
  });
});

// ---- body decoding -----------------------------------------------------------------------------

describe('decodeBody (property)', () => {
  it('returns text within the byte limit or answers 413, for any body and base64 flag', () => {
    const body = fc.oneof(
      fc.string({ maxLength: 2000 }),
      fc.string({ unit: 'binary', maxLength: 1000 }),
      fc.base64String({ maxLength: 2000 }),
      fc.uint8Array({ maxLength: 1500 }).map((b) => Buffer.from(b).toString('base64')),
      fc.constant(undefined),
    );
    fc.assert(
      fc.property(body, fc.option(fc.boolean(), { nil: undefined }), limitsArb, (text, isBase64, limits) => {
        const result = clientErrorOrValue(() => decodeBody(text, isBase64, limits));
        if (result.ok) {
          expect(typeof result.value).toBe('string');
          // The decoded bytes never exceed the limit (base64 is checked before decoding).
          const bytes = isBase64 ? Buffer.from(text ?? '', 'base64').length : Buffer.byteLength(text ?? '');
          expect(bytes).toBeLessThanOrEqual(limits.maxBodyBytes);
        } else {
          expect(result.error.status).toBe(413);
        }
      }),
      { numRuns: 1500 },
    );
  });

  it('answers 413 for a body over 6 MB, plain or base64', () => {
    const big = 'x'.repeat(DEFAULT_LIMITS.maxBodyBytes + 1);
    expect(clientErrorOrValue(() => decodeBody(big, false, DEFAULT_LIMITS)).ok).toBe(false);
    const b64 = Buffer.alloc(DEFAULT_LIMITS.maxBodyBytes + 3).toString('base64');
    expect(clientErrorOrValue(() => decodeBody(b64, true, DEFAULT_LIMITS)).ok).toBe(false);
  });
});

// ---- predict parsing ---------------------------------------------------------------------------

const nanIsh = fc.constantFrom(
  'NaN',
  'Infinity',
  '-Infinity',
  '1e309',
  '-1e309',
  '"NaN"',
  '"1"',
  '0x10',
  '+1',
  '.5',
  '1.',
  '--1',
  'null',
  'true',
  '[]',
  '{}',
  '"\\u0000"',
);
const numberLike = fc.oneof(
  fc.double(),
  fc.integer(),
  fc.constantFrom(0, -0, 1e308, -1e308, 5e-324, 2 ** 31, -(2 ** 31), 2 ** 53),
);

/** Deeply nested arrays or objects, as text (JSON.parse may throw a RangeError on these). */
const deepText = fc
  .tuple(
    fc.integer({ min: 1, max: 20_000 }),
    fc.constantFrom('[', '{"a":'),
    fc.constantFrom('1', '[1,2,3]', ''),
  )
  .map(([depth, open, inner]) => {
    const close = open === '[' ? ']' : '}';
    return `{"instances":[${open.repeat(depth)}${inner}${close.repeat(depth)}]}`;
  });

const bodyText = fc.oneof(
  fc.string({ maxLength: 300 }),
  fc.string({ unit: 'binary', maxLength: 200 }),
  fc.json({ maxDepth: 6 }),
  fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify({ instances: v })),
  fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify({ inputs: v })),
  fc
    .record({
      instances: fc.array(fc.array(fc.oneof(numberLike, fc.string(), fc.constant(null), fc.boolean()))),
    })
    .map((v) => JSON.stringify(v)),
  fc
    .tuple(fc.array(nanIsh, { minLength: 1, maxLength: 4 }))
    .map(([parts]) => `{"instances": [[${parts.join(',')}]]}`),
  fc.jsonValue().map((v) => JSON.stringify({ instances: [[1, 2, 3]], inputs: v })),
  fc.jsonValue().map((v) => JSON.stringify({ instances: [[1, 2, 3]], signature_name: v })),
  fc.constantFrom(
    '',
    '   ',
    '{',
    '{"__proto__": {"instances": [[1,2,3]]}}',
    '{"constructor": {"prototype": {"instances": 1}}}',
    '{"instances": [{"__proto__": [1,2,3]}]}',
    '{"inputs": {"__proto__": [[1,2,3]]}}',
    '{"inputs": {"toString": [[1,2,3]]}}',
    '{"instances": {"length": 3}}',
    '{"instances": [[1,2,3]], "instances": "dup"}',
  ),
  deepText,
  // Huge batches and long rows, to reach the instance and element limits.
  fc.integer({ min: 1, max: 12_000 }).map((n) => JSON.stringify({ instances: Array(n).fill([1, 2, 3]) })),
  fc.integer({ min: 1, max: 400_000 }).map((n) => JSON.stringify({ instances: [Array(n).fill(1)] })),
);

describe('parsePredictRequest (property)', () => {
  it('answers a ValidationError or well-formed tensors for any body text', () => {
    fc.assert(
      fc.property(bodyText, signatureArb, limitsArb, (text, signature, limits) => {
        let parsed: ReturnType<typeof parsePredictRequest> | undefined;
        try {
          parsed = parsePredictRequest(text, signature, limits);
        } catch (error) {
          expect(error).toBeInstanceOf(ValidationError);
          expect((error as Error).message.length).toBeGreaterThan(0);
          return;
        }
        expect(parsed.batch).toBeGreaterThan(0);
        expect(parsed.batch).toBeLessThanOrEqual(limits.maxInstances);
        expect(parsed.inputs.map((t) => t.name)).toEqual(signature.inputs.map((s) => s.name));
        for (const [k, tensor] of parsed.inputs.entries()) {
          const spec = signature.inputs[k]!;
          expect(tensor.shape[0]).toBe(parsed.batch);
          expect(tensor.shape.length).toBe(spec.shape.length);
          const size = tensor.shape.reduce((a, b) => a * b, 1);
          expect(tensor.values.length).toBe(size);
          expect(size).toBeLessThanOrEqual(limits.maxElements);
          // Non-finite only from TF Serving's tokens (never from an overflowing literal), in floats.
          const tokens = /NaN|Infinity/.test(text) && spec.dtype === 'float32';
          for (const value of tensor.values) if (!tokens) expect(Number.isFinite(value)).toBe(true);
        }
      }),
      { numRuns: 1500 },
    );
  });

  it('accepts every well-formed request and keeps its numbers (row and columnar)', () => {
    const row = fc.tuple(fc.float({ noNaN: true, noDefaultInfinity: true }), fc.float(), fc.float());
    fc.assert(
      fc.property(
        fc.array(
          row.map((r) => r.map((x) => (Number.isFinite(x) ? x : 0))),
          { minLength: 1, maxLength: 50 },
        ),
        fc.boolean(),
        fc.constantFrom(undefined, 'serving_default'),
        fc.constantFrom('', ' ', '\n\t'),
        (rows, columnar, signatureName, space) => {
          const body = {
            ...(columnar ? { inputs: rows } : { instances: rows }),
            ...(signatureName ? { signature_name: signatureName } : {}),
          };
          const parsed = parsePredictRequest(
            `${space}${JSON.stringify(body)}${space}`,
            signatures.single!,
            DEFAULT_LIMITS,
          );
          expect(parsed.format).toBe(columnar ? 'columnar' : 'row');
          expect(parsed.batch).toBe(rows.length);
          // JSON writes -0 as 0.
          expect([...parsed.inputs[0]!.values]).toEqual(rows.flat().map((x) => Math.fround(x) + 0));
        },
      ),
      { numRuns: 500 },
    );
  });

  it('accepts well-formed multi-input requests with ints and bools', () => {
    const instance = fc.record({
      a: fc.tuple(fc.integer({ min: -1000, max: 1000 }), fc.integer({ min: -1000, max: 1000 })),
      b: fc.integer({ min: -(2 ** 31) + 1, max: 2 ** 31 - 1 }),
      c: fc.tuple(fc.oneof(fc.boolean(), fc.constantFrom(0, 1))),
    });
    fc.assert(
      fc.property(fc.array(instance, { minLength: 1, maxLength: 20 }), (instances) => {
        const parsed = parsePredictRequest(JSON.stringify({ instances }), signatures.multi!, DEFAULT_LIMITS);
        expect(parsed.batch).toBe(instances.length);
        expect([...parsed.inputs[1]!.values]).toEqual(instances.map((i) => i.b));
        expect([...parsed.inputs[2]!.values]).toEqual(instances.map((i) => Number(i.c[0])));
      }),
      { numRuns: 300 },
    );
  });
});

// ---- registry key layout -----------------------------------------------------------------------

const anyValue = fc.oneof(nameLike, fc.anything(), fc.integer(), fc.double());

const versionLike = fc.oneof(
  fc.integer(),
  fc.double(),
  fc.bigInt().map((b) => b.toString()),
  fc.string({ maxLength: 12 }),
  fc.constantFrom(
    '1',
    '01',
    '0',
    '-1',
    '1.0',
    '1e3',
    ' 1',
    '1 ',
    '1\n',
    '2147483647',
    '2147483648',
    '9999999999',
    '0x1',
    '１',
    '1/../2',
    NaN,
    Infinity,
    -0,
    2 ** 31,
    1.5,
    null,
    undefined,
    [],
    {},
  ),
);

/** Every key the layout can produce for a model (name, alias, version, file). */
function allKeys(model: string, alias: string, version: number, file: string, seq = 1): string[] {
  return [
    keys.model(model),
    keys.versions(model),
    keys.version(model, version),
    keys.file(model, version, file),
    keys.metadata(model, version),
    keys.claims(model, version),
    keys.claimsRoot(model),
    keys.alias(model, alias),
    keys.aliasesRoot(model),
    keys.history(model, alias),
    keys.historySlot(model, alias, seq), // seq: computed by the registry from listed integer slots
    keys.reports(model, version),
    keys.dataset(model),
  ];
}

function checkKey(key: string, model: string) {
  expect(key.startsWith(`models/${model}/`) || key.startsWith(`datasets/${model}/`)).toBe(true);
  const segments = key.split('/');
  // A trailing '/' marks a prefix; no other segment is empty, '.' or '..'.
  for (const [i, segment] of segments.entries()) {
    if (i === segments.length - 1 && segment === '') continue;
    expect(segment).not.toBe('');
    expect(segment).not.toBe('.');
    expect(segment).not.toBe('..');
  }
  expect(key).not.toMatch(/[\\%]/); // and, below, nothing but printable ASCII (no spaces or controls)
  expect(key).toMatch(/^[\x21-\x7e]+$/);
}

const fileLikeConst = fc.constantFrom(
  '..',
  '../x',
  'a/b',
  'a\\b',
  '.',
  '.git',
  'x..y',
  'ok.bin',
  'a'.repeat(202),
);

describe('registry layout (property)', () => {
  it('accepts a model or alias name only when it fits the pattern, and returns it unchanged', () => {
    fc.assert(
      fc.property(anyValue, (name) => {
        for (const assert of [assertModelName, assertAliasName]) {
          const valid = typeof name === 'string' && NAME_PATTERN.test(name);
          if (valid) expect(assert(name)).toBe(name);
          else expect(() => assert(name)).toThrow(InvalidNameError);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('parses a version only from a canonical positive integer ≤ 2^31-1', () => {
    fc.assert(
      fc.property(versionLike, (value) => {
        let version: number;
        try {
          version = parseVersion(value);
        } catch (error) {
          expect(error).toBeInstanceOf(InvalidNameError);
          return;
        }
        expect(Number.isInteger(version)).toBe(true);
        expect(version).toBeGreaterThanOrEqual(1);
        expect(version).toBeLessThanOrEqual(MAX_VERSION);
        expect(String(version)).toBe(String(value));
      }),
      { numRuns: 2000 },
    );
  });

  it('never produces a key outside models/<model>/ or datasets/<model>/, whatever the inputs', () => {
    const fileLike = fc.oneof(
      fc.constantFrom('model.json', 'group1-shard1of1.bin', '..', '../x', 'a/b', '.hidden', 'a..b', ''),
      fc.string({ maxLength: 30 }),
    );
    fc.assert(
      fc.property(nameLike, nameLike, versionLike, fileLike, fc.nat(), (model, alias, version, file, seq) => {
        let produced: string[];
        try {
          produced = allKeys(model, alias, version as number, file, seq);
        } catch (error) {
          // Refused: with a typed error, and only because some input does not fit the layout.
          expect(error).toBeInstanceOf(InvalidNameError);
          return;
        }
        expect(model).toMatch(NAME_PATTERN);
        expect(alias).toMatch(NAME_PATTERN);
        for (const key of produced) checkKey(key, model);
      }),
      { numRuns: 3000 },
    );
  });

  it("keeps two different models' prefixes disjoint", () => {
    const valid = fc.stringMatching(/^[a-z0-9][a-z0-9_-]{0,62}$/);
    fc.assert(
      fc.property(valid, valid, fc.integer({ min: 1, max: MAX_VERSION }), (a, b, version) => {
        fc.pre(a !== b);
        for (const key of allKeys(a, 'live', version, 'model.json')) {
          expect(key.startsWith(`models/${b}/`) || key.startsWith(`datasets/${b}/`)).toBe(false);
        }
      }),
      { numRuns: 1000 },
    );
  });

  it('accepts artifact file names only as plain names (no separators, no ..)', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 40 }), fileLikeConst), (name) => {
        try {
          assertFileName(name);
        } catch (error) {
          expect(error).toBeInstanceOf(InvalidNameError);
          return;
        }
        expect(name).not.toMatch(/[/\\]/);
        expect(name.includes('..')).toBe(false);
        expect(name.startsWith('.')).toBe(false);
      }),
      { numRuns: 1000 },
    );
  });
});
