/** The registry against a real S3-compatible server (s3rver on loopback), which enforces no conditions. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { filesToArtifacts } from '../../functions/shared/model/artifacts.js';
import { keys } from '../../functions/shared/registry/layout.js';
import { createRuntime } from '../../layers/tfjs-runtime/runtime.js';
import { type LocalS3, startLocalS3 } from '../../scripts/lib/local-stack.js';
import { publishLinear } from '../support/models.js';

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
