/**
 * Error answers leak nothing about the deployment: a 5xx body gives a generic reason and the
 * request id, never the bucket (which holds the account id), the S3 endpoint or S3's error; the
 * log line for that request id has the details. 4xx bodies name the request's mistake and nothing
 * of the registry either. Against s3rver holding a bucket named as a deployed one is, an endpoint
 * that refuses connections, and an S3 that answers errors.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { DEFAULT_LIMITS } from '../../functions/inference/api.js';
import {
  createHandler,
  type FunctionUrlEvent,
  type FunctionUrlResult,
  type Handler,
  handler,
} from '../../functions/inference/handler.js';
import type { Log } from '../../functions/inference/service.js';
import { keys } from '../../functions/shared/registry/layout.js';
import { S3ObjectReader } from '../../functions/shared/registry/s3-reader.js';
import { createRuntime } from '../../layers/tfjs-runtime/runtime.js';
import { LOCAL_CREDENTIALS, type LocalS3, startLocalS3 } from '../../scripts/local/s3.js';
import { publishLinear } from '../support/models.js';

const ACCOUNT = '123456789012';
const BUCKET = `aiaas-registry-${ACCOUNT}-eu-west-1`;

let dir: string;
let s3: LocalS3;
/** An "S3" that answers every request with an S3 error document. */
let failing: Server;
let failingUrl: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'aiaas-error-bodies-'));
  s3 = await startLocalS3({ directory: dir, bucket: BUCKET });
  const runtime = await createRuntime('cpu');
  await publishLinear(runtime, s3.registry, 'lin', [1, 1, 1], 0, { promote: true });
  const corrupt = await publishLinear(runtime, s3.registry, 'corrupt', [1, 1, 1], 0);
  await s3.registry.store.put(
    keys.file('corrupt', corrupt.version, 'group1-shard1of1.bin'),
    new Uint8Array(16),
  );
  await s3.registry.setAlias('corrupt', 'live', corrupt.version);
  await s3.registry.store.put(
    keys.alias('dangling', 'live'),
    JSON.stringify({ model: 'dangling', alias: 'live', version: 42, seq: 1, eventId: 'x', updatedAt: '' }),
  );
  failing = createServer((req, res) => {
    req.resume();
    res.writeHead(503, { 'content-type': 'application/xml' });
    res.end(
      `<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message><BucketName>${BUCKET}</BucketName><RequestId>S3REQ</RequestId></Error>`,
    );
  });
  await new Promise<void>((resolve) => failing.listen(0, '127.0.0.1', resolve));
  failingUrl = `http://127.0.0.1:${(failing.address() as AddressInfo).port}`;
});
afterAll(async () => {
  failing?.closeAllConnections();
  await new Promise<void>((resolve) => failing?.close(() => resolve()) ?? resolve());
  await s3?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function handlerFor(model: string, endpoint: string, lines: string[], bucket = BUCKET): Handler {
  const push = (level: string) => (message: string, extra?: Record<string, unknown>) => {
    lines.push(`${level} ${message} ${JSON.stringify(extra ?? {})}`);
  };
  const log: Log = { info: push('info'), warn: push('warn'), error: push('error') };
  return createHandler(
    { bucket, model, alias: 'live', endpoint, aliasCheckSeconds: 60, limits: DEFAULT_LIMITS },
    {
      store: new S3ObjectReader({
        bucket,
        endpoint,
        region: 'eu-west-1',
        credentials: LOCAL_CREDENTIALS,
        connectionTimeoutMs: 500,
        maxAttempts: 1,
      }),
      runtime: () => createRuntime('cpu'),
      log,
    },
  );
}

const request = (
  model: string,
  requestId: string,
  path = `/v1/models/${model}:predict`,
): FunctionUrlEvent => ({
  rawPath: path,
  body: '{"instances": [[1, 2, 3]]}',
  requestContext: { http: { method: path.endsWith(':predict') ? 'POST' : 'GET' }, requestId },
});

/** What no answer body may contain: the bucket, the account, any endpoint, S3's words. */
function expectNothingLeaked(res: FunctionUrlResult, ...more: string[]) {
  for (const secret of [
    BUCKET,
    ACCOUNT,
    's3://',
    '127.0.0.1',
    'localhost',
    'http:',
    'ECONNREFUSED',
    'SlowDown',
    'AccessDenied',
    'sha256',
    '/aliases/',
    // Registry object names (an alias pointer, a version's files); the route hint's own
    // `/openapi.json` path is the API's, not the registry's.
    'metadata.json',
    'model.json',
    'live.json',
    '/versions/1/',
    ...more,
  ]) {
    expect(res.body, `${res.statusCode} body names ${secret}`).not.toContain(secret);
  }
  expect(Object.keys(JSON.parse(res.body))).toEqual(['error']);
}

/** The log line of a failed request: it names that request and has the details. */
function logOf(lines: string[], requestId: string): string {
  const line = lines.find(
    (l) => l.startsWith('error request failed') && l.includes(`"requestId":"${requestId}"`),
  );
  expect(line, lines.join('\n')).toBeDefined();
  return line!;
}

describe('error bodies', () => {
  it('registry refusing connections: a 503 with a generic reason and the request id; the log has the details', async () => {
    const lines: string[] = [];
    const res = await handlerFor('lin', 'http://127.0.0.1:9', lines)(request('lin', 'req-refused'));
    expect(res.statusCode).toBe(503);
    expect(res.headers['retry-after']).toBeTruthy();
    expect(JSON.parse(res.body).error).toMatch(/registry is unavailable.*\(request req-refused\)/);
    expectNothingLeaked(res);
    const line = logOf(lines, 'req-refused');
    expect(line).toContain(BUCKET);
    expect(line).toContain('ECONNREFUSED');
    expect(line).toContain('127.0.0.1:9');
  });

  it('S3 answering an error: its code and bucket stay in the log', async () => {
    const lines: string[] = [];
    const res = await handlerFor('lin', failingUrl, lines)(request('lin', 'req-slowdown'));
    expect(res.statusCode).toBe(503);
    expectNothingLeaked(res);
    expect(JSON.parse(res.body).error).toContain('req-slowdown');
    const line = logOf(lines, 'req-slowdown');
    expect(line).toContain('SlowDown');
    expect(line).toContain(BUCKET);
  });

  it('a version that fails verification, an alias naming a missing version: 503s naming only the model and version', async () => {
    const lines: string[] = [];
    const corrupt = await handlerFor('corrupt', s3.endpoint, lines)(request('corrupt', 'req-corrupt'));
    expect(corrupt.statusCode).toBe(503);
    expect(JSON.parse(corrupt.body).error).toMatch(/Version 1 of "corrupt" cannot be served.*req-corrupt/);
    expectNothingLeaked(corrupt, 'group1-shard1of1.bin');
    expect(logOf(lines, 'req-corrupt')).toMatch(/sha256|digest|shard/i);

    const dangling = await handlerFor('dangling', s3.endpoint, lines)(request('dangling', 'req-dangling'));
    expect(dangling.statusCode).toBe(503);
    expect(JSON.parse(dangling.body).error).toMatch(/Version 42 of "dangling"/);
    expectNothingLeaked(dangling);
    expect(logOf(lines, 'req-dangling')).toMatch(/no version 42/);
  });

  it('4xx answers name the request, not the registry (a missing version, a label, a bad body)', async () => {
    const lines: string[] = [];
    const handler = handlerFor('lin', s3.endpoint, lines);
    expect((await handler(request('lin', 'req-ok'))).statusCode).toBe(200);
    const answers = await Promise.all([
      handler(request('lin', 'req-404', '/v1/models/lin/versions/9')),
      handler(request('lin', 'req-label', '/v1/models/lin/labels/canary')),
      handler({ ...request('lin', 'req-400'), body: '{"instances": [[1, 2]]}' }),
      handler(request('lin', 'req-405', '/v1/models/lin/versions/1:predict/extra')),
    ]);
    expect(answers.map((a) => a.statusCode)).toEqual([404, 404, 400, 404]);
    for (const res of answers) expectNothingLeaked(res);
    expect(JSON.parse(answers[0]!.body).error).toMatch(/Version 9 of "lin" is not served/);
  });

  it('a function with no bucket configured: 500 with a generic reason, the log says which setting', async () => {
    vi.stubEnv('AIAAS_BUCKET', '');
    vi.stubEnv('AIAAS_MODEL', 'lin');
    const logged: unknown[][] = [];
    vi.spyOn(console, 'error').mockImplementation((...args: unknown[]) => {
      logged.push(args);
    });
    try {
      const res = await handler(request('lin', 'req-config'), { awsRequestId: 'req-config' });
      expect(res.statusCode).toBe(500);
      expect(JSON.parse(res.body).error).toMatch(/misconfigured.*req-config/);
      expectNothingLeaked(res, 'AIAAS_BUCKET');
    } finally {
      vi.restoreAllMocks();
      vi.unstubAllEnvs();
    }
    expect(JSON.stringify(logged)).toMatch(/AIAAS_BUCKET is not set/);
    expect(JSON.stringify(logged)).toMatch(/req-config/);
  });
});
