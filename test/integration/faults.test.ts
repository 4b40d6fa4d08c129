/**
 * Faults against the real local parts: s3rver stopped and restarted, corrupt and malformed
 * artifacts, aliases pointing nowhere, objects deleted under a running function. The function must
 * answer a clear 5xx/503 at worst, keep serving what it has, and recover by itself.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keys } from '../../functions/shared/registry/layout.js';
import { createRuntime } from '../../layers/tfjs-runtime/runtime.js';
import { type FunctionUrlServer, startFunctionUrlServer } from '../../scripts/local/function-url-server.js';
import { type LocalS3, startLocalS3 } from '../../scripts/local/s3.js';
import { publishLinear } from '../support/models.js';
import { eventually, sleep } from '../support/stack.js';

let dir: string;
let s3: LocalS3;
let server: FunctionUrlServer;
let port: number;

async function call(model: string, body: unknown = { instances: [[1, 2, 3]] }) {
  const res = await fetch(`${server.url}/v1/models/${model}:predict`, {
    method: 'POST',
    body: JSON.stringify(body),
  });
  const json = (await res.json()) as { error?: string; predictions?: number[][] };
  return {
    status: res.status,
    retryAfter: res.headers.get('retry-after'),
    version: res.headers.get('x-aiaas-model-version'),
    json,
  };
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'aiaas-faults-'));
  s3 = await startLocalS3({ directory: dir });
  port = Number(new URL(s3.endpoint).port);
  server = await startFunctionUrlServer({
    endpoint: s3.endpoint,
    bucket: s3.bucket,
    registry: s3.registry,
    aliasCheckSeconds: 1,
  });
  const runtime = await createRuntime('cpu');
  for (const model of ['steady', 'cold', 'broken', 'dangling', 'vanishing']) {
    await publishLinear(runtime, s3.registry, model, [1, 1, 1], 0, { promote: true });
  }
});
afterAll(async () => {
  await server?.close();
  await s3?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('faults', () => {
  it('S3 down: a loaded model keeps serving; a cold one answers 503 with Retry-After; both recover', async () => {
    expect((await call('steady')).status).toBe(200);
    await s3.close();
    await sleep(1_200); // past the alias re-check interval
    expect((await call('steady')).status).toBe(200);
    const cold = await call('cold');
    expect(cold.status).toBe(503);
    expect(cold.retryAfter).toBeTruthy();
    expect(cold.json.error).toMatch(/unavailable/i);
    // A generic reason and the request id: the bucket, endpoint and S3's error stay in the log.
    expect(cold.json.error).toMatch(/\(request [0-9a-f-]+\)$/);
    expect(cold.json.error).not.toContain(s3.bucket);
    expect(cold.json.error).not.toContain(String(port));

    s3 = await startLocalS3({ directory: dir, port });
    await eventually(async () => {
      expect((await call('cold')).status).toBe(200);
    });
  });

  it('a corrupt shard, a malformed model.json or metadata.json never replaces the served version', async () => {
    const runtime = await createRuntime('cpu');
    expect((await call('broken')).version).toBe('1');
    const registry = s3.registry;

    const corrupt = await publishLinear(runtime, registry, 'broken', [5, 5, 5], 5);
    const shard = keys.file('broken', corrupt.version, 'group1-shard1of1.bin');
    const bytes = (await registry.store.get(shard))!.body;
    await registry.store.put(shard, bytes.subarray(0, bytes.length - 4)); // truncated
    await registry.setAlias('broken', 'live', corrupt.version);

    const malformed = await registry.publish(
      'broken',
      [
        {
          name: 'model.json',
          bytes: new TextEncoder().encode('{"modelTopology": {"nonsense": true}, "weightsManifest": []}'),
        },
      ],
      {
        format: 'layers-model',
        signature: { inputs: [], outputs: [] },
        metrics: {},
        source: { kind: 'publish' },
        parent: 1,
      },
    );
    await sleep(1_200);
    expect((await call('broken')).version).toBe('1');
    await registry.setAlias('broken', 'live', malformed.version);
    await sleep(1_200);
    const stillOld = await call('broken');
    expect([stillOld.status, stillOld.version]).toEqual([200, '1']);

    const badMeta = await publishLinear(runtime, registry, 'broken', [6, 6, 6], 6);
    await registry.store.put(keys.metadata('broken', badMeta.version), '{not json');
    await registry.store.put(
      keys.alias('broken', 'live'),
      JSON.stringify({
        model: 'broken',
        alias: 'live',
        version: badMeta.version,
        seq: 99,
        eventId: 'x',
        updatedAt: '',
      }),
    );
    await sleep(1_200);
    expect((await call('broken')).version).toBe('1');

    // A good version promoted afterwards is picked up as usual.
    const good = await publishLinear(runtime, registry, 'broken', [2, 2, 2], 0);
    await registry.setAlias('broken', 'live', good.version);
    await eventually(async () => {
      expect((await call('broken')).version).toBe(String(good.version));
    });
  });

  it('an alias pointing at a missing version: the served one stays; a cold function says why', async () => {
    expect((await call('dangling')).status).toBe(200);
    const pointer = { model: 'dangling', alias: 'live', version: 42, seq: 9, eventId: 'x', updatedAt: '' };
    await s3.registry.store.put(keys.alias('dangling', 'live'), JSON.stringify(pointer));
    await s3.registry.store.put(
      keys.alias('vanishing', 'live'),
      JSON.stringify({ ...pointer, model: 'vanishing' }),
    );
    await sleep(1_200);
    expect((await call('dangling')).version).toBe('1');
    // 'vanishing' was never loaded by this server: it cannot serve and says why.
    const cold = await call('vanishing');
    expect(cold.status).toBe(503);
    expect(cold.json.error).toMatch(/Version 42 of "vanishing" cannot be served/);
    expect(cold.json.error).not.toContain(s3.bucket);
  });

  it('registry objects deleted under a running function: it keeps serving from memory', async () => {
    const runtime = await createRuntime('cpu');
    await publishLinear(runtime, s3.registry, 'deleted', [1, 1, 1], 0, { promote: true });
    expect((await call('deleted')).status).toBe(200);
    for (const { key } of await s3.registry.store.list('models/deleted/'))
      await s3.registry.store.delete(key);
    await sleep(1_200);
    const res = await call('deleted');
    expect([res.status, res.version]).toEqual([200, '1']);
  });
});
