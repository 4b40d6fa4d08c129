/**
 * Bench section 1, cold start: a fresh function process from spawn to its first prediction against
 * `node -e 0`, alternated so that noise hits both sides alike; beside it, the same model on tfjs,
 * with a deployed function's settings, and a naive unbundled handler.
 */
import { join } from 'node:path';
import { ROOT } from '../../../cli/paths.js';
import { AIAAS_FAST_PATH } from '../../../functions/shared/env.js';
import { timeProcess } from '../processes.js';
import { type BenchContext, log } from '../setup.js';
import { interval, median, pairedRatios, round } from '../stats.js';

export async function coldStart({ node, env, quick }: BenchContext) {
  // Cold start. Floor and ours alternate, so a burst of noise from another process on this
  // machine hits both sides alike; each figure is the median of its samples.
  log(`cold start (${node})…`);
  // 31 pairs: the median's 95 % interval then runs from the 10th to the 22nd ratio (97 %).
  const runs = quick ? 5 : 31;
  const coldChild = join(ROOT, 'scripts/bench/children/cold-bundle.mjs');
  // The same model with the fast path off: what a model that needs tfjs pays (runtime layer
  // import, wasm start-up, tfjs load).
  const tfjsEnv = { ...env, [AIAAS_FAST_PATH]: 'off' };
  // The bench runs the local stack's settings (metrics off, WARN), under which a cold start has
  // nothing to log and never loads Powertools. A deployed function publishes metrics and logs
  // at INFO: shown beside, for information.
  const deployedEnv = { ...env, POWERTOOLS_METRICS_DISABLED: 'false', POWERTOOLS_LOG_LEVEL: 'INFO' };
  await timeProcess(node, ['-e', '0'], env, 1); // page cache warm-up, not counted
  await timeProcess(node, [coldChild], env, 1);
  await timeProcess(node, [coldChild], tfjsEnv, 1);
  await timeProcess(node, [coldChild], deployedEnv, 1);
  const samples = {
    floor: [] as number[],
    ours: [] as number[],
    tfjs: [] as number[],
    deployed: [] as number[],
  };
  for (let i = 0; i < runs; i++) {
    samples.floor.push(...(await timeProcess(node, ['-e', '0'], env, 1)).samples);
    samples.ours.push(...(await timeProcess(node, [coldChild], env, 1)).samples);
    samples.tfjs.push(...(await timeProcess(node, [coldChild], tfjsEnv, 1)).samples);
    samples.deployed.push(...(await timeProcess(node, [coldChild], deployedEnv, 1)).samples);
  }
  const naive = await timeProcess(
    node,
    [join(ROOT, 'scripts/bench/children/cold-naive.mjs')],
    env,
    quick ? 2 : 3,
  );
  const floorMs = median(samples.floor);
  return {
    // Each round's ratio (floor and aiaas back to back), then the median: robust to the VM's
    // speed drifting during the run, as for warm and model load.
    ratio: round(median(pairedRatios(samples.ours, samples.floor))),
    ratioInterval: interval(pairedRatios(samples.ours, samples.floor)),
    ratioOfMedians: round(median(samples.ours) / floorMs),
    ms: round(median(samples.ours), 1),
    floorMs: round(floorMs, 1),
    tfjsMs: round(median(samples.tfjs), 1),
    tfjsRatio: round(median(pairedRatios(samples.tfjs, samples.floor))),
    deployedMs: round(median(samples.deployed), 1),
    deployedRatio: round(median(pairedRatios(samples.deployed, samples.floor))),
    naiveMs: round(naive.ms, 1),
    naiveRatio: round(naive.ms / floorMs),
    samples: { ...samples, naive: naive.samples },
    target: '≤ 2.0× node -e 0',
    note: `ratio: the example model, served by the fast path, with the local stack's settings (metrics off, log level WARN); tfjs: the same with ${AIAAS_FAST_PATH}=off (runtime layer, wasm backend); deployed: the same with a deployed function's settings (metrics published, INFO)`,
  };
}
