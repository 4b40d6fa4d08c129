/**
 * Rollouts against the real local stack (s3rver + the function-URL server on the built bundle):
 * - the CLI (`bin/aiaas.mjs`) starts, steps, promotes and aborts canaries and shadows, each move
 *   in `aiaas history`, refuses bad input and a canary that does not fit in memory;
 * - the rollout module (what the rollout function runs), reading the local stack's own per-version
 *   figures with an injected clock while traffic is sent to the stack: a canary that fails on part
 *   of the input (it refuses negative numbers with a 400, or its computation throws on them: a 500) is
 *   aborted and the history says why; a healthy one is promoted step by step, and the function then
 *   answers from it.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeStatus, rolloutStatus } from '../../cli/rollout.js';
import type { RolloutPlan } from '../../functions/shared/manifest.js';
import { artifactsToFiles, captureIOHandler, signatureOf } from '../../functions/shared/model/artifacts.js';
import { LocalFigures } from '../../functions/shared/rollout/local.js';
import { rolloutTick } from '../../functions/shared/rollout/tick.js';
import type { TfRuntime } from '../../functions/shared/runtime/types.js';
import { createRuntime } from '../../layers/tfjs-runtime/runtime.js';
import { LOCAL_CREDENTIALS } from '../../scripts/local/s3.js';
import { type CliResult, runCli } from '../support/cli.js';
import { publishLinear } from '../support/models.js';
import { eventually, startTestStack, type TestStack } from '../support/stack.js';

let stack: TestStack;
let runtime: TfRuntime;
let work: string;

function aiaas(...args: string[]): Promise<CliResult> {
  return runCli(
    {
      AIAAS_S3_ENDPOINT: stack.s3.endpoint,
      AIAAS_BUCKET: stack.s3.bucket,
      AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey,
      AWS_REGION: 'us-east-1',
      AIAAS_ACTOR: 'rollout-test',
      AIAAS_MANIFEST: join(work, 'manifest.json'),
    },
    args,
  );
}

/**
 * A model on 3 inputs that feed an Embedding of 10 entries: it answers for ids 0-9 like any model,
 * and refuses a negative input (400), which a linear model on the same inputs answers. With
 * `computed`, the ids are computed by a layer first (an identity Dense): nothing tells which
 * inputs are valid before tfjs runs, and its gather throws on a negative id: a 500.
 */
async function publishIdsOnly(model: string, options: { computed?: boolean } = {}) {
  const { layers, tf } = runtime;
  const computing = layers.layers.dense({ units: 3, inputShape: [3] });
  const net = layers.sequential({
    layers: [
      ...(options.computed ? [computing] : []),
      layers.layers.embedding({ inputDim: 10, outputDim: 1, inputLength: 3 }),
      layers.layers.flatten(),
      layers.layers.dense({ units: 1 }),
    ],
  });
  if (options.computed) computing.setWeights([tf.eye(3), tf.zeros([3])]);
  const capture = captureIOHandler();
  await net.save(capture);
  const signature = signatureOf(runtime, net);
  net.dispose();
  expect(signature.inputs[0]!.vocabularySize).toBe(options.computed ? undefined : 10);
  return stack.s3.registry.publish(model, artifactsToFiles(capture.artifacts!), {
    format: 'layers-model',
    signature,
    metrics: {},
    source: { kind: 'publish', test: true },
    parent: null,
  });
}

/** Every answer of a model's traffic: which version gave it and its status. */
const answered = new Map<string, { version: number; status: number }[]>();

/** Sends `count` predict requests, `parallel` at a time; answers the versions that answered. */
async function traffic(model: string, count: number, instance: (i: number) => number[], parallel = 16) {
  const versions: number[] = [];
  const log = answered.get(model) ?? [];
  answered.set(model, log);
  let next = 0;
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (next < count) {
        const i = next++;
        const res = await fetch(`${stack.server.url}/v1/models/${model}:predict`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ instances: [instance(i)] }),
        });
        await res.arrayBuffer();
        versions.push(Number(res.headers.get('x-aiaas-model-version')));
        log.push({ version: versions.at(-1)!, status: res.status });
      }
    }),
  );
  return versions;
}

beforeAll(async () => {
  stack = await startTestStack({ aliasCheckSeconds: 1 });
  runtime = await createRuntime('cpu');
  work = mkdtempSync(join(tmpdir(), 'aiaas-rollout-'));
  writeFileSync(
    join(work, 'manifest.json'),
    JSON.stringify({
      models: [
        { name: 'clicanary', rollout: { steps: [10, 50, 100] } },
        // Less memory than any two versions need by the rule (192 MiB + 3 × their files).
        { name: 'cramped', memoryMiB: 128 },
      ],
    }),
  );
}, 120_000);
afterAll(async () => {
  await stack?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('aiaas canary and shadow', () => {
  it('start, step, promote and abort canaries and shadows, each move in the history', async () => {
    const registry = stack.s3.registry;
    await publishLinear(runtime, registry, 'clicanary', [1, 0, 0], 0, { promote: true });
    await publishLinear(runtime, registry, 'clicanary', [0, 1, 0], 0);
    await publishLinear(runtime, registry, 'clicanary', [0, 0, 1], 0);

    const ok = async (...args: string[]) => {
      const result = await aiaas(...args);
      expect(result.code, result.stderr).toBe(0);
      return result.stdout.trim();
    };
    expect(await ok('canary', 'clicanary', '2', '--weight', '10', '--why', 'try v2')).toBe(
      'clicanary@live: v1 (canary v2 10%) (history #2)',
    );
    expect(await ok('canary', 'clicanary', '--weight', '50')).toMatch(/v1 \(canary v2 50%\)/);
    expect(await ok('shadow', 'clicanary', '3', '--sample', '10')).toMatch(
      /v1 \(canary v2 50%, shadow v3 10%\)/,
    );
    expect(await ok('shadow', 'clicanary', '--stop')).toMatch(/: v1 \(canary v2 50%\)/);
    expect(await ok('canary', 'clicanary', '--abort')).toMatch(/: v1 \(history #6\)/);
    expect(await ok('canary', 'clicanary', '2', '--weight', '100')).toMatch(/v1 \(canary v2 100%\)/);
    // At 100 % every answer comes from the canary, without a restart.
    await eventually(async () => {
      expect(new Set(await traffic('clicanary', 20, () => [1, 2, 3]))).toEqual(new Set([2]));
    });
    expect(await ok('canary', 'clicanary', '--promote', '--why', 'v2 holds')).toMatch(/: v2 \(history #8\)/);

    const history = await ok('history', 'clicanary');
    const rows = history.split('\n').slice(1);
    expect(
      rows.map((r) =>
        r
          .split(/\s{2,}/)
          .slice(2, 4)
          .join(' | '),
      ),
    ).toEqual([
      'promote | none → v1',
      'canary | v1 (canary v2 10%)',
      'canary | v1 (canary v2 50%)',
      'shadow | v1 (canary v2 50%, shadow v3 10%)',
      'shadow | v1 (canary v2 50%), shadow v3 ended',
      'canary | v1, canary v2 ended',
      'canary | v1 (canary v2 100%)',
      'canary | v1 → v2',
    ]);
    expect(history).toMatch(/rollout-test\s+try v2/);
    expect(history).toMatch(/v2 holds/);
    const json = JSON.parse(await ok('history', 'clicanary', '--json'));
    expect(json.events[1]).toMatchObject({
      kind: 'canary',
      from: 1,
      to: 1,
      canary: { version: 2, weight: 10 },
    });
    // Rollback walks back through served versions: from v2 to v1, past the canary moves.
    expect(await ok('rollback', 'clicanary')).toMatch(/v2 → v1/);
  });

  it('refuses what makes no sense with one line and a non-zero exit, and a canary that does not fit in memory', async () => {
    const registry = stack.s3.registry;
    await publishLinear(runtime, registry, 'cramped', [1, 0, 0], 0, { promote: true });
    await publishLinear(runtime, registry, 'cramped', [0, 1, 0], 0);
    const cases: [string[], number, RegExp][] = [
      [['canary', 'cramped', '2', '--weight', '150'], 1, /"150" is not a percentage/],
      [['canary', 'cramped', '2'], 2, /say one of: --weight/],
      [['canary', 'cramped', '2', '--promote'], 2, /acts on the running canary: leave out the version/],
      [['canary', 'cramped', '--promote'], 1, /cramped@live has no canary to promote/],
      [
        ['canary', 'cramped', '1', '--weight', '10'],
        2,
        /already serves v1: a canary must be another version/,
      ],
      [['shadow', 'cramped', '--sample', '5'], 2, /name the shadow version/],
      [['canary', 'cramped', '2', '--weight', '101'], 1, /"101" is not a percentage/],
      [['canary', 'cramped', '2', '--weight', '-1'], 1, /"-1" is not a percentage/],
      [['canary', 'cramped', '2', '--weight', 'NaN'], 1, /"NaN" is not a percentage/],
      [['canary', 'cramped', '2', '--weight', '10%'], 1, /"10%" is not a percentage/],
      [['canary', 'cramped', '2', '--weight', '0x10'], 1, /"0x10" is not a percentage/],
      [['shadow', 'cramped', '2', '--sample', 'Infinity'], 1, /"Infinity" is not a percentage/],
      [['canary', 'cramped', '0', '--weight', '10'], 1, /Invalid version "0"/],
      [['canary', 'cramped', '9', '--weight', '10'], 1, /Model "cramped" has no version 9/],
      [['canary', 'nosuchmodel', '2', '--weight', '10'], 1, /Model "nosuchmodel" has no version 2/],
      [['canary', 'nosuchmodel', '--weight', '10'], 1, /nosuchmodel@live serves no version yet/],
      [['rollout', 'status', 'cramped', '--since', 'yesterday'], 1, /"yesterday" is not a duration/],
      [
        ['canary', 'cramped', '2', '--weight', '10'],
        2,
        /refusing the canary: live v1 \(0\.0 MiB\), canary v2 \(0\.0 MiB\) need 193 MiB together .*more than the function's 128 MiB; raise the model's memoryMiB/,
      ],
    ];
    // Four CLI processes at a time: each case is independent and refused without a write.
    for (let at = 0; at < cases.length; at += 4) {
      const batch = cases.slice(at, at + 4);
      const results = await Promise.all(batch.map(([args]) => aiaas(...args)));
      batch.forEach(([args, code, message], i) => {
        const result = results[i]!;
        expect(result.code, `${args.join(' ')}: ${result.stderr}`).toBe(code);
        expect(result.stderr).toMatch(message);
        expect(result.stderr.trim().split('\n').length, result.stderr).toBe(1);
      });
    }
    expect((await registry.history('cramped')).length).toBe(1);
  });
});

describe('the rollout function against the local stack', () => {
  const figures = () => new LocalFigures(stack.server.url);

  it.each([
    { model: 'refusing', computed: false, status: 400 },
    { model: 'failing', computed: true, status: 500 },
  ])(
    'aborts a canary that answers $status on part of the input, and the history says why',
    async ({ model, computed, status: failedStatus }) => {
      const registry = stack.s3.registry;
      const plan: RolloutPlan = {
        steps: [50, 100],
        stepMinutes: 5,
        minRequests: 50,
        maxErrorRateIncrease: 0.01,
        maxP99Ratio: 1.5,
        schedule: 'rate(1 minute)',
      };
      await publishLinear(runtime, registry, model, [1, 1, 1], 0, { promote: true });
      const ids = await publishIdsOnly(model, { computed });
      await registry.changeRoutes(model, 'live', { op: 'set-canary', version: ids.version, weight: 50 });
      // The function picks the canary up within its re-check interval.
      await eventually(async () => {
        expect(await traffic(model, 10, () => [1, 2, 3])).toContain(ids.version);
      });
      // Half the inputs are negative: the live version answers them, the canary refuses or fails them.
      await traffic(model, 200, (i) => (i % 2 ? [1, 2, 3] : [-1, 2, 3]));
      const canaryFailures = answered.get(model)!.filter((a) => a.version === ids.version && a.status >= 400);
      expect(new Set(canaryFailures.map((a) => a.status))).toEqual(new Set([failedStatus]));
      // `aiaas rollout status` reads the stack's own counts: exactly what the callers saw.
      const status = await rolloutStatus({
        registry,
        model,
        alias: 'live',
        source: { name: 'local stack', figures: figures },
        plan,
      });
      const seen = (version: number, failed: boolean) =>
        answered.get(model)!.filter((a) => a.version === version && a.status >= 400 === failed).length;
      expect(
        status.versions.map((v) => [v.version, v.role, v.requests, v.clientErrors + v.serverErrors]),
      ).toEqual([
        [1, 'live', seen(1, false) + seen(1, true), 0],
        [ids.version, 'canary', seen(ids.version, false) + seen(ids.version, true), seen(ids.version, true)],
      ]);
      expect(seen(ids.version, true)).toBeGreaterThan(0);
      const canaryFigures = status.versions[1]!;
      expect(failedStatus >= 500 ? canaryFigures.serverErrors : canaryFigures.clientErrors).toBe(
        seen(ids.version, true),
      );
      expect(status.next).toMatchObject({ action: 'abort' });
      const lines = describeStatus(status);
      expect(lines[0]).toBe(`${model}@live: v1 (canary v${ids.version} 50%)`);
      expect(lines[2]).toMatch(new RegExp(`v1\\s+live\\s+50%\\s+${status.versions[0]!.requests}\\s+0\\s`));
      expect(lines.at(-1)).toMatch(/^rollout: next look: abort — canary v2 aborted/);
      const tick = await rolloutTick({ registry, model, alias: 'live', plan, figures: figures() });
      expect(tick.action, tick.reason).toBe('abort');
      const last = (await registry.history(model)).at(-1)!;
      expect(last).toMatchObject({ kind: 'rollout', from: 1, to: 1, who: 'aiaas-rollout' });
      expect(last.canary).toBeUndefined();
      expect(last.why).toMatch(
        new RegExp(`canary v${ids.version} aborted at 50 %: \\d+ of \\d+ requests failed`),
      );
      const details = last.details as {
        canary: { requests: number; errors: number };
        live: { errors: number };
      };
      expect(details.canary.errors).toBeGreaterThanOrEqual(5);
      expect(details.live.errors).toBe(0);
      expect(last.details).toMatchObject({ decision: 'abort', canary: { version: ids.version } });
      // The function stops routing to the canary, without a restart.
      await eventually(async () => {
        expect(new Set(await traffic(model, 20, () => [-1, 2, 3]))).toEqual(new Set([1]));
      });
    },
  );

  it('promotes a healthy canary step by step, each step with its numbers', async () => {
    const registry = stack.s3.registry;
    const plan: RolloutPlan = {
      steps: [10, 50, 100],
      stepMinutes: 1,
      minRequests: 20,
      maxErrorRateIncrease: 0.01,
      maxP99Ratio: 50, // latency on a shared test machine is no signal; errors are
      schedule: 'rate(1 minute)',
    };
    await publishLinear(runtime, registry, 'healthy', [1, 1, 1], 0, { promote: true });
    const next = await publishLinear(runtime, registry, 'healthy', [1, 1, 2], 0);
    await registry.changeRoutes('healthy', 'live', { op: 'set-canary', version: next.version, weight: 10 });
    const actions: string[] = [];
    // Each look: traffic until the step has its minimum, then the rollout function looks a step's
    // length later (the injected clock); bounded.
    for (let look = 0; look < 4 && !actions.includes('promote'); look++) {
      const pointer = (await registry.getAlias('healthy'))!;
      for (let batch = 0; batch < 20; batch++) {
        await traffic('healthy', 50, (i) => [i % 7, 1, 2]);
        const counted = await figures().figures('healthy', new Date(pointer.canary!.since), new Date());
        if ((counted.find((f) => f.role === 'canary')?.requests ?? 0) >= plan.minRequests) break;
      }
      const tick = await rolloutTick({
        registry,
        model: 'healthy',
        alias: 'live',
        plan,
        figures: figures(),
        now: () => new Date(Date.now() + 61_000),
      });
      actions.push(tick.action);
      expect(['step', 'promote'], tick.reason).toContain(tick.action);
    }
    expect(actions).toEqual(['step', 'promote']);
    const history = await registry.history('healthy');
    expect(history.map((e) => `${e.kind} v${e.to} ${e.canary?.weight ?? '-'}`)).toEqual([
      'promote v1 -',
      'canary v1 10',
      'rollout v1 50',
      `rollout v${next.version} -`,
    ]);
    expect(history[2]!.details).toMatchObject({
      decision: 'step',
      step: 10,
      next: 50,
      canary: { errors: 0 },
    });
    expect((history[2]!.details as { canary: { requests: number } }).canary.requests).toBeGreaterThanOrEqual(
      20,
    );
    expect(history[3]!.why).toMatch(/promoted after its 50 % step/);
    await eventually(async () => {
      expect(new Set(await traffic('healthy', 20, () => [1, 2, 3]))).toEqual(new Set([next.version]));
    });
  });
});
