/**
 * `npm run bench [-- --json] [-- --quick] [-- --only=coldStart,warm,...] [-- --no-synth]`: every
 * figure beside its floor, measured in the same run (these machines are noisy: compare ratios, not
 * absolute times). Never part of `npm test`. This file sets up the shared parts (the s3rver child,
 * the example model, the runtime) and runs the sections in sections/, one file per figure; what
 * each figure means and its last values are in docs/benchmarks.md.
 */

import { type ChildProcess, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { DIST, ROOT } from '../../cli/paths.js';
import { AIAAS_MODEL } from '../../functions/shared/env.js';
import { localFunctionEnv } from '../local/s3.js';
import { node24 } from './node24.js';
import { startChild } from './processes.js';
import { artifacts } from './sections/artifacts.js';
import { batch } from './sections/batch.js';
import { batchJob } from './sections/batch-job.js';
import { coldStart } from './sections/cold-start.js';
import { memory } from './sections/memory.js';
import { modelLoad } from './sections/model-load.js';
import { rollout } from './sections/rollout.js';
import { synth } from './sections/synth.js';
import { warm } from './sections/warm.js';
import { type BenchContext, publishExample, remoteS3 } from './setup.js';
import { round } from './stats.js';
import { printTable } from './table.js';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

const args = new Set(process.argv.slice(2));
const asJson = args.has('--json');
const quick = args.has('--quick');
const only = process.argv
  .find((a) => a.startsWith('--only='))
  ?.slice('--only='.length)
  .split(',');
/** Whether a section runs: all by default, or those named by `--only=coldStart,warm,...`. */
const want = (section: string) =>
  only ? only.includes(section) : section !== 'synth' || !args.has('--no-synth');

async function main() {
  if (!existsSync(join(DIST, 'functions/inference/index.mjs'))) throw new Error('run npm run build first');
  const dir = mkdtempSync(join(tmpdir(), 'aiaas-bench-'));
  const node = node24() ?? process.execPath;
  const children: ChildProcess[] = [];
  // s3rver runs in its own process, as S3 runs on other machines: the measured client side (SDK,
  // hashing, tfjs) does not share an event loop with the server, and a blocked bench never stalls it.
  const s3child = await startChild(
    node,
    ['--import', 'tsx', join(ROOT, 'scripts/bench/children/s3-server.ts'), join(dir, 's3')],
    process.env,
  );
  children.push(s3child.child);
  const s3 = remoteS3(`http://127.0.0.1:${s3child.port}`);
  const { createRuntime } = await import('../../layers/tfjs-runtime/runtime.js');
  const runtime = await createRuntime('wasm');
  const nodeVersion = spawnSync(node, ['--version'], { encoding: 'utf8' }).stdout.trim();
  const report: Record<string, unknown> = {
    machine: {
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model,
      memoryGiB: round(totalmem() / 2 ** 30, 1),
      node: nodeVersion,
    },
  };
  try {
    const example = await publishExample(runtime, s3.registry, 'diabetes', [10, 1]);
    const env = {
      ...process.env,
      ...localFunctionEnv(s3),
      [AIAAS_MODEL]: 'diabetes',
      // For the plain-JS children (cold-bundle.mjs, cold-naive.mjs), which import nothing of ours.
      BENCH_MODEL: 'diabetes',
      BENCH_BUCKET: s3.bucket,
      BENCH_S3_ENDPOINT: s3.endpoint,
      BENCH_BUNDLE: join(DIST, 'functions/inference/index.mjs'),
      BENCH_VERSION: String(example.version),
    };

    const body = JSON.stringify({ instances: [[6, 148, 72, 35, 0, 33.6, 0.627, 50]] });
    const ctx: BenchContext = { quick, node, dir, s3, runtime, env, body, children };
    if (want('coldStart')) report.coldStart = await coldStart(ctx);
    if (want('warm')) report.warm = await warm(ctx);
    if (want('batch')) report.batch = await batch(ctx);
    if (want('rollout')) report.rollout = await rollout(ctx);
    if (want('batchJob')) report.batchJob = await batchJob(ctx);
    if (want('modelLoad')) report.modelLoad = await modelLoad(ctx);
    if (want('artifacts')) report.artifacts = artifacts();
    if (want('synth')) report.synth = await synth(ctx);
    if (want('memory')) report.memory = await memory(ctx);
  } finally {
    await s3.close();
    for (const c of children) c.kill();
    await new Promise((resolve) => setTimeout(resolve, 200));
    rmSync(dir, { recursive: true, force: true });
  }
  if (asJson) {
    process.stdout.write(`${JSON.stringify(report)}\n`);
  } else {
    printTable(report);
  }
  mkdirSync(join(ROOT, '.local'), { recursive: true });
  writeFileSync(join(ROOT, '.local/bench-last.json'), JSON.stringify(report, null, 2));
}

await main();
