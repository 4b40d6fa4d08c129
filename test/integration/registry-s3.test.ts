/** The registry against a real S3-compatible server (s3rver on loopback), which enforces no conditions. */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { filesToArtifacts } from '../../functions/shared/model/artifacts.js';
import { keys } from '../../functions/shared/registry/layout.js';
import { ModelRegistry } from '../../functions/shared/registry/registry.js';
import { createS3Client, S3ObjectStore } from '../../functions/shared/registry/store.js';
import type { AliasEvent, AliasPointer, ArtifactFile } from '../../functions/shared/registry/types.js';
import { createRuntime } from '../../layers/tfjs-runtime/runtime.js';
import { LOCAL_CREDENTIALS, type LocalS3, startLocalS3 } from '../../scripts/local/s3.js';
import { startLossyProxy } from '../support/lossy-proxy.js';
import { publishLinear } from '../support/models.js';

const encoder = new TextEncoder();
const smallFiles = (tag: string): ArtifactFile[] => [
  { name: 'model.json', bytes: encoder.encode(JSON.stringify({ tag })) },
  { name: 'group1-shard1of1.bin', bytes: encoder.encode(`weights of ${tag}`) },
];
const smallInput = {
  format: 'layers-model',
  signature: { inputs: [], outputs: [] },
  metrics: {},
  source: { kind: 'publish' },
  parent: null,
} as const;

/** A registry on `endpoint` whose faults surface (no SDK retries), as a caller without retries sees them. */
function registryAt(endpoint: string, options: { settleMs?: number; maxAttempts?: number } = {}) {
  const { maxAttempts = 1, ...registryOptions } = options;
  const client = createS3Client({
    endpoint,
    credentials: LOCAL_CREDENTIALS,
    region: 'us-east-1',
    maxAttempts,
    requestTimeoutMs: 3_000,
  });
  return new ModelRegistry(new S3ObjectStore(client, s3.bucket, endpoint), {
    actor: 'tester',
    ...registryOptions,
  });
}

/** The history is one unbroken chain ending at the pointer. */
function expectChainEndsAtPointer(history: readonly AliasEvent[], pointer: AliasPointer | undefined) {
  for (const [i, event] of history.entries()) {
    expect(event.seq).toBeGreaterThan(i === 0 ? 0 : history[i - 1]!.seq);
    expect(event.from).toBe(i === 0 ? null : history[i - 1]!.to);
    expect(event.prev ?? null).toBe(i === 0 ? null : history[i - 1]!.id);
  }
  expect(pointer?.version).toBe(history.at(-1)?.to);
  expect(pointer?.eventId).toBe(history.at(-1)?.id);
}

let s3: LocalS3;
let dir: string;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'aiaas-registry-'));
  s3 = await startLocalS3({ directory: dir });
});
afterAll(async () => {
  await s3?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('registry on s3rver', () => {
  it('gives racing publishers distinct versions and racing promoters distinct history slots', async () => {
    const runtime = await createRuntime('cpu');
    const published = await Promise.all(
      Array.from({ length: 6 }, (_, i) => publishLinear(runtime, s3.registry, 'race', [i, i, i], i)),
    );
    const versions = published.map((m) => m.version).sort((a, b) => a - b);
    expect(new Set(versions).size).toBe(6);
    expect(await s3.registry.listVersions('race')).toEqual(versions);
    // Every version still loads with its own publisher's weights.
    for (const meta of published) {
      const { files } = await s3.registry.readVersion('race', meta.version);
      expect(filesToArtifacts(files).weightSpecs?.length).toBe(2);
    }

    await Promise.all(
      versions.slice(0, 4).map((v) => s3.registry.setAlias('race', 'live', v, { why: `race ${v}` })),
    );
    const history = await s3.registry.history('race', 'live');
    expect(history.map((e) => e.seq)).toEqual([1, 2, 3, 4]);
    expect(new Set(history.map((e) => e.to))).toEqual(new Set(versions.slice(0, 4)));
    expect((await s3.registry.getAlias('race', 'live'))?.version).toBe(history.at(-1)!.to);
  });

  it('answers an unchanged alias with a cheap 304 and a moved one with the new pointer', async () => {
    const runtime = await createRuntime('cpu');
    const v1 = await publishLinear(runtime, s3.registry, 'poll', [1, 1, 1], 0, { promote: true });
    const pointer = await s3.registry.getAlias('poll', 'live');
    expect(pointer?.version).toBe(v1.version);
    expect(await s3.registry.getAliasIfChanged('poll', 'live', pointer!.etag)).toBe('unchanged');
    const v2 = await publishLinear(runtime, s3.registry, 'poll', [2, 2, 2], 0, { promote: true });
    const moved = await s3.registry.getAliasIfChanged('poll', 'live', pointer!.etag);
    expect(moved !== 'unchanged' && moved?.version).toBe(v2.version);
  });

  it('keeps a half-published version invisible', async () => {
    const runtime = await createRuntime('cpu');
    const v1 = await publishLinear(runtime, s3.registry, 'half', [1, 1, 1], 0);
    // A publisher killed after its shard and before metadata.json:
    await s3.registry.store.put(
      keys.file('half', v1.version + 1, 'group1-shard1of1.bin'),
      new Uint8Array(16),
    );
    expect(await s3.registry.listVersions('half')).toEqual([v1.version]);
    await expect(s3.registry.setAlias('half', 'live', v1.version + 1)).rejects.toThrow(/no version/);
  });
});

describe('registry on s3rver under faults', () => {
  it('a mover killed with SIGKILL between winning its slot and writing the pointer blocks no one, and history shows only moves made', async () => {
    for (let i = 0; i < 3; i++) await s3.registry.publish('killed', smallFiles(`v${i + 1}`), smallInput);
    await s3.registry.setAlias('killed', 'live', 1);

    // One process (node with tsx as its loader, not the tsx CLI, which would run the script in a
    // grandchild that SIGKILL would leave behind).
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', 'test/support/die-mid-move.ts', s3.endpoint, s3.bucket, 'killed', '2'],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const exited = new Promise((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
    await new Promise<void>((resolve, reject) => {
      child.stdout!.on('data', (chunk: Buffer) => chunk.toString().includes('READY') && resolve());
      child.on('exit', () => reject(new Error('the child exited before its move reached the pointer')));
    });
    child.kill('SIGKILL');
    expect(await exited).toBe('SIGKILL');

    // The dead move won slot 2, but v1 is still served: history shows only the move that happened.
    expect((await s3.registry.getAlias('killed', 'live'))?.version).toBe(1);
    expect((await s3.registry.history('killed')).map((e) => `${e.from}->${e.to}`)).toEqual(['null->1']);
    expect(
      (await s3.registry.unfinishedMoves('killed')).map((e) => `${e.from}->${e.to} by ${e.who}`),
    ).toEqual(['1->2 by doomed']);

    // The next mover finishes the dead move (its pointer) and then makes its own, well within
    // its retry budget (the old code gave up after 40 attempts).
    const moved = await s3.registry.setAlias('killed', 'live', 3, { why: 'after the crash' });
    expect([moved.from, moved.to]).toEqual([2, 3]);
    const history = await s3.registry.history('killed');
    expect(history.map((e) => `${e.from}->${e.to}`)).toEqual(['null->1', '1->2', '2->3']);
    expectChainEndsAtPointer(history, await s3.registry.getAlias('killed', 'live'));
    expect(await s3.registry.unfinishedMoves('killed')).toEqual([]);
  });

  it('through a proxy losing 8% of S3 traffic, every move in the history happened and history and pointer agree', async () => {
    const proxy = await startLossyProxy(s3.endpoint, { seed: 16, lossRate: 0 });
    try {
      const lossy = registryAt(proxy.endpoint, { settleMs: 300 });
      for (let i = 0; i < 4; i++) await lossy.publish('lossy', smallFiles(`v${i + 1}`), smallInput);
      await lossy.setAlias('lossy', 'live', 1);
      proxy.lossRate = 0.08;

      // Publishes through the faults: whatever commits is unique and intact.
      const publishes = await Promise.allSettled(
        Array.from({ length: 6 }, (_, i) => lossy.publish('lossy', smallFiles(`lossy${i}`), smallInput)),
      );
      // Three movers, 12 moves each: promotions and rollbacks, errors expected and ignored.
      let failures = 0;
      let seed = 7;
      const pick = () => {
        seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
        return seed >>> 8;
      };
      await Promise.all(
        [0, 1, 2].map(async () => {
          for (let i = 0; i < 12; i++) {
            const roll = pick();
            try {
              if (roll % 4 === 0) await lossy.rollback('lossy', 'live', { why: 'lossy rollback' });
              else await lossy.setAlias('lossy', 'live', 1 + (roll % 4), { why: 'lossy promote' });
            } catch {
              failures++;
            }
          }
        }),
      );
      expect(proxy.counts.lostBefore + proxy.counts.lostAfter).toBeGreaterThan(10);
      expect(failures).toBeGreaterThan(0);

      // Loss off. Right after the storm, and after one more move (which finishes or drops whatever
      // was left unfinished): history and pointer agree, and every move shown was written to the
      // pointer at some point (the proxy saw S3 accept it).
      proxy.lossRate = 0;
      const served = () =>
        new Set(proxy.pointerWrites.map((body) => (JSON.parse(body) as AliasPointer).eventId));
      const stormed = await lossy.history('lossy');
      expectChainEndsAtPointer(stormed, await lossy.getAlias('lossy', 'live'));
      expect(stormed.filter((e) => !served().has(e.id))).toEqual([]);
      await lossy.setAlias('lossy', 'live', 2, { why: 'after the storm' });
      const history = await lossy.history('lossy');
      expectChainEndsAtPointer(history, await lossy.getAlias('lossy', 'live'));
      expect(history.filter((e) => !served().has(e.id))).toEqual([]);
      expect(history.slice(0, stormed.length)).toEqual(stormed);
      expect(await lossy.unfinishedMoves('lossy')).toEqual([]);
      // A rollback still walks back along moves that happened: to the version served before the
      // current one, replaying the history (a rollback undoes a step; a move that left the served
      // version as it was, such as a re-promote, is no step).
      const steps: number[] = [];
      for (const e of history) {
        if (e.kind === 'rollback') steps.pop();
        else if (e.to !== e.from) steps.push(e.to);
      }
      const back = await lossy.rollback('lossy', 'live');
      expect(back.to).toBe(steps.at(-2));

      const committed = await lossy.listVersions('lossy');
      expect(new Set(committed).size).toBe(committed.length);
      for (const outcome of publishes) {
        if (outcome.status === 'fulfilled') expect(committed).toContain(outcome.value.version);
      }
      for (const version of committed) await lossy.readVersion('lossy', version); // verified by sha256
    } finally {
      await proxy.close();
    }
  });

  it('sends on the wire the conditional headers the IAM policy requires of every registry write', async () => {
    const proxy = await startLossyProxy(s3.endpoint, { seed: 1, lossRate: 0 });
    try {
      // Nothing is lost here: a request s3rver is slow to answer is retried, as the CLI's would be.
      const registry = registryAt(proxy.endpoint, { maxAttempts: 3 });
      const published = await Promise.all(
        [0, 1, 2].map((i) => registry.publish('wire', smallFiles(`w${i}`), smallInput)),
      );
      await registry.putReport('wire', published[0]!.version, 'curve.svg', '<svg/>', 'image/svg+xml');
      await Promise.all(published.map((m) => registry.setAlias('wire', 'live', m.version)));
      await registry.rollback('wire');
      const pointer = keys.alias('wire', 'live');
      expect(proxy.puts.length).toBeGreaterThan(15);
      for (const put of proxy.puts) {
        if (put.key === pointer) expect(put.ifMatch ?? put.ifNoneMatch, put.key).toBeDefined();
        else expect(put.ifNoneMatch, put.key).toBe('*');
      }
      expect(proxy.puts.filter((p) => p.key === pointer && p.ifMatch)).not.toHaveLength(0);
    } finally {
      await proxy.close();
    }
  });
});
