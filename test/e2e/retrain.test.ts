/**
 * Retraining through the local stack: data in the registry → a new version → the promotion gate →
 * the function serving it without a restart, and back again by rollback. The s3rver is real; the
 * function is the built bundle behind the local function-URL server.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from '../../cli/paths.js';
import { loadManifest, type ModelSpec } from '../../functions/shared/manifest.js';
import type { TfRuntime } from '../../functions/shared/runtime/types.js';
import { retrain } from '../../functions/shared/training/retrain.js';
import { generateDiabetesCsv } from '../../functions/shared/training/synthetic.js';
import { createRuntime } from '../../layers/tfjs-runtime/runtime.js';
import { eventually, startTestStack, type TestStack } from '../support/stack.js';

let stack: TestStack;
let runtime: TfRuntime;
const base = loadManifest(join(ROOT, 'models/manifest.json')).models.find((m) => m.name === 'diabetes')!;
/** The manifest's diabetes model, trained briefly so the test stays fast. */
function spec(
  fit: Partial<NonNullable<ModelSpec['definition']>['fit']> = {},
  gate = base.definition!.gate,
): ModelSpec {
  return {
    ...base,
    definition: { ...base.definition!, fit: { ...base.definition!.fit, epochs: 15, ...fit }, gate },
  };
}
const ROW = [6, 148, 72, 35, 0, 33.6, 0.627, 50];
const served = async () => {
  const res = await stack.call('POST', '/v1/models/diabetes:predict', JSON.stringify({ instances: [ROW] }));
  expect(res.status).toBe(200);
  return Number(res.headers.get('x-aiaas-model-version'));
};

beforeAll(async () => {
  stack = await startTestStack({ aliasCheckSeconds: 1 });
  runtime = await createRuntime('wasm');
  await stack.s3.registry.putDataset(
    'diabetes',
    'synthetic.csv',
    new TextEncoder().encode(generateDiabetesCsv(500)),
  );
});
afterAll(async () => {
  await stack?.close();
});

describe('retraining through the local stack', () => {
  it('publishes and promotes a first version, then publishes nothing for unchanged data and settings', async () => {
    const registry = stack.s3.registry;
    const first = await retrain({ registry, spec: spec(), runtime });
    expect(first.status).toBe('promoted');
    if (first.status === 'unchanged') throw new Error('unreachable');
    expect(first.metrics).toHaveProperty('val_accuracy');
    const meta = await registry.getMetadata('diabetes', first.version);
    expect(meta.metrics).toMatchObject({ loss: expect.any(Number), val_loss: expect.any(Number) });
    expect(meta.training).toMatchObject({ dataFingerprint: expect.stringMatching(/^[0-9a-f]{64}$/) });
    expect(meta.report?.lossCurve).toMatch(/training-report\.svg$/);
    expect(await served()).toBe(first.version);

    const again = await retrain({ registry, spec: spec(), runtime });
    expect(again.status).toBe('unchanged');
    expect(await registry.listVersions('diabetes')).toEqual([first.version]);
  });

  it('refuses a worse model at the gate (published, alias untouched) and promotes a better one, served without a restart', async () => {
    const registry = stack.s3.registry;
    const live = (await registry.getAlias('diabetes', 'live'))!.version;
    const strict = { metric: 'val_loss', minImprovement: 0.001, maxRegression: 0 };
    const worse = await retrain({
      registry,
      spec: spec({ epochs: 1, seed: 7 }, strict),
      runtime,
      force: true,
    });
    expect(worse.status).toBe('published');
    if (worse.status === 'unchanged') throw new Error('unreachable');
    expect(worse.decision.promoted).toBe(false);
    expect(worse.decision.reason).toMatch(/gate refused/);
    expect((await registry.getAlias('diabetes', 'live'))!.version).toBe(live);
    expect((await registry.getMetadata('diabetes', worse.version)).training).toMatchObject({
      gate: { pass: false },
    });

    const better = await retrain({ registry, spec: spec({ epochs: 60 }, strict), runtime, force: true });
    expect(better.status).toBe('promoted');
    if (better.status === 'unchanged') throw new Error('unreachable');
    await eventually(async () => expect(await served()).toBe(better.version));
    const last = (await registry.history('diabetes', 'live')).at(-1)!;
    expect(last).toMatchObject({ kind: 'retrain', from: live, to: better.version });
    expect(last.details).toMatchObject({ gate: expect.objectContaining({ pass: true }) });
  });

  it('two runs at once publish two intact versions and leave the alias consistent', async () => {
    const registry = stack.s3.registry;
    const before = await registry.listVersions('diabetes');
    const [a, b] = await Promise.all([
      retrain({ registry, spec: spec({ seed: 1 }), runtime, force: true, promote: 'always' }),
      retrain({ registry, spec: spec({ seed: 2 }), runtime, force: true, promote: 'always' }),
    ]);
    const made = [a, b].map((r) => r.version);
    expect(new Set(made).size).toBe(2);
    expect(await registry.listVersions('diabetes')).toEqual([...before, ...made].sort((x, y) => x - y));
    for (const v of made) await registry.readVersion('diabetes', v); // sha256-verified, complete
    const alias = (await registry.getAlias('diabetes', 'live'))!.version;
    expect(made).toContain(alias);
    const history = await registry.history('diabetes', 'live');
    expect(history.at(-1)!.to).toBe(alias);
  });

  it('rolls back, and the function serves the previous version again', async () => {
    const registry = stack.s3.registry;
    const current = (await registry.getAlias('diabetes', 'live'))!.version;
    const event = await registry.rollback('diabetes', 'live', { why: 'test' });
    expect(event.from).toBe(current);
    await eventually(async () => expect(await served()).toBe(event.to));
    expect((await registry.history('diabetes', 'live')).map((e) => e.kind)).toContain('rollback');
  });
});
