/**
 * `npm run bench [-- --json] [-- --quick]`: every figure beside its floor, measured in the same run
 * (these machines are noisy: compare ratios, not absolute times). Never part of `npm test`.
 */

import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { zipSync } from 'fflate';
import { DEFAULT_LIMITS } from '../../functions/inference/api.js';
import { InferenceService } from '../../functions/inference/service.js';
import {
  artifactsToFiles,
  captureIOHandler,
  filesToArtifacts,
  signatureOf,
} from '../../functions/shared/model/artifacts.js';
import { keys } from '../../functions/shared/registry/layout.js';
import type { ModelRegistry } from '../../functions/shared/registry/registry.js';
import type { TfRuntime } from '../../functions/shared/runtime/types.js';
import { DIST, ROOT } from '../lib/bundle.js';
import { LOCAL_CREDENTIALS, type LocalS3, startLocalS3 } from '../lib/local-stack.js';
import { node24 } from '../lib/node24.js';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
const args = new Set(process.argv.slice(2));
const asJson = args.has('--json');
const quick = args.has('--quick');
const log = (line: string) => process.stderr.write(`${line}\n`);

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const round = (x: number, digits = 2) => Number(x.toFixed(digits));

/** Wall time of a fresh process from spawn to exit, median of `runs`. */
function timeProcess(
  bin: string,
  argv: string[],
  env: NodeJS.ProcessEnv,
  runs: number,
): { ms: number; samples: number[] } {
  const samples: number[] = [];
  for (let i = 0; i < runs; i++) {
    const started = performance.now();
    const result = spawnSync(bin, argv, { env, cwd: ROOT, encoding: 'utf8' });
    const ms = performance.now() - started;
    if (result.status !== 0) throw new Error(`${argv.join(' ')} failed: ${result.stderr || result.stdout}`);
    samples.push(ms);
  }
  return { ms: median(samples), samples: samples.map((s) => round(s, 1)) };
}

async function publishExample(
  runtime: TfRuntime,
  registry: ModelRegistry,
  model: string,
  dense: number[],
  inputs = 8,
) {
  const { layers } = runtime;
  const net = layers.sequential();
  for (const [i, units] of dense.entries()) {
    net.add(
      layers.layers.dense({
        units,
        activation: i === dense.length - 1 ? 'sigmoid' : 'relu',
        ...(i === 0 ? { inputShape: [inputs] } : {}),
      }),
    );
  }
  const capture = captureIOHandler();
  await net.save(capture);
  const signature = signatureOf(runtime, net);
  net.dispose();
  const meta = await registry.publish(model, artifactsToFiles(capture.artifacts!), {
    format: 'layers-model',
    signature,
    metrics: {},
    source: { kind: 'publish', bench: true },
    parent: null,
  });
  await registry.setAlias(model, 'live', meta.version);
  return meta;
}

function startChild(
  bin: string,
  argv: string[],
  env: NodeJS.ProcessEnv,
): Promise<{ child: ChildProcess; port: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, argv, { env, cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const match = /ready (\d+)/.exec(out);
      if (match) resolve({ child, port: Number(match[1]) });
    });
    child.on('exit', (code) => reject(new Error(`${argv.join(' ')} exited with ${code}`)));
  });
}

async function load(url: string, body: string, seconds: number, connections = 16) {
  const result = await autocannon({
    url,
    method: 'POST',
    body,
    headers: { 'content-type': 'application/json' },
    connections,
    duration: seconds,
  });
  return {
    requestsPerSecond: round(result.requests.average, 0),
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    non2xx: result.non2xx,
    errors: result.errors,
  };
}

function dirBytes(dir: string, filter: (name: string) => boolean = () => true): Record<string, Uint8Array> {
  const files: Record<string, Uint8Array> = {};
  for (const name of readdirSync(dir, { recursive: true }) as string[]) {
    const path = join(dir, name);
    if (statSync(path).isFile() && filter(name)) files[name] = readFileSync(path);
  }
  return files;
}

async function main() {
  if (!existsSync(join(DIST, 'functions/inference/index.mjs'))) throw new Error('run npm run build first');
  const dir = mkdtempSync(join(tmpdir(), 'aiaas-bench-'));
  const s3: LocalS3 = await startLocalS3({ directory: dir });
  const { createRuntime } = await import('../../layers/tfjs-runtime/runtime.js');
  const runtime = await createRuntime('wasm');
  const node = node24() ?? process.execPath;
  const nodeVersion = spawnSync(node, ['--version'], { encoding: 'utf8' }).stdout.trim();
  const report: Record<string, unknown> = {
    machine: {
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model,
      memoryGiB: round(totalmem() / 2 ** 30, 1),
      node: nodeVersion,
    },
  };
  const children: ChildProcess[] = [];
  try {
    const example = await publishExample(runtime, s3.registry, 'diabetes', [10, 1]);
    const env = {
      ...process.env,
      AIAAS_BUCKET: s3.bucket,
      AIAAS_MODEL: 'diabetes',
      AIAAS_S3_ENDPOINT: s3.endpoint,
      AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey,
      AWS_REGION: 'us-east-1',
      POWERTOOLS_METRICS_DISABLED: 'true',
      POWERTOOLS_LOG_LEVEL: 'WARN',
      BENCH_BUNDLE: join(DIST, 'functions/inference/index.mjs'),
      BENCH_VERSION: String(example.version),
    };

    // 1. Cold start.
    log(`cold start (${node})…`);
    const runs = quick ? 3 : 7;
    const floor = timeProcess(node, ['-e', '0'], env, runs);
    const ours = timeProcess(node, [join(ROOT, 'scripts/bench/children/cold-bundle.mjs')], env, runs);
    const naive = timeProcess(
      node,
      [join(ROOT, 'scripts/bench/children/cold-naive.mjs')],
      env,
      quick ? 2 : 3,
    );
    report.coldStart = {
      ratio: round(ours.ms / floor.ms),
      ms: round(ours.ms, 1),
      floorMs: round(floor.ms, 1),
      naiveMs: round(naive.ms, 1),
      naiveRatio: round(naive.ms / floor.ms),
      samples: { ours: ours.samples, floor: floor.samples, naive: naive.samples },
      target: '≤ 2.0× node -e 0',
    };

    // 2. Warm: HTTP load through the local function-URL server vs a bare Node server.
    log('warm throughput…');
    const seconds = quick ? 5 : 10;
    const body = JSON.stringify({ instances: [[6, 148, 72, 35, 0, 33.6, 0.627, 50]] });
    const bare = await startChild(node, [join(ROOT, 'scripts/bench/children/bare-server.mjs')], env);
    children.push(bare.child);
    const stack = await startChild(
      process.execPath,
      ['--import', 'tsx', join(ROOT, 'scripts/bench/children/stack-server.ts')],
      env,
    );
    children.push(stack.child);
    const stackUrl = `http://127.0.0.1:${stack.port}/v1/models/diabetes:predict`;
    await load(stackUrl, body, 1); // warm-up: the first request loads the model
    const floorLoad = await load(`http://127.0.0.1:${bare.port}/`, body, seconds);
    const oursLoad = await load(stackUrl, body, seconds);
    report.warm = {
      throughputRatio: round(oursLoad.requestsPerSecond / floorLoad.requestsPerSecond),
      ours: oursLoad,
      floor: floorLoad,
      target: '≥ 0.6× the bare server',
    };
    for (const c of children.splice(0)) c.kill();

    // 3. Batch: instances per second by batch size and backend.
    log('batch…');
    const batch: Record<string, Record<string, number>> = {};
    const backends: TfRuntime['kind'][] = ['wasm', 'cpu'];
    for (const kind of backends) {
      await runtime.tf.setBackend(kind);
      const service = new InferenceService({
        model: 'diabetes',
        alias: 'live',
        aliasCheckMs: 3_600_000,
        limits: DEFAULT_LIMITS,
        registry: s3.registry,
        runtime: async () => ({ ...runtime, kind }),
        log: { info() {}, warn() {}, error() {} },
      });
      batch[kind] = {};
      for (const size of [1, 100, 10_000]) {
        const request = JSON.stringify({
          instances: Array.from({ length: size }, () => [6, 148, 72, 35, 0, 33.6, 0.627, 50]),
        });
        await service.handle({ kind: 'predict', model: 'diabetes' }, request);
        const iterations = Math.max(
          3,
          Math.round((quick ? 20_000 : 60_000) / size / (size === 1 ? 0.02 : 1)),
        );
        const capped = Math.min(iterations, size === 1 ? 3_000 : iterations);
        const started = performance.now();
        for (let i = 0; i < capped; i++)
          await service.handle({ kind: 'predict', model: 'diabetes' }, request);
        batch[kind]![String(size)] = round((capped * size) / ((performance.now() - started) / 1000), 0);
      }
    }
    await runtime.tf.setBackend('wasm');
    report.batch = {
      instancesPerSecond: batch,
      note: 'tfjs-node is not installable here; the native runtime is measured where it is',
    };

    // 4. Model load: a ≥ 50 MB sharded model, fetched, verified and built vs a raw parallel GET.
    log('model load…');
    const big = await publishExample(runtime, s3.registry, 'big', [4096, 1], 3200);
    const names = Object.keys(big.files);
    const rawGet = async () => {
      const started = performance.now();
      await Promise.all(names.map((n) => s3.registry.store.get(keys.file('big', big.version, n))));
      return performance.now() - started;
    };
    const oursLoadModel = async () => {
      const started = performance.now();
      const { files } = await s3.registry.readVersion('big', big.version);
      const model = await runtime.layers.loadLayersModel(runtime.tf.io.fromMemory(filesToArtifacts(files)));
      const ms = performance.now() - started;
      model.dispose();
      return ms;
    };
    await rawGet();
    await oursLoadModel();
    const rawSamples: number[] = [];
    const loadSamples: number[] = [];
    for (let i = 0; i < (quick ? 3 : 5); i++) {
      rawSamples.push(await rawGet());
      loadSamples.push(await oursLoadModel());
    }
    const totalBytes = Object.values(big.files).reduce((n, f) => n + f.size, 0);
    report.modelLoad = {
      ratio: round(median(rawSamples) / median(loadSamples)),
      ms: round(median(loadSamples), 1),
      floorMs: round(median(rawSamples), 1),
      megabytes: round(totalBytes / 1e6, 1),
      shards: names.length - 1,
      target: '≥ 0.8× a raw parallel GET',
    };

    // 5. Artifact sizes.
    log('artifact sizes…');
    const zipped = (files: Record<string, Uint8Array>) => zipSync(files, { level: 9 }).byteLength;
    const fnFiles = dirBytes(join(DIST, 'functions/inference'), (n) => !n.endsWith('.map'));
    const layerFiles = dirBytes(join(DIST, 'layers/tfjs-runtime'), (n) => !n.endsWith('.map'));
    const unzipped = (files: Record<string, Uint8Array>) =>
      Object.values(files).reduce((n, f) => n + f.byteLength, 0);
    report.artifacts = {
      functionZipMB: round(zipped(fnFiles) / 1e6),
      functionUnzippedMB: round(unzipped(fnFiles) / 1e6),
      layerZipMB: round(zipped(layerFiles) / 1e6),
      layerUnzippedMB: round(unzipped(layerFiles) / 1e6),
      lambdaLimitUnzippedMB: 250,
      tfjsNodeUnzippedMB: 380,
    };

    // 6. Synth time for 1, 10 and 50 models.
    if (!args.has('--no-synth')) {
      log('cdk synth 1/10/50 models…');
      const { fleetManifest } = await import('../../infra/fleet.js');
      const synth: Record<string, number> = {};
      for (const count of [1, 10, 50]) {
        const manifest = join(dir, `manifest-${count}.json`);
        writeFileSync(manifest, JSON.stringify(fleetManifest(count)));
        const out = join(dir, `cdk.out-${count}`);
        const started = performance.now();
        const result = spawnSync(
          'npx',
          ['cdk', 'synth', '--quiet', '-o', out, '-c', `manifest=${manifest}`],
          {
            cwd: ROOT,
            env: process.env,
            encoding: 'utf8',
          },
        );
        if (result.status !== 0) throw new Error(`cdk synth (${count} models) failed: ${result.stderr}`);
        synth[String(count)] = round((performance.now() - started) / 1000, 2);
      }
      report.synth = {
        ratio50to1: round(synth['50']! / synth['1']!),
        seconds: synth,
        target: '50 models ≤ 3× one model',
      };
    }

    // 7. Memory over 10,000 predictions.
    log('memory over 10,000 predictions…');
    const service = new InferenceService({
      model: 'diabetes',
      alias: 'live',
      aliasCheckMs: 3_600_000,
      limits: DEFAULT_LIMITS,
      registry: s3.registry,
      runtime: async () => runtime,
      log: { info() {}, warn() {}, error() {} },
    });
    await service.handle({ kind: 'predict', model: 'diabetes' }, body);
    const rss: number[] = [];
    const tensors: number[] = [];
    for (let i = 0; i < 10_000; i++) {
      await service.handle({ kind: 'predict', model: 'diabetes' }, body);
      if (i % 2_000 === 0 || i === 9_999) {
        rss.push(round(process.memoryUsage().rss / 1e6, 1));
        tensors.push(runtime.tf.memory().numTensors);
      }
    }
    report.memory = { rssMB: rss, tensorCount: tensors, flat: tensors.every((t) => t === tensors[0]) };
  } finally {
    for (const c of children) c.kill();
    await s3.close();
    rmSync(dir, { recursive: true, force: true });
  }
  if (asJson) {
    process.stdout.write(`${JSON.stringify(report)}\n`);
  } else {
    printTable(report);
  }
  writeFileSync(join(ROOT, '.local/bench-last.json'), JSON.stringify(report, null, 2));
}

// biome-ignore lint/suspicious/noExplicitAny: the report is this file's own JSON, printed as it was built.
function printTable(r: Record<string, any>) {
  const rows: string[][] = [['figure', 'aiaas', 'floor', 'ratio', 'target']];
  const c = r.coldStart;
  rows.push([
    'cold start → first prediction',
    `${c.ms} ms`,
    `${c.floorMs} ms (node -e 0)`,
    `${c.ratio}×`,
    '≤ 2.0×',
  ]);
  rows.push(['  naive (umbrella tfjs, unbundled)', `${c.naiveMs} ms`, '', `${c.naiveRatio}×`, '']);
  const w = r.warm;
  rows.push([
    'warm predict throughput',
    `${w.ours.requestsPerSecond} req/s (p50 ${w.ours.p50Ms} ms, p99 ${w.ours.p99Ms} ms)`,
    `${w.floor.requestsPerSecond} req/s (bare node http)`,
    `${w.throughputRatio}×`,
    '≥ 0.6×',
  ]);
  const m = r.modelLoad;
  rows.push([
    `model load (${m.megabytes} MB, ${m.shards} shards)`,
    `${m.ms} ms`,
    `${m.floorMs} ms (raw parallel GET)`,
    `${m.ratio}×`,
    '≥ 0.8×',
  ]);
  if (r.synth) {
    rows.push([
      'cdk synth 1 / 10 / 50 models',
      `${r.synth.seconds['1']} / ${r.synth.seconds['10']} / ${r.synth.seconds['50']} s`,
      '',
      `${r.synth.ratio50to1}×`,
      '≤ 3×',
    ]);
  }
  for (const [kind, sizes] of Object.entries(
    r.batch.instancesPerSecond as Record<string, Record<string, number>>,
  )) {
    rows.push([`batch ${kind}: instances/s at 1 / 100 / 10k`, Object.values(sizes).join(' / '), '', '', '']);
  }
  const a = r.artifacts;
  rows.push([
    'function zip / layer zip',
    `${a.functionZipMB} MB / ${a.layerZipMB} MB`,
    `250 MB unzipped limit; tfjs-node ${a.tfjsNodeUnzippedMB} MB`,
    '',
    '',
  ]);
  rows.push([
    'memory over 10k predictions',
    `RSS ${r.memory.rssMB.join(' → ')} MB`,
    `tensors ${r.memory.tensorCount.join(' → ')}`,
    r.memory.flat ? 'flat' : 'GROWS',
    'flat',
  ]);
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => (row[i] ?? '').length)));
  for (const row of rows)
    process.stdout.write(`${row.map((cell, i) => cell.padEnd(widths[i]!)).join('  ')}\n`);
  process.stdout.write(`\nmachine: ${JSON.stringify(r.machine)}\n`);
}

await main();
