/**
 * `npm run bench [-- --json] [-- --quick]`: every figure beside its floor, measured in the same run
 * (these machines are noisy: compare ratios, not absolute times). Never part of `npm test`.
 */

import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { zipSync } from 'fflate';
import { DEFAULT_LIMITS } from '../../functions/inference/api.js';
import { InferenceService } from '../../functions/inference/service.js';
import { AIAAS_FAST_PATH, AIAAS_MODEL } from '../../functions/shared/env.js';
import { artifactsToFiles, captureIOHandler, signatureOf } from '../../functions/shared/model/artifacts.js';
import { ModelRegistry } from '../../functions/shared/registry/registry.js';
import { createS3Client, S3ObjectStore } from '../../functions/shared/registry/store.js';
import type { TfRuntime } from '../../functions/shared/runtime/types.js';
import { DEFAULT_BUCKET, LOCAL_CREDENTIALS, localFunctionEnv } from '../lib/local-stack.js';
import { node24 } from '../lib/node24.js';
import { DIST, ROOT } from '../lib/paths.js';
import { median, medianInterval, pairedRatios } from './stats.js';

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
const log = (line: string) => process.stderr.write(`${line}\n`);

const round = (x: number, digits = 2) => Number(x.toFixed(digits));
/** A ratio's 95 % interval (see stats.ts), rounded as the ratio is. */
const interval = (ratios: readonly number[]) => {
  const { low, high, confidence } = medianInterval(ratios);
  return { low: round(low), high: round(high), confidence: round(confidence, 3) };
};

/** Wall time of a fresh process from spawn to exit, median of `runs`. */
async function timeProcess(
  bin: string,
  argv: string[],
  env: NodeJS.ProcessEnv,
  runs: number,
): Promise<{ ms: number; samples: number[] }> {
  const samples: number[] = [];
  for (let i = 0; i < runs; i++) {
    const started = performance.now();
    const result = await new Promise<{ code: number | null; out: string }>((resolve) => {
      const child = spawn(bin, argv, { env, cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d));
      child.stderr.on('data', (d: Buffer) => (out += d));
      child.on('close', (code) => resolve({ code, out }));
    });
    const ms = performance.now() - started;
    if (result.code !== 0) throw new Error(`${argv.join(' ')} failed: ${result.out}`);
    samples.push(ms);
  }
  return { ms: median(samples), samples: samples.map((s) => round(s, 1)) };
}

/** Runs a child to completion and parses the JSON line it prints last. */
async function childJson<T>(bin: string, argv: string[], env: NodeJS.ProcessEnv): Promise<T> {
  const { code, out, err } = await new Promise<{ code: number | null; out: string; err: string }>(
    (resolve) => {
      const child = spawn(bin, argv, { env, cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      child.stdout.on('data', (d: Buffer) => (out += d));
      child.stderr.on('data', (d: Buffer) => (err += d));
      child.on('close', (code) => resolve({ code, out, err }));
    },
  );
  if (code !== 0) throw new Error(`${argv.join(' ')} failed (${code}): ${err}`);
  return JSON.parse(out.trim().split('\n').at(-1)!) as T;
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

/** A registry client of the s3rver child. */
function remoteS3(endpoint: string) {
  const client = createS3Client({ endpoint, credentials: LOCAL_CREDENTIALS, region: 'us-east-1' });
  return {
    endpoint,
    bucket: DEFAULT_BUCKET,
    registry: new ModelRegistry(new S3ObjectStore(client, DEFAULT_BUCKET, endpoint)),
    close: async () => client.destroy(),
  };
}

/** The example model's service in this process, alias never re-checked, nothing logged. */
function exampleService(
  registry: ModelRegistry,
  runtime: TfRuntime,
  fastPath: 'auto' | 'off' = 'auto',
): InferenceService {
  return new InferenceService({
    model: 'diabetes',
    alias: 'live',
    aliasCheckMs: 3_600_000,
    limits: DEFAULT_LIMITS,
    registry,
    runtime: async () => runtime,
    fastPath,
    log: { info() {}, warn() {}, error() {} },
  });
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
    child.on('error', reject);
  });
}

/**
 * Predict load from autocannon. Latency percentiles come from each response's own time: autocannon's
 * histogram keeps whole milliseconds, and a warm predict takes a fraction of one.
 */
async function load(url: string, body: string, seconds: number, connections = 16, server?: ChildProcess) {
  const latencies: number[] = [];
  const cpuBefore = cpuMs(server?.pid);
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon(
      {
        url,
        method: 'POST',
        body,
        headers: { 'content-type': 'application/json' },
        connections,
        duration: seconds,
      },
      (error, done) => (error ? reject(error) : resolve(done)),
    );
    instance.on('response', (_client: unknown, _status: number, _bytes: number, ms: number) => {
      latencies.push(ms);
    });
  });
  latencies.sort((a, b) => a - b);
  const percentileUs = (p: number) =>
    Math.round((latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))] ?? 0) * 1000);
  return {
    requestsPerSecond: round(result.requests.average, 0),
    p50Us: percentileUs(0.5),
    p99Us: percentileUs(0.99),
    // The server's own CPU per request (user + system): steadier than req/s on a drifting VM.
    ...cpuPerRequest(server?.pid, cpuBefore, result.requests.total),
    non2xx: result.non2xx,
    errors: result.errors,
  };
}

/** CPU time (user + system) a process has used, in ms, where /proc tells it (Linux). */
function cpuMs(pid: number | undefined): number | undefined {
  if (pid === undefined || !existsSync(`/proc/${pid}/stat`)) return undefined;
  // Fields after the command name: state is 3rd, utime 14th and stime 15th (in clock ticks, 100 Hz).
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

function cpuPerRequest(pid: number | undefined, before: number | undefined, requests: number) {
  const after = cpuMs(pid);
  if (before === undefined || after === undefined || requests === 0) return {};
  return { serverCpuUsPerRequest: round(((after - before) * 1000) / requests, 1) };
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
    if (want('coldStart')) {
      // 1. Cold start. Floor and ours alternate, so a burst of noise from another process on this
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
      report.coldStart = {
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

    if (want('warm')) {
      // 2. Warm: HTTP load through the local function-URL server vs a bare Node server, both on the
      // same Node binary, alternating rounds; the ratio is of the medians.
      log('warm throughput…');
      const seconds = quick ? 3 : 5;
      // Five rounds a side: on a 2-vCPU VM shared with the load generator a single round moves by
      // ±20 %, and the median of five holds still where three did not.
      const rounds = quick ? 1 : 5;
      const bare = await startChild(node, [join(ROOT, 'scripts/bench/children/bare-server.mjs')], env);
      const stack = await startChild(
        node,
        ['--import', 'tsx', join(ROOT, 'scripts/bench/children/stack-server.ts')],
        env,
      );
      children.push(bare.child, stack.child);
      const stackUrl = `http://127.0.0.1:${stack.port}/v1/models/diabetes:predict`;
      const bareUrl = `http://127.0.0.1:${bare.port}/`;
      await load(stackUrl, body, 2); // warm-up: the first request loads the model; JIT settles
      await load(bareUrl, body, 2);
      const floorRounds: Awaited<ReturnType<typeof load>>[] = [];
      const oursRounds: Awaited<ReturnType<typeof load>>[] = [];
      for (let i = 0; i < rounds; i++) {
        floorRounds.push(await load(bareUrl, body, seconds, 16, bare.child));
        oursRounds.push(await load(stackUrl, body, seconds, 16, stack.child));
      }
      const mid = (xs: Awaited<ReturnType<typeof load>>[]) =>
        [...xs].sort((x, y) => x.requestsPerSecond - y.requestsPerSecond)[Math.floor(xs.length / 2)]!;
      const floorLoad = mid(floorRounds);
      const oursLoad = mid(oursRounds);
      // Latency without queueing: one connection, one request at a time.
      const unloaded = { ours: await load(stackUrl, body, 2, 1), floor: await load(bareUrl, body, 2, 1) };
      report.warm = {
        // The median of each round's ratio (floor and aiaas measured back to back): this VM's speed
        // drifts by up to 2× within a minute, and a ratio of medians taken across such a drift says
        // more about the drift than about aiaas.
        throughputRatio: round(
          median(
            pairedRatios(
              oursRounds.map((o) => o.requestsPerSecond),
              floorRounds.map((f) => f.requestsPerSecond),
            ),
          ),
        ),
        // Five rounds a side give only [min, max] as an interval (93.75 %).
        throughputRatioInterval: interval(
          pairedRatios(
            oursRounds.map((o) => o.requestsPerSecond),
            floorRounds.map((f) => f.requestsPerSecond),
          ),
        ),
        ratioOfMedians: round(oursLoad.requestsPerSecond / floorLoad.requestsPerSecond),
        ours: oursLoad,
        floor: floorLoad,
        rounds: {
          ours: oursRounds.map((r) => r.requestsPerSecond),
          floor: floorRounds.map((r) => r.requestsPerSecond),
        },
        ...([...oursRounds, ...floorRounds].every((r) => r.serverCpuUsPerRequest !== undefined) && {
          serverCpuUsPerRequest: {
            ours: median(oursRounds.map((r) => r.serverCpuUsPerRequest!)),
            floor: median(floorRounds.map((r) => r.serverCpuUsPerRequest!)),
          },
        }),
        connections: 16,
        secondsPerRound: seconds,
        oneConnection: {
          ours: { p50Us: unloaded.ours.p50Us, p99Us: unloaded.ours.p99Us },
          floor: { p50Us: unloaded.floor.p50Us, p99Us: unloaded.floor.p99Us },
        },
        target: '≥ 0.6× the bare server',
      };
      bare.child.kill();
      stack.child.kill();
    }

    if (want('batch')) {
      // 3. Batch: instances per second by batch size and backend.
      log('batch…');
      const batch: Record<string, Record<string, number>> = {};
      // The example model takes the fast path; the tfjs rows turn it off to measure the backends.
      const kinds: ('fast-path' | TfRuntime['kind'])[] = ['fast-path', 'wasm', 'cpu'];
      for (const kind of kinds) {
        const backend = kind === 'fast-path' ? 'wasm' : kind;
        await runtime.tf.setBackend(backend);
        const service = exampleService(
          s3.registry,
          { ...runtime, kind: backend },
          kind === 'fast-path' ? 'auto' : 'off',
        );
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
    }

    if (want('modelLoad')) {
      // 4. Model load: a ≥ 50 MB sharded model, fetched, verified and built vs a raw parallel GET.
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
      report.modelLoad = {
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

    if (want('artifacts')) {
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
    }

    if (want('synth')) {
      // 6. Synth time for 1, 10 and 50 models.
      {
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
    }

    if (want('memory')) {
      // 7. Memory over 10,000 predictions.
      log('memory over 10,000 predictions…');
      // Both executors: the fast path (the example's default) and tfjs on wasm, whose tensors must
      // all be freed.
      const memory: Record<string, { rssMB: number[]; tensorCount: number[] }> = {};
      for (const fastPath of ['auto', 'off'] as const) {
        const service = exampleService(s3.registry, runtime, fastPath);
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
        memory[fastPath === 'auto' ? 'fastPath' : 'tfjs'] = { rssMB: rss, tensorCount: tensors };
      }
      const tfjs = memory.tfjs!;
      // Flat: no tensor left behind, and RSS within 10 % of where it started.
      const flat = (m: { rssMB: number[]; tensorCount: number[] }) =>
        m.tensorCount.every((t) => t === m.tensorCount[0]) && Math.max(...m.rssMB) <= 1.1 * m.rssMB[0]!;
      report.memory = {
        rssMB: tfjs.rssMB,
        tensorCount: tfjs.tensorCount,
        fastPathRssMB: memory.fastPath!.rssMB,
        flat: flat(tfjs) && flat(memory.fastPath!),
      };
    }
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

// biome-ignore lint/suspicious/noExplicitAny: the report is this file's own JSON, printed as it was built.
function printTable(r: Record<string, any>) {
  // biome-ignore lint/suspicious/noExplicitAny: as above.
  const ratio = (x: number, iv: any) =>
    iv ? `${x}× (${Math.round(iv.confidence * 100)} %: ${iv.low}–${iv.high})` : `${x}×`;
  const rows: string[][] = [['figure', 'aiaas', 'floor', 'ratio', 'target']];
  const c = r.coldStart;
  if (c)
    rows.push([
      'cold start → first prediction',
      `${c.ms} ms`,
      `${c.floorMs} ms (node -e 0)`,
      ratio(c.ratio, c.ratioInterval),
      '≤ 2.0×',
    ]);
  if (c?.deployedMs !== undefined)
    rows.push([
      '  with deployed settings (metrics, INFO)',
      `${c.deployedMs} ms`,
      '',
      `${c.deployedRatio}×`,
      '',
    ]);
  if (c) rows.push(['  same model on tfjs (fast path off)', `${c.tfjsMs} ms`, '', `${c.tfjsRatio}×`, '']);
  if (c) rows.push(['  naive (umbrella tfjs, unbundled)', `${c.naiveMs} ms`, '', `${c.naiveRatio}×`, '']);
  const w = r.warm;
  if (w)
    rows.push([
      'warm predict throughput',
      `${w.ours.requestsPerSecond} req/s (p50 ${w.ours.p50Us} µs, p99 ${w.ours.p99Us} µs)`,
      `${w.floor.requestsPerSecond} req/s (p50 ${w.floor.p50Us} µs, p99 ${w.floor.p99Us} µs; bare node http)`,
      ratio(w.throughputRatio, w.throughputRatioInterval),
      '≥ 0.6×',
    ]);
  if (w?.serverCpuUsPerRequest)
    rows.push([
      '  server CPU per request',
      `${w.serverCpuUsPerRequest.ours} µs`,
      `${w.serverCpuUsPerRequest.floor} µs`,
      '',
      '',
    ]);
  if (w?.oneConnection)
    rows.push([
      '  one request at a time (latency)',
      `p50 ${w.oneConnection.ours.p50Us} µs, p99 ${w.oneConnection.ours.p99Us} µs`,
      `p50 ${w.oneConnection.floor.p50Us} µs, p99 ${w.oneConnection.floor.p99Us} µs`,
      '',
      '',
    ]);
  const m = r.modelLoad;
  if (m)
    rows.push([
      `model load (${m.megabytes} MB, ${m.shards} shards)`,
      `${m.ms} ms`,
      `${m.floorMs} ms (raw parallel GET)`,
      ratio(m.ratio, m.ratioInterval),
      '≥ 0.8×',
    ]);
  if (m?.touchedFloorMs)
    rows.push([
      '  floor into buffers already touched',
      '',
      `${m.touchedFloorMs} ms`,
      `${m.touchedFloorRatio}×`,
      '',
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
    (r.batch?.instancesPerSecond ?? {}) as Record<string, Record<string, number>>,
  )) {
    rows.push([`batch ${kind}: instances/s at 1 / 100 / 10k`, Object.values(sizes).join(' / '), '', '', '']);
  }
  const a = r.artifacts;
  if (a)
    rows.push([
      'function zip / layer zip',
      `${a.functionZipMB} MB / ${a.layerZipMB} MB`,
      `250 MB unzipped limit; tfjs-node ${a.tfjsNodeUnzippedMB} MB`,
      '',
      '',
    ]);
  if (r.memory)
    rows.push([
      'memory over 10k predictions',
      `tfjs RSS ${r.memory.rssMB.join(' → ')} MB; fast path RSS ${r.memory.fastPathRssMB.join(' → ')} MB`,
      `tensors ${r.memory.tensorCount.join(' → ')}`,
      r.memory.flat ? 'flat' : 'GROWS',
      'flat',
    ]);
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => (row[i] ?? '').length)));
  for (const row of rows)
    process.stdout.write(`${row.map((cell, i) => cell.padEnd(widths[i]!)).join('  ')}\n`);
  process.stdout.write(
    '\nratio: the median of back-to-back pairs; in brackets, the interval that holds the median of a much longer run with that confidence (order statistics).\n',
  );
  process.stdout.write(`machine: ${JSON.stringify(r.machine)}\n`);
}

await main();
