/**
 * Logging policy: request bodies, headers, paths and credentials never reach the logs by default,
 * whatever the request and whatever fails. Checked with a capturing `log` and with the default
 * Powertools logger (its JSON lines on stdout/stderr captured).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { DEFAULT_LIMITS } from '../../functions/inference/api.js';
import { createHandler, type FunctionUrlEvent, type Handler } from '../../functions/inference/handler.js';
import type { Log } from '../../functions/inference/service.js';
import { S3ObjectReader } from '../../functions/shared/registry/s3-reader.js';
import { createRuntime } from '../../layers/tfjs-runtime/runtime.js';
import { LOCAL_CREDENTIALS, type LocalS3, startLocalS3 } from '../../scripts/local/s3.js';
import { localHandlerArgs } from '../support/handler.js';
import { publishLinear } from '../support/models.js';
import { captureOutput } from '../support/output.js';

const SECRET = 'sk_live_9f8e7d6c5b4a3210SECRET';
const MODEL = 'lin';

let dir: string;
let s3: LocalS3;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'aiaas-logging-'));
  s3 = await startLocalS3({ directory: dir });
  await publishLinear(await createRuntime('cpu'), s3.registry, MODEL, [1, 1, 1], 0, { promote: true });
});
afterAll(async () => {
  await s3?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});
afterEach(() => {
  vi.restoreAllMocks();
});

function capturingLog(lines: string[]): Log {
  const push = (level: string) => (message: string, extra?: Record<string, unknown>) => {
    lines.push(`${level} ${message} ${JSON.stringify(extra ?? {})}`);
  };
  return { info: push('info'), warn: push('warn'), error: push('error') };
}

function event(method: string, rawPath: string, body?: string, extra: Partial<FunctionUrlEvent> = {}) {
  return {
    rawPath,
    rawQueryString: `token=${SECRET}`,
    headers: {
      authorization: `AWS4-HMAC-SHA256 Credential=AKIA${SECRET}/20260101/us-east-1/lambda/aws4_request, Signature=${SECRET}`,
      'x-amz-security-token': SECRET,
      'x-api-key': SECRET,
      cookie: `session=${SECRET}`,
      'content-type': 'application/json',
    },
    ...(body !== undefined ? { body } : {}),
    requestContext: { http: { method }, requestId: 'req-1' },
    ...extra,
  } satisfies FunctionUrlEvent;
}

/** Bad requests, each carrying the secret somewhere: body, headers, path, query string. */
const badRequests: FunctionUrlEvent[] = [
  event('POST', `/v1/models/${MODEL}:predict`, `{"instances": [[1, 2, "${SECRET}"]]}`),
  event('POST', `/v1/models/${MODEL}:predict`, `{"instances": [[1, 2, 3]], "api_key": "${SECRET}"`),
  event('POST', `/v1/models/${MODEL}:predict`, `${SECRET} is not json`),
  event('POST', `/v1/models/${MODEL}:predict`, `{"${SECRET}": [[1, 2, 3]]}`),
  event('POST', `/v1/models/${MODEL}:predict`, `{"inputs": {"${SECRET}": [[1, 2, 3]]}}`),
  event('POST', `/v1/models/${MODEL}:predict`, `{"instances": [[1, 2, 3]], "signature_name": "${SECRET}"}`),
  event('POST', `/v1/models/${MODEL}:predict`, Buffer.from(`{"password": "${SECRET}"}`).toString('base64'), {
    isBase64Encoded: true,
  }),
  event(
    'POST',
    `/v1/models/${MODEL}:predict`,
    `{"instances": [[1,2,3]], "pad": "${SECRET}${'x'.repeat(7e6)}"}`,
  ),
  event('POST', `/v1/models/${SECRET}:predict`, '{"instances": [[1, 2, 3]]}'),
  event('POST', `/v1/models/${MODEL}/labels/${SECRET.toLowerCase()}:predict`, '{"instances": [[1, 2, 3]]}'),
  event('GET', `/v1/models/${MODEL}:predict`, SECRET),
  event('DELETE', `/${SECRET}`, SECRET),
];

function handlerWith(
  log: Log | undefined,
  endpoint = s3.endpoint,
  secretAccessKey: string = LOCAL_CREDENTIALS.secretAccessKey,
): Handler {
  return createHandler(
    ...localHandlerArgs(s3, MODEL, { endpoint, secretAccessKey, ...(log ? { log } : {}) }),
  );
}

function expectNoSecret(lines: string[]) {
  for (const line of lines) {
    expect(line).not.toContain(SECRET);
    expect(line.toLowerCase()).not.toContain(SECRET.toLowerCase());
  }
}

describe('logging policy', () => {
  it('keeps request bodies, headers, paths and query strings out of the logs (capturing log)', async () => {
    const lines: string[] = [];
    const handler = handlerWith(capturingLog(lines));
    expect((await handler(event('GET', '/'))).statusCode).toBe(200);
    for (const request of badRequests) {
      const res = await handler(request);
      expect(res.statusCode).toBeGreaterThanOrEqual(400);
      expect(res.statusCode).toBeLessThan(500);
    }
    expect(lines.some((line) => line.includes('model loaded'))).toBe(true); // the capture works
    expectNoSecret(lines);
  });

  it('keeps credentials and requests out of the logs when the registry is down (503)', async () => {
    const lines: string[] = [];
    // Nothing listens on port 9: every S3 call fails, signed with a secret-looking key.
    const handler = handlerWith(capturingLog(lines), 'http://127.0.0.1:9', SECRET);
    const res = await handler(badRequests[0]!);
    expect(res.statusCode).toBe(503);
    expect(res.headers['retry-after']).toBeTruthy();
    expect(lines.some((line) => line.startsWith('error model could not be loaded'))).toBe(true);
    // The caller gets a generic reason and its request id; the log line for that id has the details.
    expect(JSON.parse(res.body).error).toMatch(/unavailable.*\(request req-1\)/);
    expect(res.body).not.toContain('127.0.0.1:9');
    expect(res.body).not.toContain(s3.bucket);
    const failed = lines.find((line) => line.startsWith('error request failed'));
    expect(failed).toContain('"requestId":"req-1"');
    expect(failed).toContain('127.0.0.1:9');
    expectNoSecret(lines);
    expect(res.body).not.toContain(SECRET);
  });

  it('keeps them out of the default Powertools logger output too', async () => {
    const written = captureOutput();
    const handler = handlerWith(undefined);
    expect((await handler(event('GET', '/'))).statusCode).toBe(200);
    for (const request of badRequests) await handler(request);
    const down = handlerWith(undefined, 'http://127.0.0.1:9', SECRET);
    expect((await down(badRequests[0]!)).statusCode).toBe(503);
    vi.restoreAllMocks();
    expect(written.join('\n')).toMatch(/model loaded/); // the capture works
    expectNoSecret(written);
  });

  it('publishes CloudWatch metrics (EMF) when metrics are on, and nothing when they are off', async () => {
    const predict = event('POST', `/v1/models/${MODEL}:predict`, JSON.stringify({ instances: [[1, 2, 3]] }));
    const emf = async (disabled: string) => {
      vi.stubEnv('POWERTOOLS_METRICS_DISABLED', disabled);
      const written: string[] = [];
      vi.spyOn(process.stdout, 'write').mockImplementation(((chunk: unknown) => {
        written.push(String(chunk));
        return true;
      }) as typeof process.stdout.write);
      try {
        const handler = handlerWith(capturingLog([]));
        expect((await handler(predict)).statusCode).toBe(200);
        expect((await handler(predict)).statusCode).toBe(200);
      } finally {
        vi.restoreAllMocks();
        vi.unstubAllEnvs();
      }
      return written.filter((line) => line.includes('"_aws"'));
    };
    const on = await emf('false');
    expect(on).toHaveLength(2);
    expect(on[0]).toMatch(/"ColdStart"/);
    expect(on[0]).toMatch(/"Predictions"/);
    expect(on[1]).toMatch(/"PredictLatency"/);
    expect(on[1]).not.toMatch(/"ColdStart"/);
    expect(await emf('true')).toEqual([]);
  });

  it('keeps answering when logging or metrics cannot start, and says so once in the logs', async () => {
    const lines: string[] = [];
    const broken = {
      setDefaultDimensions() {
        throw new Error('metrics misconfigured');
      },
    } as unknown as NonNullable<Parameters<typeof createHandler>[1]>['metrics'];
    const handler = createHandler(
      {
        bucket: s3.bucket,
        model: MODEL,
        alias: 'live',
        endpoint: s3.endpoint,
        aliasCheckSeconds: 60,
        limits: DEFAULT_LIMITS,
      },
      {
        store: new S3ObjectReader({
          bucket: s3.bucket,
          endpoint: s3.endpoint,
          region: 'us-east-1',
          credentials: LOCAL_CREDENTIALS,
        }),
        runtime: () => createRuntime('cpu'),
        log: capturingLog(lines),
        metrics: broken,
      },
    );
    const predict = event('POST', `/v1/models/${MODEL}:predict`, JSON.stringify({ instances: [[1, 2, 3]] }));
    for (let i = 0; i < 3; i++) expect((await handler(predict)).statusCode).toBe(200);
    expect((await handler(event('POST', `/v1/models/${MODEL}:predict`, '{'))).statusCode).toBe(400);
    expect(lines.filter((l) => l.includes('could not start'))).toHaveLength(1);
    expect(lines.find((l) => l.includes('could not start'))).toContain('metrics misconfigured');
  });
});
