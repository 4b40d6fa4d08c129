/**
 * One look at a rollout (functions/shared/rollout/tick.ts) over an in-memory registry, with figures
 * and the clock injected: nothing without a canary; a wait writes nothing; steps, promotion and
 * abort are 'rollout' moves whose details hold the numbers; a change made meanwhile wins. Also the
 * rollout function's configuration, and the retraining gate's rollout mode (training/promote.ts).
 */

import type { GetMetricDataCommand, GetMetricDataCommandOutput } from '@aws-sdk/client-cloudwatch';
import { describe, expect, it } from 'vitest';
import { configFromEnv, createRolloutHandler } from '../../functions/rollout/handler.js';
import { ConfigurationError } from '../../functions/shared/errors.js';
import { parseManifest, type RolloutPlan } from '../../functions/shared/manifest.js';
import { ModelRegistry } from '../../functions/shared/registry/registry.js';
import type { FiguresSource, VersionFigures } from '../../functions/shared/rollout/figures.js';
import { type RolloutTick, rolloutTick } from '../../functions/shared/rollout/tick.js';
import type { GateDecision } from '../../functions/shared/training/gate.js';
import { promoteVersion } from '../../functions/shared/training/promote.js';
import { retrain } from '../../functions/shared/training/retrain.js';
import { generateDiabetesCsv, PIMA_HEADER } from '../../functions/shared/training/synthetic.js';
import { createRuntime } from '../../layers/tfjs-runtime/runtime.js';
import { MemoryObjectStore } from '../support/memory-store.js';
import { PUBLISH_INPUT, versionFiles } from '../support/versions.js';

const plan: RolloutPlan = {
  steps: [10, 50, 100],
  stepMinutes: 5,
  minRequests: 100,
  maxErrorRateIncrease: 0.01,
  maxP99Ratio: 1.5,
  schedule: 'rate(1 minute)',
};

async function setUp() {
  const registry = new ModelRegistry(new MemoryObjectStore(), { actor: 'tester' });
  for (const tag of ['a', 'b', 'c']) await registry.publish('m', versionFiles(tag), PUBLISH_INPUT);
  await registry.setAlias('m', 'live', 1);
  return registry;
}

/** Figures a test sets: what the versions served since the window's start. */
class Figures implements FiguresSource {
  live = 0;
  canary = 0;
  canaryErrors = 0;
  asked: [Date, Date][] = [];
  onRead?: () => Promise<void>;
  async figures(_model: string, since: Date, until: Date): Promise<VersionFigures[]> {
    this.asked.push([since, until]);
    await this.onRead?.();
    return [
      { version: 1, role: 'live', requests: this.live, clientErrors: 0, serverErrors: 0, p50Ms: 1, p99Ms: 4 },
      {
        version: 2,
        role: 'canary',
        requests: this.canary,
        clientErrors: 0,
        serverErrors: this.canaryErrors,
        p50Ms: 1,
        p99Ms: 5,
      },
    ];
  }
}

describe('a rollout tick', () => {
  it('does nothing without a canary, or without an alias', async () => {
    const registry = await setUp();
    const figures = new Figures();
    const tick = await rolloutTick({ registry, model: 'm', alias: 'live', plan, figures });
    expect(tick).toMatchObject({ action: 'idle', reason: 'no canary beside v1' });
    expect(await rolloutTick({ registry, model: 'm', alias: 'beta', plan, figures })).toMatchObject({
      action: 'idle',
      reason: 'the alias is not set',
    });
    expect(figures.asked).toHaveLength(0);
  });

  it('promotes a healthy canary step by step, each move recorded with its numbers', async () => {
    const registry = await setUp();
    const start = await registry.changeRoutes('m', 'live', { op: 'set-canary', version: 2, weight: 10 });
    let clock = Date.parse(start.at);
    const now = () => new Date(clock);
    const figures = new Figures();
    const look = async () =>
      (await rolloutTick({ registry, model: 'm', alias: 'live', plan, figures, now })) as Extract<
        RolloutTick,
        { details: unknown }
      >;

    clock += 60_000;
    figures.live = 900;
    figures.canary = 100;
    expect((await look()).action).toBe('wait'); // one minute of five
    const writes = registry.store as MemoryObjectStore;
    const puts = writes.calls.put;
    expect((await look()).action).toBe('wait');
    expect(writes.calls.put).toBe(puts); // a wait writes nothing

    clock += 5 * 60_000;
    const step = await look();
    expect(step).toMatchObject({
      action: 'step',
      event: { kind: 'rollout', who: 'aiaas-rollout', canary: { weight: 50 } },
    });
    expect(figures.asked.at(-1)).toEqual([new Date(start.at), now()]);
    expect(step.event?.details).toMatchObject({
      decision: 'step',
      step: 10,
      next: 50,
      canary: { version: 2, requests: 100, errors: 0 },
      live: { version: 1, requests: 900 },
    });

    // The new step starts over: its window begins when the weight was set.
    figures.canary = 20;
    clock += 6 * 60_000;
    expect(await look()).toMatchObject({ action: 'wait', reason: /too few requests to judge \(20 of 100\)/ });
    expect(figures.asked.at(-1)![0]).toEqual(new Date(step.event!.at));
    figures.canary = 500;
    const promoted = await look();
    expect(promoted).toMatchObject({ action: 'promote', event: { kind: 'rollout', from: 1, to: 2 } });
    expect((await registry.getAlias('m', 'live'))?.canary).toBeUndefined();
    expect((await look()).action).toBe('idle');
    const history = await registry.history('m', 'live');
    expect(history.map((e) => `${e.kind} ${e.to} ${e.canary?.weight ?? '-'}`)).toEqual([
      'promote 1 -',
      'canary 1 10',
      'rollout 1 50',
      'rollout 2 -',
    ]);
  });

  it('aborts a failing canary, and the history says why with the numbers', async () => {
    const registry = await setUp();
    const start = await registry.changeRoutes('m', 'live', { op: 'set-canary', version: 2, weight: 10 });
    const figures = new Figures();
    figures.live = 300;
    figures.canary = 30;
    figures.canaryErrors = 12;
    const tick = await rolloutTick({
      registry,
      model: 'm',
      alias: 'live',
      plan,
      figures,
      now: () => new Date(Date.parse(start.at) + 30_000),
    });
    expect(tick.action).toBe('abort');
    const last = (await registry.history('m', 'live')).at(-1)!;
    expect(last).toMatchObject({ kind: 'rollout', from: 1, to: 1 });
    expect(last.canary).toBeUndefined();
    expect(last.why).toMatch(
      /canary v2 aborted at 10 %: 12 of 30 requests failed \(40\.0 %\) against live's 0\.0 %/,
    );
    expect(last.details).toMatchObject({
      decision: 'abort',
      canary: { requests: 30, errors: 12, errorRate: 0.4 },
    });
  });

  it('leaves a change made meanwhile standing, and says so', async () => {
    const registry = await setUp();
    const start = await registry.changeRoutes('m', 'live', { op: 'set-canary', version: 2, weight: 10 });
    const figures = new Figures();
    figures.live = 900;
    figures.canary = 100;
    // A person aborts the canary while the tick reads its figures.
    figures.onRead = async () => {
      await registry.changeRoutes('m', 'live', { op: 'abort-canary' });
    };
    const tick = await rolloutTick({
      registry,
      model: 'm',
      alias: 'live',
      plan,
      figures,
      now: () => new Date(Date.parse(start.at) + 10 * 60_000),
    });
    expect(tick).toMatchObject({
      action: 'conflict',
      reason: /stepped 10 → 50 %; not made: .*changed meanwhile/,
    });
    const history = await registry.history('m', 'live');
    expect(history.at(-1)).toMatchObject({ kind: 'canary', why: '' });
    expect(history.at(-1)!.canary).toBeUndefined();
  });
});

describe('the rollout function', () => {
  it("reads the pointer's versions from CloudWatch and aborts a failing canary; another model's event is refused", async () => {
    const registry = await setUp();
    await registry.changeRoutes('m', 'live', { op: 'set-canary', version: 2, weight: 10 });
    const sent: GetMetricDataCommand['input'][] = [];
    const cloudwatch = {
      async send(command: GetMetricDataCommand): Promise<GetMetricDataCommandOutput> {
        sent.push(command.input);
        return {
          $metadata: {},
          MetricDataResults: [
            { Id: 'v0_requests', Values: [500] },
            { Id: 'v1_requests', Values: [40] },
            { Id: 'v1_serverErrors', Values: [20] },
          ],
        };
      },
    };
    const logged: unknown[] = [];
    const logger = {
      info: (...args: unknown[]) => logged.push(args),
      error: (...args: unknown[]) => logged.push(args),
    };
    const handler = createRolloutHandler(
      {
        bucket: 'b',
        model: 'm',
        alias: 'live',
        spec: { ...parseManifest({ models: [{ name: 'm' }] }).models[0]!, rollout: plan },
      },
      { registry, cloudwatch, logger: logger as never },
    );
    await expect(handler({ model: 'other' })).rejects.toThrow(/rolls out "m", not "other"/);
    const tick = await handler({});
    expect(tick.action).toBe('abort');
    // It asked for the live v1 and the canary v2, by role.
    const asked = sent[0]!.MetricDataQueries!.map((q) => {
      const dims = Object.fromEntries(q.MetricStat!.Metric!.Dimensions!.map((d) => [d.Name, d.Value]));
      return `${dims.version}/${dims.role}`;
    });
    expect(new Set(asked)).toEqual(new Set(['1/live', '2/canary']));
    expect((await registry.history('m', 'live')).at(-1)).toMatchObject({
      kind: 'rollout',
      who: 'aiaas-rollout',
    });
    expect(logged.at(-1)).toMatchObject(['rollout abort', { action: 'abort', model: 'm' }]);
  });
});

describe("the rollout function's configuration", () => {
  const spec = { name: 'm', rollout: { steps: [25, 100] } };
  const env = (s: unknown) => ({ AIAAS_BUCKET: 'b', AIAAS_MODEL: 'm', AIAAS_MODEL_SPEC: JSON.stringify(s) });

  it('reads the plan from the manifest entry, the alias from AIAAS_ALIAS or the entry', () => {
    expect(configFromEnv(env(spec))).toMatchObject({
      model: 'm',
      alias: 'live',
      spec: { rollout: { steps: [25, 100] } },
    });
    expect(configFromEnv({ ...env(spec), AIAAS_ALIAS: 'beta' }).alias).toBe('beta');
  });

  it('refuses an entry without a plan, for another model, or not JSON, naming the variable', () => {
    expect(() => configFromEnv(env({ name: 'm' }))).toThrow(
      /AIAAS_MODEL_SPEC: model "m" has no "rollout" plan/,
    );
    expect(() => configFromEnv(env({ ...spec, name: 'n' }))).toThrow(/describes "n", but AIAAS_MODEL is "m"/);
    expect(() => configFromEnv({ ...env(spec), AIAAS_MODEL_SPEC: '{' })).toThrow(ConfigurationError);
    expect(() => configFromEnv(env({ ...spec, rollout: { steps: [50, 10] } }))).toThrow(
      /field "rollout.steps": must be strictly ascending/,
    );
  });
});

describe("the retraining gate's rollout mode", () => {
  const gate = (pass: boolean): GateDecision => ({
    pass,
    reason: pass ? 'val_accuracy 0.8 vs 0.7' : 'worse',
    candidate: 0.8,
    baseline: 0.7,
    delta: 0.1,
    improvement: 0.1,
    thresholds: {
      metric: 'val_accuracy',
      minImprovement: 0,
      maxRegression: 0,
      required: 0,
      lowerIsBetter: false,
    },
  });
  const request = (
    registry: ModelRegistry,
    overrides: Partial<Parameters<typeof promoteVersion>[0]> = {},
  ) => ({
    registry,
    model: 'm',
    alias: 'live',
    mode: 'gate' as const,
    version: 2,
    from: 1,
    gate: gate(true),
    who: 'retrain',
    metrics: { val_accuracy: 0.8 },
    baseline: undefined,
    dataFingerprint: 'f',
    reportKey: 'r',
    rollout: { weight: 10, memoryMiB: 1024 },
    ...overrides,
  });

  it('makes a passing version the canary at the first step instead of promoting it', async () => {
    const registry = await setUp();
    const decision = await promoteVersion(request(registry));
    expect(decision).toMatchObject({ promoted: false, canary: { version: 2, weight: 10 }, from: 1, to: 1 });
    const last = (await registry.history('m', 'live')).at(-1)!;
    expect(last).toMatchObject({ kind: 'retrain', from: 1, to: 1, canary: { version: 2, weight: 10 } });
    expect(last.why).toMatch(/rollout started: canary at 10 %/);
    expect(last.details).toMatchObject({ onPass: 'rollout', gate: { pass: true } });
  });

  it('promotes directly when no version is live yet, and starts nothing when the gate fails', async () => {
    const registry = new ModelRegistry(new MemoryObjectStore());
    for (const tag of ['a', 'b']) await registry.publish('m', versionFiles(tag), PUBLISH_INPUT);
    expect(await promoteVersion(request(registry, { from: null }))).toMatchObject({ promoted: true, to: 2 });
    const refused = await promoteVersion(request(registry, { version: 1, from: 2, gate: gate(false) }));
    expect(refused).toMatchObject({ promoted: false, reason: 'gate refused: worse' });
    expect((await registry.getAlias('m', 'live'))?.canary).toBeUndefined();
  });

  it('publishes but starts no canary that does not fit in memory, and says why', async () => {
    const registry = await setUp();
    const decision = await promoteVersion(request(registry, { rollout: { weight: 10, memoryMiB: 192 } }));
    expect(decision.promoted).toBe(false);
    expect(decision.canary).toBeUndefined();
    expect(decision.reason).toMatch(
      /gate passed, but m@live: refusing the canary: .*more than the function's 192 MiB/,
    );
  });

  it('is what retrain() does with onPass "rollout": the first version is promoted, the next one becomes the canary', async () => {
    const spec = parseManifest({
      models: [
        {
          name: 'diabetes',
          definition: {
            features: PIMA_HEADER.filter((c) => c !== 'outcome'),
            label: 'outcome',
            layers: [{ type: 'dense', units: 1, activation: 'sigmoid' }],
            compile: {},
            fit: { epochs: 2 },
            // Any candidate passes: the point is what a pass does.
            gate: { metric: 'val_accuracy', maxRegression: 1, onPass: 'rollout' },
          },
          rollout: { steps: [20, 100] },
        },
      ],
    }).models[0]!;
    const registry = new ModelRegistry(new MemoryObjectStore());
    await registry.putDataset('diabetes', 'a.csv', new TextEncoder().encode(generateDiabetesCsv(200)));
    const runtime = await createRuntime('cpu');
    const first = await retrain({ registry, spec, runtime });
    expect(first).toMatchObject({ status: 'promoted', version: 1 });
    const second = await retrain({ registry, spec, runtime, force: true });
    expect(second).toMatchObject({ status: 'published', version: 2 });
    expect(second.status !== 'unchanged' && second.decision.canary).toEqual({ version: 2, weight: 20 });
    const pointer = await registry.getAlias('diabetes', 'live');
    expect([pointer?.version, pointer?.canary?.version, pointer?.canary?.weight]).toEqual([1, 2, 20]);
    expect(
      (await registry.history('diabetes')).map((e) => `${e.kind} ${e.to} ${e.canary?.weight ?? '-'}`),
    ).toEqual(['retrain 1 -', 'retrain 1 20']);
  }, 60_000);

  it('is refused by the manifest without a rollout plan', () => {
    const definition = {
      features: ['a'],
      label: 'b',
      layers: [{ type: 'dense', units: 1 }],
      compile: {},
      fit: { epochs: 1 },
      gate: { onPass: 'rollout' },
    };
    expect(() => parseManifest({ models: [{ name: 'm', definition }] })).toThrow(
      /model "m": field "definition.gate.onPass": "rollout" needs a "rollout" plan/,
    );
    expect(parseManifest({ models: [{ name: 'm', definition, rollout: {} }] }).models[0]!.rollout).toEqual({
      steps: [10, 50, 100],
      stepMinutes: 10,
      minRequests: 100,
      maxErrorRateIncrease: 0.01,
      maxP99Ratio: 1.5,
      schedule: 'rate(1 minute)',
    });
  });
});
