/**
 * The local S3 (`npm start`'s s3rver, scripts/local/s3.ts) answers only requests whose Host names
 * 127.0.0.1 or localhost: a page of another site rebinding its name to this machine can neither
 * read nor write the local registry. Any loopback port is accepted, so proxies on loopback (the
 * fault tests') still reach it. Real s3rver, real HTTP.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FaultProxy } from '../../scripts/local/fault-proxy.js';
import { type LocalS3, startLocalS3 } from '../../scripts/local/s3.js';
import { rawRequest } from '../support/raw-request.js';

let dir: string;
let s3: LocalS3;
let port: number;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'aiaas-s3-host-'));
  s3 = await startLocalS3({ directory: dir });
  port = Number(new URL(s3.endpoint).port);
});
afterAll(async () => {
  await s3?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function call(method: string, path: string, host: string, body?: string) {
  return rawRequest(port, method, path, { host }, body);
}

describe('the local S3: the Host guard', () => {
  it('refuses a foreign Host with AccessDenied, naming it, and stores nothing', async () => {
    const key = `/${s3.bucket}/models/m/aliases/live.json`;
    for (const host of [`evil.example:${port}`, 'evil.example', `127.0.0.1.evil.example:${port}`]) {
      const put = await call('PUT', key, host, '{"version":9}');
      expect(put.status).toBe(403);
      expect(put.text).toContain('<Code>AccessDenied</Code>');
      expect(put.text).toContain(
        `The local S3 answers only to 127.0.0.1 or localhost, not Host &#34;${host}&#34;`,
      );
      expect((await call('GET', `/${s3.bucket}/`, host)).status).toBe(403);
    }
    expect(await s3.registry.store.get('models/m/aliases/live.json')).toBeUndefined();
  });

  it('answers 127.0.0.1 and localhost on its port, and through a loopback proxy on another', async () => {
    await s3.registry.store.put('probe', 'x');
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`]) {
      expect((await call('GET', `/${s3.bucket}/probe`, host)).text).toBe('x');
    }
    const proxy = new FaultProxy(port);
    const url = await proxy.start();
    try {
      const viaProxy = new URL(url);
      const viaPort = Number(viaProxy.port);
      const answer = (
        await rawRequest(viaPort, 'GET', `/${s3.bucket}/probe`, { host: `127.0.0.1:${viaPort}` })
      ).text;
      expect(answer).toBe('x');
    } finally {
      await proxy.close();
    }
  });
});
