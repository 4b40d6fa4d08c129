/**
 * S3 slow or silent at a cold start (and under a warm function), against the real local S3 server
 * behind a small TCP proxy that can pass, delay or blackhole traffic. With the function's S3
 * client timeouts (here 1 s, one attempt) a cold request answers 503 with Retry-After in bounded
 * time, never hangs until the Lambda timeout, and the function recovers by itself when S3 answers
 * again. A warm function answers from memory while a re-check is pending or failing (only the
 * request that starts a re-check waits for it, at most its short budget, well under the S3
 * timeout), and backs off its re-checks while they fail.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_LIMITS } from '../../functions/inference/api.js';
import { createHandler, type FunctionUrlResult, type Handler } from '../../functions/inference/handler.js';
import type { Log } from '../../functions/inference/service.js';
import { S3ObjectReader } from '../../functions/shared/registry/s3-reader.js';
import { createS3Client } from '../../functions/shared/registry/store.js';
import { createRuntime } from '../../layers/tfjs-runtime/runtime.js';
import { FaultProxy } from '../../scripts/local/fault-proxy.js';
import { LOCAL_CREDENTIALS, type LocalS3, startLocalS3 } from '../../scripts/local/s3.js';
import { publishLinear } from '../support/models.js';
import { sleep } from '../support/stack.js';

/** The function's S3 client settings under test: 1 s to connect, 1 s for an answer, one attempt. */
const CLIENT = { connectionTimeoutMs: 1_000, requestTimeoutMs: 1_000, maxAttempts: 1 } as const;
/** A cold request must answer within this, S3 silent or not (the client gives up after ~1 s). */
const BOUND_MS = 4_000;

let dir: string;
let s3: LocalS3;
let proxy: FaultProxy;
let proxyUrl: string;
const logged: string[] = [];
const log: Log = {
  info: (m, e) => logged.push(`info ${m} ${JSON.stringify(e ?? {})}`),
  warn: (m, e) => logged.push(`warn ${m} ${JSON.stringify(e ?? {})}`),
  error: (m, e) => logged.push(`error ${m} ${JSON.stringify(e ?? {})}`),
};

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'aiaas-slow-s3-'));
  s3 = await startLocalS3({ directory: dir });
  proxy = new FaultProxy(Number(new URL(s3.endpoint).port));
  proxyUrl = await proxy.start();
  await publishLinear(await createRuntime('cpu'), s3.registry, 'slow', [1, 2, 3], 0.5, { promote: true });
});
afterEach(() => {
  proxy.set({ kind: 'pass' });
  logged.length = 0;
});
afterAll(async () => {
  await proxy?.close();
  await s3?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** A fresh function (a cold start) whose S3 traffic goes through the proxy. */
function coldFunction(aliasCheckSeconds = 60, model = 'slow'): Handler {
  return createHandler(
    {
      bucket: s3.bucket,
      model,
      alias: 'live',
      endpoint: proxyUrl,
      aliasCheckSeconds,
      limits: DEFAULT_LIMITS,
    },
    {
      store: new S3ObjectReader({
        bucket: s3.bucket,
        endpoint: proxyUrl,
        credentials: LOCAL_CREDENTIALS,
        region: 'us-east-1',
        ...CLIENT,
      }),
      runtime: () => createRuntime('cpu'),
      log,
    },
  );
}

const predictOn = (model: string) => ({
  rawPath: `/v1/models/${model}:predict`,
  body: '{"instances": [[1, 1, 1]]}',
  requestContext: { http: { method: 'POST' }, requestId: 'slow-s3' },
});

/** Calls the handler; fails (instead of hanging the suite) when it does not answer within `ms`. */
async function timed(
  handler: Handler,
  ms: number,
  model = 'slow',
): Promise<FunctionUrlResult & { ms: number }> {
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new Error(
            `no answer within ${ms} ms: the S3 client did not give up after requestTimeoutMs (createS3Client must enforce it: throwOnRequestTimeout / socketTimeout)`,
          ),
        ),
      ms,
    );
  });
  try {
    const res = await Promise.race([handler(predictOn(model)), deadline]);
    return { ...res, ms: performance.now() - started };
  } finally {
    clearTimeout(timer);
  }
}

/** Concurrent callers of a warm function in the streams below (one process: the handler's own loop). */
const WORKERS = 8;
/** A bound on each caller's requests, so a stream always ends (its time bound ends it first). */
const MAX_PER_WORKER = 200_000;

interface Stream {
  readonly answered: number;
  readonly perWorker: number[];
  readonly maxMs: number;
  readonly ms: number;
  readonly wrong: string[];
}

/**
 * WORKERS callers each sending predict requests one after another (yielding to the event loop in
 * between, as separate invocations would), until `stop()` or `ms` has passed; every answer must be
 * 200 with the prediction of weights [1, 2, 3] and bias 0.5.
 */
async function stream(handler: Handler, stop: () => boolean, ms: number): Promise<Stream> {
  const started = performance.now();
  const wrong: string[] = [];
  let maxMs = 0;
  const perWorker = await Promise.all(
    Array.from({ length: WORKERS }, async () => {
      let answered = 0;
      for (let i = 0; i < MAX_PER_WORKER && !stop() && performance.now() - started < ms; i++) {
        const res = await timed(handler, BOUND_MS, 'warm');
        maxMs = Math.max(maxMs, res.ms);
        if (res.statusCode !== 200 || JSON.parse(res.body).predictions?.[0]?.[0] !== 6.5) {
          if (wrong.length < 3) wrong.push(`${res.statusCode} ${res.body.slice(0, 200)}`);
        }
        answered++;
        await new Promise((resolve) => setImmediate(resolve));
      }
      return answered;
    }),
  );
  return {
    answered: perWorker.reduce((a, b) => a + b, 0),
    perWorker,
    maxMs,
    ms: performance.now() - started,
    wrong,
  };
}

async function recovers(handler: Handler, withinMs: number): Promise<number> {
  const started = performance.now();
  for (;;) {
    const res = await timed(handler, BOUND_MS);
    if (res.statusCode === 200) {
      expect(JSON.parse(res.body).predictions).toEqual([[6.5]]);
      return performance.now() - started;
    }
    expect(res.statusCode).toBe(503);
    if (performance.now() - started > withinMs) throw new Error(`not recovered within ${withinMs} ms`);
    await sleep(Number(res.headers['retry-after'] ?? 1) * 250);
  }
}

describe('slow or silent S3', () => {
  it('createS3Client gives up on a request S3 never answers after requestTimeoutMs', async () => {
    proxy.set({ kind: 'blackhole' });
    const client = createS3Client({
      endpoint: proxyUrl,
      credentials: LOCAL_CREDENTIALS,
      region: 'us-east-1',
      ...CLIENT,
    });
    const started = performance.now();
    let timer: NodeJS.Timeout | undefined;
    const outcome = await Promise.race([
      client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: 'models/slow/aliases/live.json' })).then(
        () => 'answered',
        (error: Error) => error.name,
      ),
      new Promise<string>((resolve) => {
        timer = setTimeout(() => resolve('still waiting'), 3_000);
      }),
    ]);
    clearTimeout(timer);
    client.destroy();
    expect(outcome).toBe('TimeoutError');
    expect(performance.now() - started).toBeLessThan(2_500);
  });

  it('S3 silent at a cold start: 503 with Retry-After in bounded time, then recovery by itself', async () => {
    proxy.set({ kind: 'blackhole' });
    const handler = coldFunction();
    // Concurrent cold requests share one load attempt and all get the same bounded answer.
    const answers = await Promise.all([
      timed(handler, BOUND_MS),
      timed(handler, BOUND_MS),
      timed(handler, BOUND_MS),
    ]);
    for (const res of answers) {
      expect(res.statusCode).toBe(503);
      expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
      expect(JSON.parse(res.body).error).toMatch(/unavailable/i);
      expect(res.ms).toBeLessThan(BOUND_MS);
    }
    expect(logged.filter((l) => l.startsWith('error model could not be loaded'))).toHaveLength(1);
    // Within the retry window the function fails fast instead of queueing on S3 again.
    const fast = await timed(handler, BOUND_MS);
    expect(fast.statusCode).toBe(503);
    expect(fast.ms).toBeLessThan(200);

    proxy.set({ kind: 'pass' });
    expect(await recovers(handler, 5_000)).toBeLessThan(5_000);
    expect(logged.some((l) => l.startsWith('info model loaded'))).toBe(true);
  });

  it('S3 slow but within the timeouts at a cold start: answers 200, only later', async () => {
    proxy.set({ kind: 'delay', ms: 150 });
    const res = await timed(coldFunction(), 15_000);
    expect(res.statusCode).toBe(200);
    expect(JSON.parse(res.body).predictions).toEqual([[6.5]]);
    expect(res.ms).toBeGreaterThan(150);
  });

  it('S3 slower than the timeouts at a cold start: 503, then recovery when it speeds up', async () => {
    proxy.set({ kind: 'delay', ms: 1_500 });
    const handler = coldFunction();
    const res = await timed(handler, BOUND_MS);
    expect(res.statusCode).toBe(503);
    expect(res.headers['retry-after']).toBeTruthy();
    proxy.set({ kind: 'pass' });
    await recovers(handler, 5_000);
  });

  it('S3 going silent under a warm function: every request answers from memory while the re-check is pending, and re-checks back off', async () => {
    const runtime = await createRuntime('cpu');
    await publishLinear(runtime, s3.registry, 'warm', [1, 2, 3], 0.5, { promote: true });
    const handler = coldFunction(1, 'warm');
    expect((await timed(handler, BOUND_MS, 'warm')).statusCode).toBe(200);
    await stream(handler, () => false, 300); // warm-up (JIT), so the figures compare
    const healthy = await stream(handler, () => false, 1_000);

    proxy.set({ kind: 'blackhole' });
    await sleep(1_100); // past the re-check interval: the next request is due to re-check S3
    const connections = proxy.connections;
    const failed = () => logged.some((l) => l.startsWith('warn alias check failed'));
    // Until the re-check has failed (~1 s, the S3 timeout), then 1.5 s more: less than the back-off.
    const pending = await stream(handler, failed, 3 * BOUND_MS);
    expect(failed()).toBe(true);
    const after = await stream(handler, () => false, 1_500);
    const silent = [pending, after];
    for (const run of silent) expect(run.wrong).toEqual([]);
    // No request waited for the re-check past its budget: each worker kept being answered while it
    // was pending, none as slowly as the S3 timeout.
    expect(pending.perWorker.every((n) => n >= 2)).toBe(true);
    expect(Math.max(pending.maxMs, after.maxMs)).toBeLessThan(CLIENT.requestTimeoutMs);
    // One re-check in flight at a time, and after it failed the next waits 2 intervals, not 1.
    expect(proxy.connections - connections).toBe(1);
    expect(logged.filter((l) => l.startsWith('warn alias check failed'))).toHaveLength(1);
    const rate = (r: Stream) => Math.round((r.answered / r.ms) * 1000);
    console.log(
      `warm function, registry silent: ${pending.answered} requests answered while the re-check was pending (${pending.ms.toFixed(0)} ms), ` +
        `${rate(pending)}/s then and ${rate(after)}/s after it failed, against ${rate(healthy)}/s healthy (${WORKERS} concurrent callers, one process)`,
    );

    // S3 back: a version promoted meanwhile is picked up by a re-check, requests still unblocked.
    proxy.set({ kind: 'pass' });
    const v2 = await publishLinear(runtime, s3.registry, 'warm', [2, 2, 2], 0);
    await s3.registry.setAlias('warm', 'live', v2.version);
    let version: string | undefined;
    for (let i = 0; i < 80 && version !== String(v2.version); i++) {
      await sleep(100);
      const res = await timed(handler, BOUND_MS, 'warm');
      expect(res.statusCode).toBe(200);
      version = res.headers['x-aiaas-model-version'];
    }
    expect(version).toBe(String(v2.version));
  });
});
