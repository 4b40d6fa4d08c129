/**
 * Powertools is loaded only when the function has something to print or publish: a cold start at
 * WARN with metrics off never loads it, and a line logged before it is up is still written, within
 * the invocation that logged it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Handler } from '../../functions/inference/handler.js';
import { createRuntime } from '../../layers/tfjs-runtime/runtime.js';
import { type LocalS3, startLocalS3 } from '../../scripts/local/s3.js';
import { localHandlerArgs } from '../support/handler.js';
import { publishLinear } from '../support/models.js';
import { captureOutput } from '../support/output.js';

const seen = { imports: 0, starts: 0 };

/** Counts imports and starts of the telemetry module (Powertools) in the next fresh handler module. */
function watchTelemetry(): void {
  vi.doMock('../../functions/inference/telemetry.js', async (importOriginal) => {
    seen.imports++;
    const actual = await importOriginal<typeof import('../../functions/inference/telemetry.js')>();
    return {
      ...actual,
      createTelemetry: (...args: Parameters<typeof actual.createTelemetry>) => {
        seen.starts++;
        return actual.createTelemetry(...args);
      },
    };
  });
}

const MODEL = 'quiet';
let dir: string;
let s3: LocalS3;
let output: string[];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'aiaas-telemetry-'));
  s3 = await startLocalS3({ directory: dir });
  await publishLinear(await createRuntime('cpu'), s3.registry, MODEL, [1, 2, 3], 0.5, { promote: true });
});
afterAll(async () => {
  await s3?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});
beforeEach(() => {
  seen.imports = 0;
  seen.starts = 0;
  output = captureOutput();
});
afterEach(() => {
  vi.restoreAllMocks();
  vi.unstubAllEnvs();
});

/** A fresh handler module (as in a new process), imported under `env`. */
async function freshHandler(env: Record<string, string>, endpoint = s3.endpoint): Promise<Handler> {
  for (const [key, value] of Object.entries(env)) vi.stubEnv(key, value);
  vi.resetModules();
  watchTelemetry();
  const { createHandler } = await import('../../functions/inference/handler.js');
  return createHandler(...localHandlerArgs(s3, MODEL, { endpoint }));
}

const predict = {
  rawPath: `/v1/models/${MODEL}:predict`,
  requestContext: { http: { method: 'POST' } },
  body: JSON.stringify({ instances: [[1, 1, 1]] }),
};

describe('Powertools, loaded on demand', () => {
  it('is not loaded by a cold start with nothing to say (WARN, metrics off)', async () => {
    const handler = await freshHandler({ POWERTOOLS_LOG_LEVEL: 'WARN', POWERTOOLS_METRICS_DISABLED: 'true' });
    for (let i = 0; i < 3; i++) {
      const res = await handler(predict);
      expect(res.statusCode).toBe(200);
      expect(JSON.parse(res.body).predictions[0][0]).toBeCloseTo(6.5, 5);
    }
    expect((await handler({ ...predict, body: '{' })).statusCode).toBe(400);
    expect(seen).toEqual({ imports: 0, starts: 0 });
    expect(output).toEqual([]);
  });

  it('writes a line logged before it is up, before the invocation that logged it returns', async () => {
    const handler = await freshHandler(
      { POWERTOOLS_LOG_LEVEL: 'WARN', POWERTOOLS_METRICS_DISABLED: 'true' },
      'http://127.0.0.1:9',
    );
    expect((await handler(predict)).statusCode).toBe(503);
    expect(seen.starts).toBe(1);
    const line = output
      .map((chunk) => chunk.trim())
      .find((chunk) => chunk.includes('model could not be loaded'));
    expect(line).toBeDefined();
    expect(JSON.parse(line!)).toMatchObject({ level: 'ERROR', model: MODEL, alias: 'live' });
    expect((await handler(predict)).statusCode).toBe(503);
    expect(seen.starts).toBe(1);
  });

  it('is imported with the function, and started once, when a cold start logs at INFO and publishes metrics', async () => {
    const handler = await freshHandler({
      POWERTOOLS_LOG_LEVEL: 'INFO',
      POWERTOOLS_METRICS_DISABLED: 'false',
    });
    // Imported before any invocation: in Lambda's init phase.
    await vi.waitFor(() => expect(seen.imports).toBe(1));
    expect(seen.starts).toBe(0);
    expect((await handler(predict)).statusCode).toBe(200);
    expect((await handler(predict)).statusCode).toBe(200);
    expect(seen).toEqual({ imports: 1, starts: 1 });
    const text = output.join('\n');
    expect(text).toMatch(/"message":"model loaded"/);
    expect(text.match(/"_aws"/g)).toHaveLength(2);
    expect(text).toMatch(/"ColdStart":1/);
  });
});
