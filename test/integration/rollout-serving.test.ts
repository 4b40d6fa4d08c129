/**
 * Canary and shadow versions served by one function, against the local stack (s3rver and the
 * function-URL server on the built bundle), with alias pointers written straight into the registry:
 * a 10 % canary answers 7-13 % of 2,000 un-keyed requests; keyed requests are sticky and go where
 * the documented hash says; a weight change, a promotion and an abort reach the running function
 * within its re-check interval with no restart and no failed request among eight concurrent
 * callers; a shadow never changes an answer, and the disagreement the local figures record matches
 * one computed here from both versions' own answers.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { routeBucket } from '../../functions/inference/routing.js';
import { artifactsToFiles, captureIOHandler, signatureOf } from '../../functions/shared/model/artifacts.js';
import { keys } from '../../functions/shared/registry/layout.js';
import type { AliasPointer } from '../../functions/shared/registry/types.js';
import type { VersionFigures } from '../../functions/shared/rollout/figures.js';
import type { TfRuntime } from '../../functions/shared/runtime/types.js';
import { createRuntime } from '../../layers/tfjs-runtime/runtime.js';
import { publishLinear } from '../support/models.js';
import { seeded } from '../support/seeded.js';
import { eventually, startTestStack, type TestStack } from '../support/stack.js';

const CANARY = 'canaried';
const SHADOWED = 'shadowed';
const since = new Date(0).toISOString();
const BODY = JSON.stringify({ instances: [[1, 2, 3]] });

let stack: TestStack;
let runtime: TfRuntime;

beforeAll(async () => {
  stack = await startTestStack({ aliasCheckSeconds: 1 });
  runtime = await createRuntime('cpu');
  await publishLinear(runtime, stack.s3.registry, CANARY, [1, 0, 0], 0, { promote: true });
  await publishLinear(runtime, stack.s3.registry, CANARY, [0, 1, 0], 0);
  await publishLinear(runtime, stack.s3.registry, CANARY, [0, 0, 1], 0);
  const random = seeded(42);
  for (const _ of [1, 2]) await publishClassifier(runtime, SHADOWED, random);
  await stack.s3.registry.setAlias(SHADOWED, 'live', 1);
}, 60_000);
afterAll(async () => {
  await stack?.close();
});

/** A softmax classifier of 4 inputs into 3 classes, its weights drawn from `random`. */
async function publishClassifier(tf: TfRuntime, model: string, random: () => number) {
  const net = tf.layers.sequential({
    layers: [tf.layers.layers.dense({ units: 3, activation: 'softmax', inputShape: [4] })],
  });
  net.layers[0]!.setWeights([
    tf.tf.tensor2d(
      Array.from({ length: 12 }, () => random() * 4 - 2),
      [4, 3],
    ),
    tf.tf.tensor1d(Array.from({ length: 3 }, () => random() - 0.5)),
  ]);
  const capture = captureIOHandler();
  await net.save(capture);
  const signature = signatureOf(tf, net);
  net.dispose();
  return stack.s3.registry.publish(model, artifactsToFiles(capture.artifacts!), {
    format: 'layers-model',
    signature,
    metrics: {},
    source: { kind: 'publish', test: true },
    parent: null,
  });
}

/** Rewrites `model`'s live pointer: its version and the routes beside it, as a move would. */
async function point(model: string, fields: Partial<AliasPointer>): Promise<void> {
  const { store } = stack.s3.registry;
  const object = await store.get(keys.alias(model, 'live'));
  const {
    canary: _c,
    shadow: _s,
    ...current
  } = JSON.parse(new TextDecoder().decode(object!.body)) as AliasPointer;
  const next: Record<string, unknown> = { ...current, ...fields, seq: current.seq + 1 };
  if (fields.version !== undefined && fields.version !== current.version) {
    delete next.files;
    delete next.inline;
  }
  await store.put(keys.alias(model, 'live'), JSON.stringify(next), { contentType: 'application/json' });
}

interface Answer {
  readonly status: number;
  /** x-aiaas-model-version */
  readonly version: number;
  readonly text: string;
}

async function predict(
  model: string,
  key?: string,
  body = BODY,
  path = `/v1/models/${model}:predict`,
): Promise<Answer> {
  const res = await stack.call('POST', path, body, key === undefined ? {} : { 'x-aiaas-route-key': key });
  const version = Number(res.headers.get('x-aiaas-model-version'));
  if (res.status === 200) {
    // The body names the same version as the header.
    expect((res.json.model_spec as { version: string }).version).toBe(String(version));
  }
  return { status: res.status, version, text: res.text };
}

/** `count` requests from `callers` concurrent callers; keys from `keyOf` (undefined: none). */
async function burst(
  model: string,
  count: number,
  callers = 8,
  keyOf: (i: number) => string | undefined = () => undefined,
) {
  const answers: Answer[] = new Array(count);
  let next = 0;
  await Promise.all(
    Array.from({ length: callers }, async () => {
      while (next < count) {
        const i = next++;
        answers[i] = await predict(model, keyOf(i));
      }
    }),
  );
  return answers;
}

/** Eight callers asking until stopped, every answer kept. */
function steadyLoad(model: string) {
  const answers: Answer[] = [];
  let stopped = false;
  let n = 0;
  const callers = Array.from({ length: 8 }, async (_, c) => {
    while (!stopped) {
      const i = n++;
      answers.push(await predict(model, i % 2 === 0 ? `caller-${c}-${i % 50}` : undefined));
    }
  });
  return {
    answers,
    /** The versions answered since `from` (an index into answers). */
    versionsSince: (from: number) => new Set(answers.slice(from).map((a) => a.version)),
    async stop() {
      stopped = true;
      await Promise.all(callers);
      return answers;
    },
  };
}

/** A key whose bucket lies in [from, to) (weights × 100). */
function keyInBuckets(from: number, to: number): string {
  for (let i = 0; ; i++) {
    const key = `probe-${i}`;
    const bucket = routeBucket(key);
    if (bucket >= from && bucket < to) return key;
  }
}

async function figures(model: string, sinceDate: Date): Promise<VersionFigures[]> {
  const res = await stack.call(
    'GET',
    `/_aiaas/figures/${model}?since=${sinceDate.toISOString()}&until=${new Date(Date.now() + 1).toISOString()}`,
  );
  expect(res.status).toBe(200);
  expect(res.json.model).toBe(model);
  return res.json.figures as VersionFigures[];
}

describe('a canary', () => {
  it('answers about its weight of 2,000 un-keyed requests, and keyed requests stick to a version', async () => {
    expect((await predict(CANARY)).version).toBe(1);
    await point(CANARY, { canary: { version: 2, weight: 10, since } });
    const inCanary = keyInBuckets(0, 1_000);
    await eventually(async () => expect((await predict(CANARY, inCanary)).version).toBe(2), 8_000);
    const started = new Date();
    const answers = await burst(CANARY, 2_000);
    expect(answers.every((a) => a.status === 200)).toBe(true);
    const share = answers.filter((a) => a.version === 2).length;
    expect(answers.filter((a) => a.version !== 1 && a.version !== 2)).toEqual([]);
    expect(share).toBeGreaterThanOrEqual(140);
    expect(share).toBeLessThanOrEqual(260);

    // Keyed: 300 keys asked 3 times each, concurrently; each key goes where its bucket says, every time.
    const keyOf = (i: number) => `customer-${i % 300}`;
    const keyed = await burst(CANARY, 900, 8, keyOf);
    keyed.forEach((a, i) => {
      expect(a.status).toBe(200);
      expect(a.version).toBe(routeBucket(keyOf(i)) < 1_000 ? 2 : 1);
    });
    expect(new Set(keyed.map((a) => a.version))).toEqual(new Set([1, 2]));

    // The local figures count what was answered, per version and role.
    const counted = await figures(CANARY, started);
    const live = counted.find((f) => f.role === 'live' && f.version === 1);
    const canary = counted.find((f) => f.role === 'canary' && f.version === 2);
    expect(live!.requests + canary!.requests).toBeGreaterThanOrEqual(2_000 + 900);
    expect(canary!.requests).toBeGreaterThan(0);
    expect(live!.clientErrors + live!.serverErrors + canary!.clientErrors + canary!.serverErrors).toBe(0);
    expect(canary!.p50Ms).toBeGreaterThan(0);
    expect(canary!.p99Ms).toBeGreaterThanOrEqual(canary!.p50Ms!);

    // An error after the version was chosen names it too, and counts against it.
    const bad = await predict(CANARY, inCanary, '{"instances": [[1, 2]]}');
    expect([bad.status, bad.version]).toEqual([400, 2]);
    const notFound = await stack.call('POST', `/v1/models/${CANARY}/versions/9:predict`, BODY);
    expect([notFound.status, notFound.headers.get('x-aiaas-model-version')]).toEqual([404, null]);
    const after = (await figures(CANARY, started)).find((f) => f.role === 'canary' && f.version === 2)!;
    expect(after.clientErrors).toBe(1);
  }, 50_000);

  it('takes a weight change, a promotion and an abort without a restart or a failed request', async () => {
    await point(CANARY, { version: 1, canary: { version: 2, weight: 10, since } });
    const functions = stack.server.functions();
    const load = steadyLoad(CANARY);
    try {
      // Weight 10 → 60: a key in buckets [1000, 6000) moves to the canary.
      const moving = keyInBuckets(1_000, 6_000);
      await eventually(async () => expect((await predict(CANARY, moving)).version).toBe(1), 8_000);
      await point(CANARY, { version: 1, canary: { version: 2, weight: 60, since } });
      await eventually(async () => expect((await predict(CANARY, moving)).version).toBe(2), 8_000);
      // Promote: version 2 serves everything.
      await point(CANARY, { version: 2 });
      await eventually(async () => {
        const from = load.answers.length;
        await burst(CANARY, 40, 4);
        expect(load.versionsSince(from)).toEqual(new Set([2]));
      }, 8_000);
      // A new canary, then an abort: version 3 appears, then no longer.
      await point(CANARY, { version: 2, canary: { version: 3, weight: 50, since } });
      await eventually(
        async () => expect(load.versionsSince(Math.max(0, load.answers.length - 40)).has(3)).toBe(true),
        8_000,
      );
      await point(CANARY, { version: 2 });
      await eventually(async () => {
        const from = load.answers.length;
        await burst(CANARY, 40, 4);
        expect(load.versionsSince(from)).toEqual(new Set([2]));
      }, 8_000);
    } finally {
      const answers = await load.stop();
      expect(answers.length).toBeGreaterThan(100);
      expect(answers.filter((a) => a.status !== 200)).toEqual([]);
    }
    expect(stack.server.functions()).toEqual(functions);
  }, 50_000);
});

describe('a shadow', () => {
  /** Requests of 5 rows each, drawn once. */
  const random = seeded(7);
  const bodies = Array.from({ length: 25 }, () =>
    JSON.stringify({
      instances: Array.from({ length: 5 }, () => Array.from({ length: 4 }, () => random() * 6 - 3)),
    }),
  );
  const rowsOf = (text: string) => JSON.parse(text).predictions as number[][];

  it('never changes an answer, and records how it differs as computed from both versions directly', async () => {
    // Both versions' own answers first: version 2 is reachable by its path while it is a canary of weight 0.
    await point(SHADOWED, { version: 1, canary: { version: 2, weight: 0, since } });
    const v2Path = `/v1/models/${SHADOWED}/versions/2:predict`;
    await eventually(
      async () => expect((await predict(SHADOWED, undefined, bodies[0], v2Path)).status).toBe(200),
      8_000,
    );
    const direct1: string[] = [];
    const direct2: string[] = [];
    for (const body of bodies) {
      direct1.push(
        (await predict(SHADOWED, undefined, body, `/v1/models/${SHADOWED}/versions/1:predict`)).text,
      );
      direct2.push((await predict(SHADOWED, undefined, body, v2Path)).text);
    }
    // The figures expected: per request, max |v1 - v2| over its values; per row, whether argmax differs.
    const perRequest = bodies.map((_, i) => {
      const a = rowsOf(direct1[i]!);
      const b = rowsOf(direct2[i]!);
      let max = 0;
      let disagree = 0;
      a.forEach((row, r) => {
        row.forEach((v, j) => {
          max = Math.max(max, Math.abs(v - b[r]![j]!));
        });
        const top = (xs: number[]) => xs.indexOf(Math.max(...xs));
        if (top(row) !== top(b[r]!)) disagree++;
      });
      return { max, disagree, rows: a.length };
    });
    expect(perRequest.some((r) => r.disagree > 0)).toBe(true); // the versions do disagree somewhere

    await point(SHADOWED, { version: 1, shadow: { version: 2, sample: 100, since } });
    // Wait for the shadow with request 0 (counted below as however many ran with the shadow on).
    const started = new Date(Date.now() - 1);
    await eventually(async () => {
      expect((await predict(SHADOWED, undefined, bodies[0])).text).toBe(direct1[0]);
      expect((await figures(SHADOWED, started)).some((f) => f.role === 'shadow')).toBe(true);
    }, 8_000);
    const probes = (await figures(SHADOWED, started)).find((f) => f.role === 'shadow')!.shadow!.compared;
    for (const [i, body] of bodies.entries()) {
      const answer = await predict(SHADOWED, undefined, body);
      expect(answer.version).toBe(1);
      expect(answer.text).toBe(direct1[i]);
    }
    const shadow = (await figures(SHADOWED, started)).find((f) => f.role === 'shadow' && f.version === 2)!;
    const runs = [...Array.from({ length: probes }, () => perRequest[0]!), ...perRequest];
    expect(shadow.requests).toBe(runs.length);
    expect(shadow.serverErrors).toBe(0);
    expect(shadow.shadow).toMatchObject({
      compared: runs.length,
      slow: 0,
      maxAbsDiff: Math.max(...runs.map((r) => r.max)),
      topClassRows: runs.reduce((n, r) => n + r.rows, 0),
      topClassDisagreements: runs.reduce((n, r) => n + r.disagree, 0),
    });
    expect(shadow.shadow!.meanMaxAbsDiff).toBeCloseTo(runs.reduce((s, r) => s + r.max, 0) / runs.length, 12);
  }, 40_000);
});
