/**
 * Bench section 4, model load: a large sharded model fetched, verified and built by the function's
 * code path, in a child on the Lambda's Node (children/model-load.ts), against a raw parallel GET
 * of the same objects.
 */
import { join } from 'node:path';
import { ROOT } from '../../../cli/paths.js';
import { childJson } from '../processes.js';
import { type BenchContext, log, publishExample } from '../setup.js';
import { interval, median, pairedRatios, round } from '../stats.js';

export async function modelLoad({ node, env, quick, runtime, s3 }: BenchContext) {
  // Model load: a ≥ 50 MB sharded model, fetched, verified and built vs a raw parallel GET.
  log('model load…');
  const big = await publishExample(runtime, s3.registry, 'big', [4096, 1], 3200);
  const names = Object.keys(big.files);
  // On the Lambda's Node, in a child of its own: the function's code path, not this process's.
  const {
    raw: rawSamples,
    touched: touchedSamples,
    load: loadSamples,
  } = await childJson<{ raw: number[]; touched: number[]; load: number[] }>(
    node,
    ['--import', 'tsx', join(ROOT, 'scripts/bench/children/model-load.ts')],
    { ...env, BENCH_MODEL: 'big', BENCH_VERSION: String(big.version), BENCH_ROUNDS: quick ? '3' : '31' },
  );
  const totalBytes = Object.values(big.files).reduce((n, f) => n + f.size, 0);
  return {
    // Floor over ours per back-to-back pair, then the median (as for cold start and warm).
    ratio: round(median(pairedRatios(rawSamples, loadSamples))),
    ratioInterval: interval(pairedRatios(rawSamples, loadSamples)),
    ratioOfMedians: round(median(rawSamples) / median(loadSamples)),
    ms: round(median(loadSamples), 1),
    floorMs: round(median(rawSamples), 1),
    // For information: the same GETs into buffers whose pages are already mapped (no faults).
    touchedFloorMs: round(median(touchedSamples), 1),
    touchedFloorRatio: round(median(pairedRatios(touchedSamples, loadSamples))),
    megabytes: round(totalBytes / 1e6, 1),
    shards: names.length - 1,
    samples: {
      floor: rawSamples.map((x) => round(x, 1)),
      touchedFloor: touchedSamples.map((x) => round(x, 1)),
      ours: loadSamples.map((x) => round(x, 1)),
    },
    target: '≥ 0.8× a raw parallel GET',
  };
}
