/**
 * Bench section, rollout: the warm cost of a canary and of a shadow. Three handlers in this process
 * serve the example model's two versions through three aliases: `plain` (the live version alone),
 * `canary` (a canary at 10 %), `shadow` (a shadow sampled at 10 %). Each is called in alternating
 * rounds with the same one-instance predict event; the figure is the time per warm invocation and
 * its paired ratio to `plain` (the handler as Lambda calls it, HTTP left out: the local server's
 * own cost is the warm section's).
 */
import { DEFAULT_LIMITS } from '../../../functions/inference/api.js';
import { createHandler, type Handler } from '../../../functions/inference/handler.js';
import { keys } from '../../../functions/shared/registry/layout.js';
import type { AliasPointer } from '../../../functions/shared/registry/types.js';
import { type BenchContext, log, publishExample } from '../setup.js';
import { median, pairedRatios, round } from '../stats.js';

const MODEL = 'rollout-bench';

export async function rollout({ runtime, s3, quick, body }: BenchContext) {
  log('rollout: warm cost of a canary and a shadow…');
  // Two versions of the example model's shape; the second is only ever a canary or a shadow.
  const live = await publishExample(runtime, s3.registry, MODEL, [10, 1]);
  const other = await publishExample(runtime, s3.registry, MODEL, [10, 1]);
  await s3.registry.setAlias(MODEL, 'live', live.version);
  const since = new Date().toISOString();
  const pointer = JSON.parse(
    new TextDecoder().decode((await s3.registry.store.get(keys.alias(MODEL, 'live')))!.body),
  ) as AliasPointer;
  const aliases: Record<string, Partial<AliasPointer>> = {
    plain: {},
    canary: { canary: { version: other.version, weight: 10, since } },
    shadow: { shadow: { version: other.version, sample: 10, since } },
  };
  for (const [alias, routes] of Object.entries(aliases)) {
    await s3.registry.store.put(keys.alias(MODEL, alias), JSON.stringify({ ...pointer, alias, ...routes }), {
      contentType: 'application/json',
    });
  }

  // Metrics off, as the local stack runs: the EMF line is the same with or without a canary.
  const metricsWere = process.env.POWERTOOLS_METRICS_DISABLED;
  process.env.POWERTOOLS_METRICS_DISABLED = 'true';
  const quiet = { info() {}, warn() {}, error() {} };
  const handlers: Record<string, Handler> = {};
  try {
    for (const alias of Object.keys(aliases)) {
      handlers[alias] = createHandler(
        { bucket: s3.bucket, model: MODEL, alias, aliasCheckSeconds: 3_600, limits: DEFAULT_LIMITS },
        { store: s3.registry.store, runtime: async () => runtime, log: quiet },
      );
    }
  } finally {
    if (metricsWere === undefined) delete process.env.POWERTOOLS_METRICS_DISABLED;
    else process.env.POWERTOOLS_METRICS_DISABLED = metricsWere;
  }
  const event = {
    rawPath: `/v1/models/${MODEL}:predict`,
    requestContext: { http: { method: 'POST' } },
    headers: { 'content-type': 'application/json' },
    body,
  };
  const calls = quick ? 5_000 : 20_000;
  const rounds = quick ? 3 : 7;
  const timeOf = async (handler: Handler) => {
    const started = performance.now();
    for (let i = 0; i < calls; i++) {
      const answer = await handler(event);
      if (answer.statusCode !== 200)
        throw new Error(`rollout bench: status ${answer.statusCode}: ${answer.body}`);
    }
    return ((performance.now() - started) * 1000) / calls;
  };
  for (const handler of Object.values(handlers)) await timeOf(handler); // loads, JIT settles
  const us: Record<string, number[]> = { plain: [], canary: [], shadow: [] };
  const names = Object.keys(aliases);
  for (let r = 0; r < rounds; r++) {
    // Each round starts with another alias, so none is always measured first.
    for (let k = 0; k < names.length; k++) {
      const alias = names[(r + k) % names.length]!;
      us[alias]!.push(await timeOf(handlers[alias]!));
    }
  }
  const per = (alias: string) => round(median(us[alias]!), 2);
  const ratio = (alias: string) => round(median(pairedRatios(us[alias]!, us.plain!)), 3);
  return {
    usPerInvocation: { plain: per('plain'), canary10: per('canary'), shadow10: per('shadow') },
    // Paired per round: this VM's speed drifts within a run.
    ratioToPlain: { canary10: ratio('canary'), shadow10: ratio('shadow') },
    costUs: {
      canary10: round(per('canary') - per('plain'), 2),
      shadow10: round(per('shadow') - per('plain'), 2),
    },
    callsPerRound: calls,
    rounds,
    note: 'one-instance predict of the example model, both versions on the fast path; handler calls in-process',
  };
}
