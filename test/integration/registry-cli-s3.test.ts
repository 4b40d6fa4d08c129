/**
 * The registry's maintenance paths against s3rver on loopback, through the module and the real CLI:
 * `aiaas gc` (LastModified as S3 lists it, real deletes), a damaged alias object, and an alias's
 * canary and shadow as `aiaas models` shows them.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collectGarbage, DEFAULT_GC_AGE_MS } from '../../functions/shared/registry/gc.js';
import { keys } from '../../functions/shared/registry/layout.js';
import { LOCAL_CREDENTIALS, type LocalS3, startLocalS3 } from '../../scripts/local/s3.js';
import { PUBLISH_INPUT, versionFiles } from '../support/versions.js';

let s3: LocalS3;
let dir: string;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'aiaas-gc-'));
  s3 = await startLocalS3({ directory: dir });
});
afterAll(async () => {
  await s3?.close();
  rmSync(dir, { recursive: true, force: true });
});

const files = (tag: string) => versionFiles(tag, new Uint8Array(64));
const input = PUBLISH_INPUT;

async function cli(...args: string[]) {
  const { stdout, stderr } = await promisify(execFile)(
    join(process.cwd(), 'node_modules/.bin/tsx'),
    ['cli/main.ts', ...args],
    {
      env: {
        PATH: process.env.PATH,
        AIAAS_S3_ENDPOINT: s3.endpoint,
        AIAAS_BUCKET: s3.bucket,
        AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId,
        AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey,
        AWS_REGION: 'us-east-1',
      },
      encoding: 'utf8',
      timeout: 60_000,
    },
  );
  return { stdout, stderr };
}

describe('aiaas gc on s3rver', () => {
  it('removes a killed publish once old enough, and nothing a reader or a later publish needs', async () => {
    const { registry } = s3;
    await registry.publish('gc', files('a'), input);
    await registry.setAlias('gc', 'live', 1);
    // A 52 MB publish killed half way, scaled down: its claim and a shard, no metadata.json.
    await registry.store.put(`${keys.claims('gc', 2)}dead.json`, '{}');
    await registry.store.put(keys.file('gc', 2, 'group1-shard1of2.bin'), new Uint8Array(4096));

    // The CLI, dry run by default: fresh leftovers are left alone, and a too-short age is raised.
    const fresh = await cli('gc', '--model', 'gc', '--older-than', '5m');
    expect(fresh.stdout).toMatch(/Nothing to remove .* older than 1 h/);
    expect(fresh.stderr).toMatch(/--older-than raised to 1 h/);

    const later = () => Date.now() + DEFAULT_GC_AGE_MS + 60_000;
    const dry = await collectGarbage(registry, { model: 'gc', now: later });
    expect(dry.items.filter((i) => i.kind === 'uncommitted').map((i) => [i.version, i.bytes])).toEqual([
      [2, 4096 + 2],
    ]);
    expect(await registry.store.list(keys.version('gc', 2))).toHaveLength(1);

    await collectGarbage(registry, { model: 'gc', now: later, apply: true });
    expect(await registry.store.list(keys.version('gc', 2))).toEqual([]);
    expect(await registry.store.list(keys.claims('gc', 2))).toEqual([]);
    expect(await registry.listVersions('gc')).toEqual([1]);
    await registry.readVersion('gc', 1);
    expect((await registry.getAlias('gc', 'live'))?.version).toBe(1);
    expect((await registry.history('gc')).map((e) => e.to)).toEqual([1]);
    // The number that never held a version is free again.
    expect((await registry.publish('gc', files('b'), input)).version).toBe(2);
    await registry.readVersion('gc', 2);
  });
});

describe('a damaged alias object on s3rver', () => {
  it('is shown as damaged by `aiaas models`, blocks no command, and `aiaas promote` repairs it', async () => {
    const { registry } = s3;
    await registry.publish('broken', files('a'), input);
    await registry.publish('broken', files('b'), input);
    await registry.setAlias('broken', 'live', 1);
    await registry.setAlias('broken', 'staging', 2);
    await registry.store.put(keys.alias('broken', 'live'), '{"version": 1, "se');

    const models = await cli('models');
    expect(models.stdout).toMatch(
      /broken\s+staging→v2 live→damaged: .*models\/broken\/aliases\/live\.json.* not valid JSON/,
    );
    expect(JSON.parse((await cli('models', '--json')).stdout)).toContainEqual({
      name: 'broken',
      aliases: { staging: 2 },
      damaged: { live: expect.stringContaining('not valid JSON') },
    });
    expect((await cli('versions', 'broken')).stdout).toMatch(/v2 .* staging/);
    expect((await cli('history', 'broken')).stdout).toMatch(/none → v1/);
    // The function's read still refuses it, naming the object.
    await expect(registry.getAlias('broken', 'live')).rejects.toThrow(/models\/broken\/aliases\/live\.json/);

    expect((await cli('promote', 'broken', '2', '--why', 'repair')).stdout).toMatch(/broken@live: v1 → v2/);
    expect((await registry.getAlias('broken', 'live'))?.version).toBe(2);
    expect((await cli('models')).stdout).toMatch(/broken\s+live→v2 staging→v2/);
  });
});

describe('an alias with a canary and a shadow on s3rver', () => {
  it('is shown by `aiaas models` beside the served version, `--json` keeping `aliases` as it was', async () => {
    const { registry } = s3;
    for (const tag of ['a', 'b', 'c', 'd']) await registry.publish('routed', files(tag), input);
    await registry.setAlias('routed', 'live', 2);
    await registry.setAlias('routed', 'staging', 1);
    const canary = await registry.changeRoutes('routed', 'live', {
      op: 'set-canary',
      version: 3,
      weight: 10,
    });
    const shadow = await registry.changeRoutes('routed', 'live', { op: 'set-shadow', version: 4, sample: 5 });

    expect((await cli('models')).stdout).toMatch(
      /routed\s+live→v2 \(canary v3 10%, shadow v4 5%\) staging→v1\n/,
    );
    // `aliases` is unchanged for scripts that read it; the routes come beside it, without the
    // pointer's shortcuts (file lists, inline bytes), and only for the aliases that have them.
    expect(JSON.parse((await cli('models', '--json')).stdout)).toContainEqual({
      name: 'routed',
      aliases: { live: 2, staging: 1 },
      routes: {
        live: {
          canary: { version: 3, weight: 10, since: canary.at },
          shadow: { version: 4, sample: 5, since: shadow.at },
        },
      },
    });

    // A route that is not well formed is no route (the function serves v2 alone): not shown.
    const pointer = JSON.parse(
      new TextDecoder().decode((await registry.store.get(keys.alias('routed', 'live')))?.body),
    );
    await registry.store.put(
      keys.alias('routed', 'live'),
      JSON.stringify({ ...pointer, canary: { ...pointer.canary, weight: 150 }, shadow: undefined }),
    );
    expect((await cli('models')).stdout).toMatch(/routed\s+live→v2 staging→v1\n/);
    expect(JSON.parse((await cli('models', '--json')).stdout)).toContainEqual({
      name: 'routed',
      aliases: { live: 2, staging: 1 },
    });
  });
});
