/**
 * S3 slow or silent at a cold start (and under a warm function), against the real local S3 server
 * behind a small TCP proxy that can pass, delay or blackhole traffic. With the function's S3
 * client timeouts (here 1 s, one attempt) a cold request answers 503 with Retry-After in bounded
 * time, never hangs until the Lambda timeout, and the function recovers by itself when S3 answers
 * again.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
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
import { LOCAL_CREDENTIALS, type LocalS3, startLocalS3 } from '../../scripts/lib/local-stack.js';
import { publishLinear } from '../support/models.js';
import { sleep } from '../support/stack.js';

type Mode = { kind: 'pass' } | { kind: 'delay'; ms: number } | { kind: 'blackhole' };

/**
 * A TCP proxy on loopback in front of s3rver. `pass` forwards, `delay` holds every chunk in both
 * directions for `ms`, `blackhole` accepts connections and reads requests but never answers (S3
 * or the network path gone silent, the worst case for a client: no error, no data). Changing the
 * mode drops open connections, as a network change would.
 */
class FaultProxy {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  mode: Mode = { kind: 'pass' };
  connections = 0;

  constructor(private readonly targetPort: number) {}

  async start(): Promise<string> {
    this.server = createServer((client) => this.accept(client));
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    const address = this.server.address() as { port: number };
    return `http://127.0.0.1:${address.port}`;
  }

  set(mode: Mode) {
    this.mode = mode;
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
  }

  private track(socket: Socket) {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => socket.destroy());
  }

  private accept(client: Socket) {
    this.connections++;
    this.track(client);
    const mode = this.mode;
    if (mode.kind === 'blackhole') {
      client.on('data', () => undefined);
      return;
    }
    const upstream = connect(this.targetPort, '127.0.0.1');
    this.track(upstream);
    const forward = (from: Socket, to: Socket) => {
      from.on('data', (chunk) => {
        if (mode.kind === 'delay') setTimeout(() => to.destroyed || to.write(chunk), mode.ms);
        else if (!to.destroyed) to.write(chunk);
      });
      from.on('close', () => {
        if (mode.kind === 'delay') setTimeout(() => to.destroy(), mode.ms);
        else to.destroy();
      });
    };
    forward(client, upstream);
    forward(upstream, client);
  }

  async close() {
    this.set({ kind: 'pass' });
    await new Promise<void>((resolve) => this.server?.close(() => resolve()) ?? resolve());
  }
}

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
function coldFunction(aliasCheckSeconds = 60): Handler {
  return createHandler(
    {
      bucket: s3.bucket,
      model: 'slow',
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

const predict = {
  rawPath: '/v1/models/slow:predict',
  body: '{"instances": [[1, 1, 1]]}',
  requestContext: { http: { method: 'POST' }, requestId: 'slow-s3' },
};

/** Calls the handler; fails (instead of hanging the suite) when it does not answer within `ms`. */
async function timed(handler: Handler, ms: number): Promise<FunctionUrlResult & { ms: number }> {
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
    const res = await Promise.race([handler(predict), deadline]);
    return { ...res, ms: performance.now() - started };
  } finally {
    clearTimeout(timer);
  }
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

  it('S3 going silent under a warm function: it keeps answering from memory, in bounded time', async () => {
    const handler = coldFunction(1);
    expect((await timed(handler, BOUND_MS)).statusCode).toBe(200);
    proxy.set({ kind: 'blackhole' });
    await sleep(1_100); // past the alias re-check interval: the next request re-checks S3
    const during = await Promise.all([timed(handler, BOUND_MS), timed(handler, BOUND_MS)]);
    for (const res of during) {
      expect(res.statusCode).toBe(200);
      expect(JSON.parse(res.body).predictions).toEqual([[6.5]]);
    }
    expect(logged.some((l) => l.startsWith('warn alias check failed'))).toBe(true);
    // Between re-checks nothing waits on S3.
    const between = await timed(handler, BOUND_MS);
    expect([between.statusCode, between.ms < 200]).toEqual([200, true]);
    proxy.set({ kind: 'pass' });
    await sleep(1_100);
    expect((await timed(handler, BOUND_MS)).statusCode).toBe(200);
  });
});
