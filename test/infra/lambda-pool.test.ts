import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { InferenceConfig } from '../../functions/inference/config.js';
import { LambdaPool } from '../../scripts/local/batch/lambda-pool.js';

// A stand-in bundle: its batch handler runs in the pool's worker threads.
const BUNDLE = `
import { threadId } from 'node:worker_threads';
let running = 0;
let most = 0;
export function createBatchHandler(config) {
  return async (event) => {
    running++;
    most = Math.max(most, running);
    try {
      if (event.exit !== undefined) process.exit(event.exit);
      if (event.fail) {
        const error = new Error('version 9 of "lin" does not exist');
        error.name = 'NotFoundError';
        throw error;
      }
      await new Promise((resolve) => setTimeout(resolve, event.wait ?? 0));
      event.touched = true;
      return { echo: event, model: config.model, threadId, most, keep: undefined, at: new Date(0) };
    } finally {
      running--;
    }
  };
}
`;

const CONFIG = {
  bucket: 'b',
  model: 'lin',
  alias: 'live',
  aliasCheckSeconds: 60,
  fastPath: 'auto',
  limits: { maxInstances: 10, maxElements: 100, maxBodyBytes: 1000 },
} as InferenceConfig;

let dir: string;
let bundle: string;
const pools: LambdaPool[] = [];
const pool = (size: number, file = bundle) => {
  const created = new LambdaPool({ bundle: file, config: CONFIG, size });
  pools.push(created);
  return created;
};

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'aiaas-lambda-pool-'));
  writeFileSync(join(dir, 'bundle.mjs'), BUNDLE);
  writeFileSync(join(dir, 'empty.mjs'), 'export const nothing = 1;\n');
  bundle = pathToFileURL(join(dir, 'bundle.mjs')).href;
});

afterAll(async () => {
  await Promise.all(pools.map((p) => p.close()));
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('LambdaPool: warm Lambda execution environments in worker threads', () => {
  it('hands the handler a parse of the JSON text and gives back its output as JSON text', async () => {
    const input = '{"Items":[{"index":0,"row":{"a":"1"}}],"BatchInput":{"model":"lin"}}';
    const output = JSON.parse(await pool(1).invoke(input));
    // The handler's change to its event is its own; undefined fields and dates read as JSON writes them.
    expect(output.echo).toEqual({ ...JSON.parse(input), touched: true });
    expect(output.model).toBe('lin');
    expect('keep' in output).toBe(false);
    expect(output.at).toBe('1970-01-01T00:00:00.000Z');
  });

  it('runs at most `size` environments, each one call at a time, and keeps them warm', async () => {
    const two = pool(2);
    const outputs = await Promise.all(
      Array.from({ length: 12 }, () => two.invoke('{"wait":20}').then((t) => JSON.parse(t))),
    );
    const threads = new Set(outputs.map((o) => o.threadId));
    expect(threads.size).toBe(2);
    expect(Math.max(...outputs.map((o) => o.most))).toBe(1);
    const again = JSON.parse(await two.invoke('{}'));
    expect(threads.has(again.threadId)).toBe(true);
  });

  it("reports a thrown error as Lambda does: its errorType as the error's name, and its message", async () => {
    const error = await pool(1)
      .invoke('{"fail":true}')
      .catch((e: Error) => e);
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).name).toBe('NotFoundError');
    expect((error as Error).message).toBe('version 9 of "lin" does not exist');
  });

  it('fails the call of an environment that exits with Runtime.ExitError, and starts a fresh one for the next', async () => {
    const one = pool(1);
    const first = JSON.parse(await one.invoke('{}'));
    const error = await one.invoke('{"exit":3}').catch((e: Error) => e);
    expect((error as Error).name).toBe('Runtime.ExitError');
    expect((error as Error).message).toContain('exited with code 3');
    const next = JSON.parse(await one.invoke('{}'));
    expect(next.threadId).not.toBe(first.threadId);
  });

  it('names the bundle when it has no batch handler', async () => {
    const error = await pool(1, pathToFileURL(join(dir, 'empty.mjs')).href)
      .invoke('{}')
      .catch((e: Error) => e);
    expect((error as Error).message).toMatch(/empty\.mjs exports no createBatchHandler/);
  });

  it('does not keep the process alive once its calls are done', () => {
    const script = `
      import { LambdaPool } from ${JSON.stringify(pathToFileURL(join(process.cwd(), 'scripts/local/batch/lambda-pool.ts')).href)};
      const pool = new LambdaPool({ bundle: ${JSON.stringify(bundle)}, config: ${JSON.stringify(CONFIG)}, size: 2 });
      const outputs = await Promise.all([pool.invoke('{"wait":50}'), pool.invoke('{"wait":50}')]);
      console.log(outputs.length);
    `;
    const run = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(run.error).toBeUndefined();
    expect(run.stderr).toBe('');
    expect(run.stdout.trim()).toBe('2');
    expect(run.status).toBe(0);
  });
});
