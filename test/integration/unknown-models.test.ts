/**
 * The local function-URL server and names it has no model for, under concurrent load: an unknown
 * name is a 404 (never a 5xx) and gets no function; while the registry is silent, such a request
 * gets a clear 503 and still no function, so once the registry is back it is a 404 again; a model
 * published later is served. Against s3rver behind a proxy that can go silent, on the built bundle.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ModelRegistry } from '../../functions/shared/registry/registry.js';
import { createS3Client, S3ObjectStore } from '../../functions/shared/registry/store.js';
import { createRuntime } from '../../layers/tfjs-runtime/runtime.js';
import { FaultProxy } from '../../scripts/local/fault-proxy.js';
import { type FunctionUrlServer, startFunctionUrlServer } from '../../scripts/local/function-url-server.js';
import { LOCAL_CREDENTIALS, type LocalS3, startLocalS3 } from '../../scripts/local/s3.js';
import { publishLinear } from '../support/models.js';

const UNKNOWN = ['nope', 'ghost', 'missing-model', 'typo_diabetes', 'a', 'x1', 'later', 'zzz'];

let dir: string;
let s3: LocalS3;
let proxy: FaultProxy;
let server: FunctionUrlServer;
let client: ReturnType<typeof createS3Client>;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'aiaas-unknown-'));
  s3 = await startLocalS3({ directory: dir });
  proxy = new FaultProxy(Number(new URL(s3.endpoint).port));
  const endpoint = await proxy.start();
  client = createS3Client({
    endpoint,
    credentials: LOCAL_CREDENTIALS,
    region: 'us-east-1',
    connectionTimeoutMs: 1_000,
    requestTimeoutMs: 1_000,
    maxAttempts: 1,
  });
  server = await startFunctionUrlServer({
    endpoint,
    bucket: s3.bucket,
    registry: new ModelRegistry(new S3ObjectStore(client, s3.bucket, endpoint)),
    aliasCheckSeconds: 60,
  });
  await publishLinear(await createRuntime('cpu'), s3.registry, 'known', [1, 1, 1], 0, { promote: true });
});
afterAll(async () => {
  await server?.close();
  client?.destroy();
  await proxy?.close();
  await s3?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

interface Answer {
  readonly model: string;
  readonly status: number;
  readonly body: string;
  readonly retryAfter: string | null;
}

/** `total` predict requests over `names` in turn, `concurrency` at a time. */
async function load(names: readonly string[], total: number, concurrency: number): Promise<Answer[]> {
  const answers: Answer[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total) {
        const model = names[next++ % names.length]!;
        const res = await fetch(`${server.url}/v1/models/${model}:predict`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: '{"instances": [[1, 2, 3]]}',
          signal: AbortSignal.timeout(20_000),
        });
        answers.push({
          model,
          status: res.status,
          body: await res.text(),
          retryAfter: res.headers.get('retry-after'),
        });
      }
    }),
  );
  return answers;
}

const statuses = (answers: readonly Answer[], model?: (name: string) => boolean) => {
  const counts: Record<string, number> = {};
  for (const a of answers) if (!model || model(a.model)) counts[a.status] = (counts[a.status] ?? 0) + 1;
  return counts;
};

describe('unknown models on the local function-URL server', () => {
  it('are 404 under load, get no function, and a 503 (not a function) while the registry is silent', async () => {
    const healthy = await load([...UNKNOWN, 'known'], 900, 24);
    expect(statuses(healthy, (m) => m !== 'known')).toEqual({ 404: 800 });
    expect(statuses(healthy, (m) => m === 'known')).toEqual({ 200: 100 });
    for (const a of healthy.filter((x) => x.status === 404)) {
      expect(JSON.parse(a.body).error).toMatch(/does not exist in the registry/);
    }

    // The registry goes silent: an unknown name cannot be decided. It is answered 503, clearly,
    // after the listing gives up; the warm model keeps answering.
    proxy.set({ kind: 'blackhole' });
    const silent = await load([...UNKNOWN, 'known'], 36, 18);
    expect(statuses(silent, (m) => m === 'known')).toEqual({ 200: 4 });
    for (const a of silent.filter((x) => x.model !== 'known')) {
      expect(a.status).toBe(503);
      expect(a.retryAfter).toBeTruthy();
      expect(JSON.parse(a.body).error).toMatch(/registry is unavailable; retry later \(request /);
      expect(a.body).not.toContain(s3.bucket);
    }

    // Back: nothing was remembered about those names, so they are 404 again, not a function's 503.
    proxy.set({ kind: 'pass' });
    const after = await load(UNKNOWN, 160, 16);
    expect(statuses(after)).toEqual({ 404: 160 });
    expect(server.functions()).toEqual(['known']);
  });

  it('serves a model published after its name was asked for', async () => {
    expect((await load(['later'], 20, 10)).every((a) => a.status === 404)).toBe(true);
    await publishLinear(await createRuntime('cpu'), s3.registry, 'later', [2, 2, 2], 1, { promote: true });
    const answers = await load(['later'], 20, 10);
    expect(statuses(answers)).toEqual({ 200: 20 });
    expect(JSON.parse(answers[0]!.body).predictions).toEqual([[13]]);
    expect(server.functions().sort()).toEqual(['known', 'later']);
  });
});
