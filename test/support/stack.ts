import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type FunctionUrlServer, startFunctionUrlServer } from '../../scripts/local/function-url-server.js';
import { type LocalS3, startLocalS3 } from '../../scripts/local/s3.js';

export const SHARED = join(import.meta.dirname, '../../../shared');

/** A fresh local stack (s3rver + function-URL server on the built bundle) in a temp folder. */
export async function startTestStack(
  options: { aliasCheckSeconds?: number; fastPath?: Record<string, 'auto' | 'off'> } = {},
) {
  const dir = mkdtempSync(join(tmpdir(), 'aiaas-test-'));
  const s3: LocalS3 = await startLocalS3({ directory: dir });
  const server: FunctionUrlServer = await startFunctionUrlServer({
    endpoint: s3.endpoint,
    bucket: s3.bucket,
    registry: s3.registry,
    aliasCheckSeconds: options.aliasCheckSeconds ?? 1,
    ...(options.fastPath ? { fastPath: options.fastPath } : {}),
  });
  return {
    s3,
    server,
    dir,
    async call(
      method: string,
      path: string,
      body?: string | Uint8Array,
      headers: Record<string, string> = {},
    ) {
      const res = await fetch(server.url + path, {
        method,
        ...(body !== undefined ? { body } : {}),
        headers: { 'content-type': 'application/json', ...headers },
      });
      const text = await res.text();
      let json: Record<string, unknown> = {};
      try {
        json = JSON.parse(text) as Record<string, unknown>;
      } catch {}
      return { status: res.status, headers: res.headers, json, text };
    },
    async close() {
      await server.close();
      await s3.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export type TestStack = Awaited<ReturnType<typeof startTestStack>>;

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls until `check` passes or the deadline expires (the alias re-check interval is not exact). */
export async function eventually(check: () => Promise<void>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await check();
      return;
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await sleep(200);
    }
  }
}
