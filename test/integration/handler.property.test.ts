/**
 * Property-based tests of the whole inference handler (payload-2.0 function URL events) against a
 * real registry on s3rver: arbitrary methods, paths, headers, bodies and base64 flags get a 4xx JSON
 * `{"error": "..."}` (never a 5xx, a throw or a hang), and well-formed requests get 200 with the
 * right numbers.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_LIMITS } from '../../functions/inference/api.js';
import {
  createHandler,
  type FunctionUrlEvent,
  type FunctionUrlResult,
  type Handler,
} from '../../functions/inference/handler.js';
import { parseJsonWithNonFinite } from '../../functions/inference/json.js';
import { S3ObjectReader } from '../../functions/shared/registry/s3-reader.js';
import { createRuntime } from '../../layers/tfjs-runtime/runtime.js';
import { LOCAL_CREDENTIALS, type LocalS3, startLocalS3 } from '../../scripts/local/s3.js';
import { linear, publishLinear } from '../support/models.js';

const MODEL = 'lin';
const W = [0.5, -2, 3] as const;
const B = 0.25;
/** No single event may take longer than this (the model is loaded before the properties run). */
const DEADLINE_MS = 5_000;

let dir: string;
let s3: LocalS3;
let handler: Handler;
const logged: { level: string; message: string; extra?: Record<string, unknown> }[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'aiaas-prop-'));
  s3 = await startLocalS3({ directory: dir });
  const runtime = await createRuntime('cpu');
  await publishLinear(runtime, s3.registry, MODEL, W, B, { promote: true });
  const capture = (level: string) => (message: string, extra?: Record<string, unknown>) => {
    logged.push({ level, message, ...(extra ? { extra } : {}) });
  };
  handler = createHandler(
    {
      bucket: s3.bucket,
      model: MODEL,
      alias: 'live',
      endpoint: s3.endpoint,
      aliasCheckSeconds: 3600,
      limits: DEFAULT_LIMITS,
    },
    {
      store: new S3ObjectReader({
        bucket: s3.bucket,
        endpoint: s3.endpoint,
        credentials: LOCAL_CREDENTIALS,
        region: 'us-east-1',
      }),
      runtime: () => createRuntime('cpu'),
      log: { info: capture('info'), warn: capture('warn'), error: capture('error') },
    },
  );
  // Load the model once, so the properties measure request handling, not the cold start.
  const warm = await handler(event('GET', '/'));
  expect(warm.statusCode).toBe(200);
});

afterAll(async () => {
  await s3?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function event(
  method: string | undefined,
  rawPath: string | undefined,
  body?: string,
  isBase64Encoded?: boolean,
  headers: Record<string, string> = {},
): FunctionUrlEvent {
  return {
    ...(rawPath !== undefined ? { rawPath } : {}),
    rawQueryString: '',
    headers,
    ...(body !== undefined ? { body } : {}),
    ...(isBase64Encoded !== undefined ? { isBase64Encoded } : {}),
    requestContext: { ...(method !== undefined ? { http: { method } } : {}), requestId: 'prop-test' },
  };
}

async function call(e: FunctionUrlEvent): Promise<FunctionUrlResult> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${DEADLINE_MS} ms`)), DEADLINE_MS);
  });
  try {
    return await Promise.race([handler(e), deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** Every answer: JSON, a known status, `{"error": "..."}` and nothing else when it is an error. */
function checkShape(e: FunctionUrlEvent, res: FunctionUrlResult) {
  expect([200, 400, 404, 405, 413]).toContain(res.statusCode);
  expect(res.headers['content-type']).toBe('application/json');
  if (res.statusCode === 405) expect(res.headers.allow).toBeTruthy();
  if ((e.requestContext?.http?.method ?? 'GET').toUpperCase() === 'HEAD') {
    expect(res.body).toBe('');
    return;
  }
  // TF Serving's JSON: a prediction may hold NaN or Infinity tokens (g3doc/api_rest.md).
  const body = parseJsonWithNonFinite(res.body) as Record<string, unknown>;
  if (res.statusCode >= 400) {
    expect(Object.keys(body)).toEqual(['error']);
    expect(typeof body.error).toBe('string');
    expect((body.error as string).length).toBeGreaterThan(0);
  }
}

const methodArb = fc.oneof(
  fc.constantFrom(
    'GET',
    'POST',
    'HEAD',
    'PUT',
    'DELETE',
    'PATCH',
    'OPTIONS',
    'get',
    'post',
    'pOsT',
    'head',
    '',
  ),
  fc.string({ maxLength: 10 }),
  fc.constant(undefined),
);
const pathArb = fc.oneof(
  fc.constantFrom(
    '/',
    '',
    '//',
    `/v1/models/${MODEL}`,
    `/v1/models/${MODEL}:predict`,
    `/v1/models/${MODEL}/metadata`,
    `/v1/models/${MODEL}/versions/1:predict`,
    `/v1/models/${MODEL}/versions/2:predict`,
    `/v1/models/${MODEL}/versions/99999999999:predict`,
    `/v1/models/${MODEL}/labels/live:predict`,
    `/v1/models/${MODEL}/labels/canary`,
    `/v1/models/${MODEL}/labels/..%2F..%2Fother`,
    '/v1/models/other:predict',
    '/v1/models/..:predict',
    `/v1/models/..%2F${MODEL}:predict`,
    `/v1/models/${MODEL}%2F..%2Fother:predict`,
    `/v1/models/${MODEL}:predict?x=1&y=%00`,
    `/v1/models/${MODEL}/../../x`,
    '/v1/models/模型:predict',
    `/v1/models/${MODEL}:classify`,
    `/v1/models/${'a'.repeat(5000)}:predict`,
    `/${'/'.repeat(10_000)}x`,
  ),
  fc.webPath(),
  fc.string({ maxLength: 100 }),
  fc.webSegment().map((s) => `/v1/models/${s}:predict`),
  fc.constant(undefined),
);
const jsonishBody = fc.oneof(
  fc.string({ maxLength: 200 }),
  fc.json({ maxDepth: 5 }),
  fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify({ instances: v })),
  fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify({ inputs: v })),
  fc
    .array(fc.array(fc.oneof(fc.double(), fc.string(), fc.constant(null)), { maxLength: 5 }), {
      maxLength: 5,
    })
    .map((rows) => JSON.stringify({ instances: rows })),
  fc
    .array(fc.constantFrom('NaN', 'Infinity', '1e999', '"1"', 'null', '0x1', '-', '1,', '[1]'), {
      minLength: 3,
      maxLength: 3,
    })
    .map((xs) => `{"instances": [[${xs.join(',')}]]}`),
  fc.integer({ min: 1, max: 5000 }).map((d) => `{"instances": ${'['.repeat(d)}1${']'.repeat(d)}}`),
);
const bodyArb = fc.oneof(
  jsonishBody.map((text) => ({ text, base64: false as boolean | undefined })),
  jsonishBody.map((text) => ({
    text: Buffer.from(text).toString('base64'),
    base64: true as boolean | undefined,
  })),
  fc.uint8Array({ maxLength: 500 }).map((b) => ({ text: Buffer.from(b).toString('base64'), base64: true })),
  fc.string({ maxLength: 200 }).map((text) => ({ text, base64: true })),
  fc.string({ maxLength: 200 }).map((text) => ({ text, base64: undefined })),
  fc.constant({ text: undefined, base64: undefined }),
);
const headersArb = fc.oneof(
  fc.constant({}),
  fc.dictionary(fc.string({ maxLength: 20 }), fc.string({ maxLength: 50 }), { maxKeys: 6 }),
  fc.record({
    'content-type': fc.constantFrom(
      'application/json',
      'text/plain',
      'application/octet-stream',
      '',
      '\u0000',
    ),
    'content-length': fc.constantFrom('0', '-1', '999999999999', 'abc'),
    'content-encoding': fc.constantFrom('gzip', 'br', 'identity'),
  }),
);

describe('handler (property, real registry on s3rver)', () => {
  it('answers any event with a JSON 200 or 4xx, never a 5xx, a throw or a hang', async () => {
    await fc.assert(
      fc.asyncProperty(methodArb, pathArb, bodyArb, headersArb, async (method, path, body, headers) => {
        const e = event(method, path, body.text, body.base64, headers);
        checkShape(e, await call(e));
      }),
      { numRuns: 1000 },
    );
    expect(logged.filter((l) => l.level === 'error')).toEqual([]);
  });

  it('answers an event the same whatever came before it (routing is remembered per method and path)', async () => {
    const answer = async (e: FunctionUrlEvent) => {
      const res = await call(e);
      return {
        status: res.statusCode,
        allow: res.headers.allow,
        version: res.headers['x-aiaas-model-version'],
      };
    };
    await fc.assert(
      fc.asyncProperty(methodArb, pathArb, methodArb, pathArb, async (m1, p1, m2, p2) => {
        const first = event(m1, p1, '{"instances": [[1, 2, 3]]}');
        const alone = await answer(first);
        await answer(event(m2, p2, '{"instances": [[1, 2, 3]]}'));
        expect(await answer(first)).toEqual(alone);
        expect(await answer(first)).toEqual(alone);
      }),
      { numRuns: 300 },
    );
  });

  it('answers every bad predict body on the real predict path with 400 or 413', async () => {
    await fc.assert(
      fc.asyncProperty(jsonishBody, fc.boolean(), async (text, base64) => {
        const e = event(
          'POST',
          `/v1/models/${MODEL}:predict`,
          base64 ? Buffer.from(text).toString('base64') : text,
          base64,
        );
        const res = await call(e);
        checkShape(e, res);
        if (res.statusCode === 200) {
          // Random text that happens to be a valid request must then be answered correctly.
          const rows = (parseJsonWithNonFinite(text) as { instances?: number[][]; inputs?: number[][] })
            .instances;
          if (rows)
            expect((parseJsonWithNonFinite(res.body) as { predictions: unknown[] }).predictions).toHaveLength(
              rows.length,
            );
        } else {
          expect([400, 413]).toContain(res.statusCode);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('answers every well-formed predict with 200 and the right numbers', async () => {
    const x = fc.double({ min: -1000, max: 1000, noNaN: true });
    const predictPath = fc.constantFrom(
      `/v1/models/${MODEL}:predict`,
      `/v1/models/${MODEL}:predict/`,
      `/v1/models/${MODEL}/versions/1:predict`,
      `/v1/models/${MODEL}/labels/live:predict`,
      '/',
    );
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(x, x, x), { minLength: 1, maxLength: 64 }),
        fc.boolean(),
        fc.boolean(),
        predictPath,
        fc.constantFrom('POST', 'post', 'Post'),
        async (rows, columnar, base64, path, method) => {
          const json = JSON.stringify(columnar ? { inputs: rows } : { instances: rows });
          const res = await call(
            event(method, path, base64 ? Buffer.from(json).toString('base64') : json, base64, {
              'content-type': 'application/json',
            }),
          );
          expect(res.statusCode).toBe(200);
          expect(res.headers['x-aiaas-model-version']).toBe('1');
          const body = JSON.parse(res.body) as { predictions?: number[][]; outputs?: number[][] };
          const got = columnar ? body.outputs! : body.predictions!;
          expect(got).toHaveLength(rows.length);
          for (const [i, row] of rows.entries()) {
            const expected = linear(W, B, row);
            const scale = Math.abs(B) + row.reduce((s, v, k) => s + Math.abs(v * W[k]!), 0);
            expect(Math.abs(got[i]![0]! - expected)).toBeLessThanOrEqual(1e-5 * scale + 1e-6);
          }
        },
      ),
      { numRuns: 150 },
    );
  });

  it('answers status and metadata with 200 for GET and HEAD', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('GET', 'get', 'HEAD', 'head'),
        fc.constantFrom(
          '/',
          `/v1/models/${MODEL}`,
          `/v1/models/${MODEL}/`,
          `/v1/models/${MODEL}/metadata`,
          `/v1/models/${MODEL}/versions/1`,
          `/v1/models/${MODEL}/labels/live/metadata`,
        ),
        async (method, path) => {
          const e = event(method, path);
          const res = await call(e);
          expect(res.statusCode).toBe(200);
          checkShape(e, res);
        },
      ),
      { numRuns: 40 },
    );
  });

  it('answers the limits: 413 over 6 MB, 400 over the instance and number limits, 400 on deep nesting', async () => {
    const predict = (body: string, base64 = false) =>
      call(
        event(
          'POST',
          `/v1/models/${MODEL}:predict`,
          base64 ? Buffer.from(body).toString('base64') : body,
          base64,
        ),
      );
    const tooBig = `{"instances": [[1,2,3]], "pad": "${'x'.repeat(DEFAULT_LIMITS.maxBodyBytes)}"}`;
    expect((await predict(tooBig)).statusCode).toBe(413);
    expect((await predict(tooBig, true)).statusCode).toBe(413);
    const manyRows = JSON.stringify({ instances: Array(DEFAULT_LIMITS.maxInstances + 1).fill([1, 2, 3]) });
    const many = await predict(manyRows);
    expect(many.statusCode).toBe(400);
    expect(JSON.parse(many.body).error).toMatch(/limit is 10000/);
    // Just under 6 MB but over a million numbers, for a model with a free inner dimension it
    // would be the element limit; here the fixed shape [-1, 3] refuses it first.
    const longRow = JSON.stringify({ instances: [Array(1_100_000).fill(0)] });
    expect((await predict(longRow)).statusCode).toBe(400);
    const deep = `{"instances": ${'['.repeat(200_000)}${']'.repeat(200_000)}}`;
    expect((await predict(deep)).statusCode).toBe(400);
    expect(logged.filter((l) => l.level === 'error')).toEqual([]);
  });
});
