/**
 * `npm run load [-- --seconds 60] [-- --warm-seconds 15] [-- --connections 32] [-- --json]`: a load
 * run against the local stack, never part of `npm test`.
 *
 * s3rver runs in this process; the function-URL server (on the built inference bundle) runs in a
 * child process, so autocannon does not share its CPU and its memory is measured alone. The child
 * reports its RSS and the tfjs tensor count every second: the bundle imports the runtime module
 * (dist/layers/.../runtime.mjs) by URL, so the child importing the same URL after the model has
 * loaded gets the same module instance, and so the same tfjs engine.
 *
 * The mix cycles through good predict requests (answers checked against an in-process computation
 * of the same weights) and client mistakes (malformed JSON, wrong shape, non-numbers, non-JSON
 * literals, too many instances, wrong method, several unknown models), each with its expected status.
 *
 * Then two shorter phases with only the loaded model's requests (warm): one with the registry
 * healthy, one with it silent (a proxy between the function and s3rver that accepts connections
 * and never answers, across at least one alias re-check). A warm function must answer from memory
 * meanwhile: the silent phase must keep at least 0.8× the healthy phase's throughput, with no 5xx.
 *
 * Exits non-zero on any 5xx (in any phase), an unknown model answered other than 404, a connection
 * error, a timeout, a wrong answer, tensor-count drift or a silent phase below 0.8×. Loopback only.
 */

import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import autocannon from 'autocannon';
import { AIAAS_BUCKET, AIAAS_S3_ENDPOINT, requireString } from '../functions/shared/env.js';
import { artifactsToFiles, captureIOHandler, signatureOf } from '../functions/shared/model/artifacts.js';
import { ModelRegistry } from '../functions/shared/registry/registry.js';
import { createS3Client, S3ObjectStore } from '../functions/shared/registry/store.js';
import type { TfRuntime } from '../functions/shared/runtime/types.js';
import { FaultProxy } from './lib/fault-proxy.js';
import {
  LOCAL_CREDENTIALS,
  localFunctionEnv,
  startFunctionUrlServer,
  startLocalS3,
} from './lib/local-stack.js';
import { DIST, ROOT } from './lib/paths.js';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

const BUNDLE = join(DIST, 'functions/inference/index.mjs');
/** Where the bundle finds the runtime module when run locally (see functions/shared/runtime/load.ts). */
const RUNTIME_MODULE = join(DIST, 'layers/tfjs-runtime/aiaas-runtime/runtime.mjs');
const MODEL = 'diabetes';

/** Names no model has: each must be a 404 (the local server decides with a listing per request). */
const UNKNOWN_MODELS = ['nope', 'ghost', 'missing-model', 'diabetes2'];
/** The silent phase's warm throughput must be at least this share of the healthy one's. */
const SILENT_THROUGHPUT_FLOOR = 0.8;

interface Options {
  seconds: number;
  /** Length of each warm phase (registry healthy, then silent). */
  warmSeconds: number;
  connections: number;
  aliasCheckSeconds: number;
  json: boolean;
}

function parseArgs(argv: string[]): Options & { serve: boolean } {
  const options = {
    seconds: 60,
    warmSeconds: 15,
    connections: 32,
    aliasCheckSeconds: 5,
    json: false,
    serve: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const number = (name: string, min: number, max: number) => {
      const value = Number(argv[++i]);
      if (!Number.isInteger(value) || value < min || value > max) {
        throw new Error(`${name} must be an integer from ${min} to ${max}`);
      }
      return value;
    };
    if (arg === '--json') options.json = true;
    else if (arg === '--serve') options.serve = true;
    else if (arg === '--seconds') options.seconds = number('--seconds', 1, 3600);
    else if (arg === '--warm-seconds') options.warmSeconds = number('--warm-seconds', 2, 600);
    else if (arg === '--connections') options.connections = number('--connections', 1, 1024);
    else if (arg === '--alias-check') options.aliasCheckSeconds = number('--alias-check', 1, 3600);
    else
      throw new Error(
        `unknown argument ${arg} (use --seconds N, --warm-seconds N, --connections N, --alias-check S, --json)`,
      );
  }
  return options;
}

const log = (line: string) => process.stderr.write(`${line}\n`);
const round = (x: number, digits = 1) => Number(x.toFixed(digits));
const mb = (bytes: number) => round(bytes / 2 ** 20);

// ---- the child: the function-URL server --------------------------------------------------------

interface Sample {
  readonly t: number;
  readonly rss: number;
  readonly heapUsed: number;
  readonly external: number;
  readonly arrayBuffers: number;
  readonly tensors: number | null;
  readonly runtime: string | null;
}

async function serve(options: Options) {
  const endpoint = requireString(process.env, AIAAS_S3_ENDPOINT);
  const bucket = requireString(process.env, AIAAS_BUCKET);
  const client = createS3Client({ endpoint, credentials: LOCAL_CREDENTIALS, region: 'us-east-1' });
  const server = await startFunctionUrlServer({
    endpoint,
    bucket,
    registry: new ModelRegistry(new S3ObjectStore(client, bucket, endpoint)),
    aliasCheckSeconds: options.aliasCheckSeconds,
  });
  let runtime: TfRuntime | undefined;
  process.on('message', (message) => {
    if (message !== 'model-loaded' || runtime) return;
    // Only after the bundle has initialized tfjs: createRuntime() then returns its instance.
    void import(pathToFileURL(RUNTIME_MODULE).href)
      .then((mod: { createRuntime: () => Promise<TfRuntime> }) => mod.createRuntime())
      .then((r) => {
        runtime = r;
      });
  });
  const started = performance.now();
  const timer = setInterval(() => {
    const m = process.memoryUsage();
    const sample: Sample = {
      t: round((performance.now() - started) / 1000),
      rss: m.rss,
      heapUsed: m.heapUsed,
      external: m.external,
      arrayBuffers: m.arrayBuffers,
      tensors: runtime ? runtime.tf.memory().numTensors : null,
      runtime: runtime?.kind ?? null,
    };
    process.send?.(sample);
  }, 1_000);
  process.on('disconnect', () => {
    clearInterval(timer);
    void server.close().finally(() => process.exit(0));
  });
  process.stdout.write(`ready ${new URL(server.url).port}\n`);
}

// ---- the parent: registry, model, load, checks -------------------------------------------------

/** A Dense 8→10→1 network like the diabetes example, with fixed weights so answers vary by input. */
async function publishExample(runtime: TfRuntime, registry: ModelRegistry) {
  const { tf, layers } = runtime;
  const net = layers.sequential({
    layers: [
      layers.layers.dense({ units: 10, activation: 'relu', inputShape: [8] }),
      layers.layers.dense({ units: 1, activation: 'sigmoid' }),
    ],
  });
  const kernel1 = Array.from({ length: 80 }, (_, i) => Math.sin(i + 1) * 0.05);
  const bias1 = Array.from({ length: 10 }, (_, i) => Math.cos(i) * 0.1);
  const kernel2 = Array.from({ length: 10 }, (_, i) => Math.sin(3 * i + 1) * 0.4);
  net.layers[0]!.setWeights([tf.tensor2d(kernel1, [8, 10]), tf.tensor1d(bias1)]);
  net.layers[1]!.setWeights([tf.tensor2d(kernel2, [10, 1]), tf.tensor1d([-0.2])]);
  const capture = captureIOHandler();
  await net.save(capture);
  const meta = await registry.publish(MODEL, artifactsToFiles(capture.artifacts!), {
    format: 'layers-model',
    signature: signatureOf(runtime, net),
    metrics: {},
    source: { kind: 'publish', load: true },
    parent: null,
  });
  await registry.setAlias(MODEL, 'live', meta.version);
  const predict = (rows: number[][]): number[] => {
    const x = tf.tensor2d(rows);
    const y = net.predict(x) as ReturnType<typeof tf.tensor2d>;
    const values = Array.from(y.dataSync());
    x.dispose();
    y.dispose();
    return values;
  };
  return { version: meta.version, predict, dispose: () => net.dispose() };
}

const PIMA: number[][] = [
  [6, 148, 72, 35, 0, 33.6, 0.627, 50],
  [1, 85, 66, 29, 0, 26.6, 0.351, 31],
  [8, 183, 64, 0, 0, 23.3, 0.672, 32],
  [1, 89, 66, 23, 94, 28.1, 0.167, 21],
  [0, 137, 40, 35, 168, 43.1, 2.288, 33],
  [5, 116, 74, 0, 0, 25.6, 0.201, 30],
  [3, 78, 50, 32, 88, 31, 0.248, 26],
  [10, 115, 0, 0, 0, 35.3, 0.134, 29],
];

interface Expectation {
  readonly name: string;
  readonly status: number;
  /** Expected first output of each instance, for good requests. */
  readonly predictions?: number[];
  readonly columnar?: boolean;
}

interface Tally {
  count: number;
  wrong: number;
  statuses: Record<string, number>;
}

function buildRequests(predict: (rows: number[][]) => number[]) {
  const json = { 'content-type': 'application/json' };
  const path = `/v1/models/${MODEL}:predict`;
  const good = (name: string, rows: number[][], columnar = false, route = path) => ({
    request: {
      method: 'POST' as const,
      path: route,
      headers: json,
      body: JSON.stringify(columnar ? { inputs: rows } : { instances: rows }),
    },
    expect: { name, status: 200, predictions: predict(rows), columnar } satisfies Expectation,
  });
  const bad = (name: string, status: number, body: string | undefined, method = 'POST', route = path) => ({
    request: {
      method: method as 'POST',
      path: route,
      headers: json,
      ...(body !== undefined ? { body } : {}),
    },
    expect: { name, status } satisfies Expectation,
  });
  return [
    good('predict 1 instance', [PIMA[0]!]),
    bad('malformed JSON', 400, '{"instances": [[6, 148, 72'),
    good('predict 4 instances', PIMA.slice(1, 5)),
    bad('wrong shape (7 features)', 400, JSON.stringify({ instances: [PIMA[0]!.slice(0, 7)] })),
    good('predict columnar', PIMA.slice(5, 8), true),
    bad('non-numeric value', 400, JSON.stringify({ instances: [[6, 'high', 72, 35, 0, 33.6, 0.627, 50]] })),
    good('predict via /fn root', [PIMA[3]!], false, `/fn/${MODEL}/`),
    // `NaN` itself is a TF Serving token (api.ts takes it); a lower-case one is not JSON at all.
    bad('non-JSON literal (nan)', 400, '{"instances": [[nan, 148, 72, 35, 0, 33.6, 0.627, 50]]}'),
    good('predict versioned path', [PIMA[6]!], false, `/v1/models/${MODEL}/versions/1:predict`),
    bad('wrong method (GET :predict)', 405, undefined, 'GET'),
    good('predict 8 instances', PIMA),
    ...UNKNOWN_MODELS.map((name) =>
      bad(
        `unknown model (${name})`,
        404,
        JSON.stringify({ instances: [PIMA[0]] }),
        'POST',
        `/v1/models/${name}:predict`,
      ),
    ),
    bad('too many instances (10,001)', 400, JSON.stringify({ instances: Array(10_001).fill(PIMA[0]) })),
    bad('wrong method (PUT /)', 405, '{}', 'PUT', `/fn/${MODEL}/`),
  ];
}

function checkAnswer(expectation: Expectation, status: number, body: string): string | undefined {
  if (status !== expectation.status)
    return `status ${status}, expected ${expectation.status}: ${body.slice(0, 200)}`;
  let parsed: { predictions?: number[][]; outputs?: number[][]; error?: string };
  try {
    parsed = JSON.parse(body) as typeof parsed;
  } catch {
    return `body is not JSON: ${body.slice(0, 200)}`;
  }
  if (status !== 200) {
    return typeof parsed.error === 'string' && Object.keys(parsed).length === 1
      ? undefined
      : `error body is not {"error": "..."}: ${body.slice(0, 200)}`;
  }
  const got = expectation.columnar ? parsed.outputs : parsed.predictions;
  const want = expectation.predictions!;
  if (!Array.isArray(got) || got.length !== want.length)
    return `wrong number of predictions: ${body.slice(0, 200)}`;
  for (const [i, w] of want.entries()) {
    const g = got[i]?.[0];
    // The server may run the wasm backend and this process the cpu one: float32 rounding differs.
    if (typeof g !== 'number' || Math.abs(g - w) > 1e-5) return `prediction ${i} is ${g}, expected ${w}`;
  }
  return undefined;
}

function startServerChild(env: NodeJS.ProcessEnv, options: Options) {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      fileURLToPath(import.meta.url),
      '--serve',
      '--alias-check',
      String(options.aliasCheckSeconds),
    ],
    { env, cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe', 'ipc'] },
  );
  const samples: Sample[] = [];
  const problems: string[] = [];
  child.on('message', (sample: Sample) => samples.push(sample));
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString();
    let newline = stderr.indexOf('\n');
    while (newline >= 0) {
      const line = stderr.slice(0, newline);
      stderr = stderr.slice(newline + 1);
      if (line.trim()) problems.push(line.slice(0, 500));
      newline = stderr.indexOf('\n');
    }
  });
  const ready = new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const match = /ready (\d+)/.exec(out);
      if (match) resolve(Number(match[1]));
    });
    child.on('exit', (code) =>
      reject(new Error(`the server child exited with ${code}: ${problems.join('\n')}`)),
    );
  });
  return { child, samples, problems, ready };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Phase {
  readonly result: autocannon.Result;
  readonly tallies: Map<string, Tally>;
  readonly examples: string[];
}

/** One autocannon run of `mix` (cycled per connection), every answer checked against its expectation. */
async function runPhase(
  base: string,
  mix: ReturnType<typeof buildRequests>,
  seconds: number,
  connections: number,
): Promise<Phase> {
  const tallies = new Map<string, Tally>();
  const examples: string[] = [];
  const requests = mix.map(({ request, expect }) => {
    const tally: Tally = { count: 0, wrong: 0, statuses: {} };
    tallies.set(expect.name, tally);
    return {
      ...request,
      onResponse: (status: number, body: string) => {
        tally.count++;
        tally.statuses[status] = (tally.statuses[status] ?? 0) + 1;
        const problem = checkAnswer(expect, status, body);
        if (problem) {
          tally.wrong++;
          if (examples.length < 5) examples.push(`${expect.name}: ${problem}`);
        }
      },
    };
  });
  const result = await autocannon({ url: base, connections, duration: seconds, timeout: 10, requests });
  return { result, tallies, examples };
}

async function run(options: Options) {
  if (!existsSync(BUNDLE) || !existsSync(RUNTIME_MODULE)) throw new Error('run npm run build first');
  const dir = mkdtempSync(join(tmpdir(), 'aiaas-load-'));
  const s3 = await startLocalS3({ directory: dir });
  let server: ChildProcess | undefined;
  const { createRuntime } = await import('../layers/tfjs-runtime/runtime.js');
  const runtime = await createRuntime('cpu');
  const example = await publishExample(runtime, s3.registry);
  // The function-URL server reaches the registry through this proxy, which the silent phase mutes.
  const proxy = new FaultProxy(Number(new URL(s3.endpoint).port));
  const proxyUrl = await proxy.start();
  const watchdog = setTimeout(
    () => {
      log('load: watchdog expired; stopping');
      server?.kill();
      process.exit(3);
    },
    (options.seconds + 2 * options.warmSeconds + 150) * 1000,
  );
  try {
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      // Only warnings and errors from the function (e.g. "tensors leaked") are logged; counted below.
      ...localFunctionEnv({ bucket: s3.bucket, endpoint: proxyUrl }),
    };
    const child = startServerChild(env, options);
    server = child.child;
    const port = await child.ready;
    const base = `http://127.0.0.1:${port}`;

    const mix = buildRequests(example.predict);
    // Warm-up: the cold start loads the model; then the child may read the bundle's tfjs engine.
    for (const { request, expect } of mix) {
      const res = await fetch(base + request.path, {
        method: request.method,
        headers: request.headers,
        ...(request.body !== undefined ? { body: request.body } : {}),
      });
      const problem = checkAnswer(expect, res.status, await res.text());
      if (problem) throw new Error(`warm-up ${expect.name}: ${problem}`);
    }
    child.child.send('model-loaded');
    await sleep(2_000);
    const baseline = child.samples.at(-1);
    log(
      `load: ${options.seconds} s at ${options.connections} connections on ${base} (server runtime: ${baseline?.runtime ?? '?'})…`,
    );

    const samplesBefore = child.samples.length;
    const mixed = await runPhase(base, mix, options.seconds, options.connections);
    const { result, tallies, examples } = mixed;
    await sleep(1_500); // one more sample after the load
    const during = child.samples.slice(samplesBefore);
    const rss = during.map((s) => s.rss);
    const tensors = during.map((s) => s.tensors).filter((t): t is number => t !== null);
    const third = Math.max(1, Math.floor(rss.length / 3));
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
    const rssFirst = median(rss.slice(0, third));
    const rssLast = median(rss.slice(-third));
    const wrong = [...tallies.values()].reduce((n, t) => n + t.wrong, 0);
    const statusCodes = Object.fromEntries(
      Object.entries(result.statusCodeStats ?? {}).map(([code, s]) => [code, s.count ?? 0]),
    );
    const warnings = child.problems.filter((line) =>
      /"level":"(WARN|ERROR|CRITICAL)"|Error|leak/i.test(line),
    );
    const unknown = [...tallies].filter(([name]) => name.startsWith('unknown model'));
    const unknownStatuses: Record<string, number> = {};
    for (const [, t] of unknown) {
      for (const [code, n] of Object.entries(t.statuses))
        unknownStatuses[code] = (unknownStatuses[code] ?? 0) + n;
    }

    // Warm phases: only the loaded model's requests, the registry healthy, then silent.
    const warmMix = mix.filter((m) => !m.expect.name.startsWith('unknown model'));
    log(`load: warm phases, ${options.warmSeconds} s each: registry healthy, then silent…`);
    if (options.warmSeconds <= options.aliasCheckSeconds) {
      log(
        `load: --warm-seconds ${options.warmSeconds} may end before the next re-check (--alias-check ${options.aliasCheckSeconds})`,
      );
    }
    const healthy = await runPhase(base, warmMix, options.warmSeconds, options.connections);
    const logLinesBefore = child.problems.length;
    proxy.set({ kind: 'blackhole' });
    // Only the functions' alias re-checks reach the registry in a warm phase (a connection per attempt).
    const connectionsBefore = proxy.connections;
    let silent: Phase;
    try {
      silent = await runPhase(base, warmMix, options.warmSeconds, options.connections);
    } finally {
      proxy.set({ kind: 'pass' });
    }
    const silentConnections = proxy.connections - connectionsBefore;
    const failedChecks = child.problems
      .slice(logLinesBefore)
      .filter((line) => line.includes('alias check failed')).length;
    const phaseReport = (phase: Phase) => ({
      total: phase.result.requests.total,
      perSecond: round(phase.result.requests.average, 0),
      latencyMs: {
        p50: phase.result.latency.p50,
        p99: phase.result.latency.p99,
        max: phase.result.latency.max,
      },
      '5xx': phase.result['5xx'],
      errors: phase.result.errors,
      timeouts: phase.result.timeouts,
      wrong: [...phase.tallies.values()].reduce((n, t) => n + t.wrong, 0),
      examples: phase.examples,
    });
    const warm = {
      healthy: phaseReport(healthy),
      silent: {
        ...phaseReport(silent),
        registryConnections: silentConnections,
        failedAliasChecks: failedChecks,
      },
      ratio: round(silent.result.requests.average / Math.max(1, healthy.result.requests.average), 2),
    };

    const report = {
      at: new Date().toISOString(),
      machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model, node: process.version },
      settings: { ...options, serverRuntime: baseline?.runtime ?? null, mix: mix.map((m) => m.expect.name) },
      requests: {
        total: result.requests.total,
        perSecond: round(result.requests.average, 0),
        latencyMs: { p50: result.latency.p50, p99: result.latency.p99, max: result.latency.max },
        statusCodes,
        '2xx': result['2xx'],
        '4xx': result['4xx'],
        '5xx': result['5xx'],
        errors: result.errors,
        timeouts: result.timeouts,
      },
      answers: {
        checked: [...tallies.values()].reduce((n, t) => n + t.count, 0),
        wrong,
        examples,
        byRequest: Object.fromEntries([...tallies].map(([name, t]) => [name, t])),
      },
      memory: {
        samples: rss.length,
        rssMB: {
          min: mb(Math.min(...rss)),
          max: mb(Math.max(...rss)),
          firstThird: mb(rssFirst),
          lastThird: mb(rssLast),
        },
        rssGrowthMB: mb(rssLast - rssFirst),
        baselineRssMB: baseline ? mb(baseline.rss) : null,
        heapUsedMB: {
          min: mb(Math.min(...during.map((s) => s.heapUsed))),
          max: mb(Math.max(...during.map((s) => s.heapUsed))),
        },
        tensors: tensors.length
          ? { min: Math.min(...tensors), max: Math.max(...tensors), baseline: baseline?.tensors ?? null }
          : null,
      },
      serverLogLines: {
        total: child.problems.length,
        warnOrError: warnings.length,
        examples: warnings.slice(0, 3),
      },
      unknownModels: { names: UNKNOWN_MODELS, statusCodes: unknownStatuses },
      warm,
      checks: {
        zero5xx: result['5xx'] === 0,
        unknownModelsAll404: Object.keys(unknownStatuses).every((code) => code === '404'),
        noConnectionErrors: result.errors === 0 && result.timeouts === 0,
        answersCorrect: wrong === 0,
        tensorCountFlat: tensors.length > 0 && Math.min(...tensors) === Math.max(...tensors),
        // Lenient on purpose (GC and allocator noise): a leak of a few KB per request breaks it.
        rssBounded: rssLast - rssFirst < 128 * 2 ** 20,
        warmZero5xxBothPhases: warm.healthy['5xx'] === 0 && warm.silent['5xx'] === 0,
        warmAnswersCorrect:
          warm.healthy.wrong + warm.silent.wrong === 0 &&
          warm.healthy.errors + warm.silent.errors + warm.healthy.timeouts + warm.silent.timeouts === 0,
        // The silent phase must have crossed a re-check, or it proves nothing.
        silentPhaseRechecked: silentConnections > 0,
        silentThroughputHeld: warm.ratio >= SILENT_THROUGHPUT_FLOOR,
      },
    };
    const ok = Object.values(report.checks).every(Boolean);
    mkdirSync(join(ROOT, '.local'), { recursive: true });
    writeFileSync(join(ROOT, '.local/load-last.json'), JSON.stringify(report, null, 2));
    if (options.json) process.stdout.write(`${JSON.stringify({ ok, ...report })}\n`);
    else printTable(report, ok);
    return ok;
  } finally {
    clearTimeout(watchdog);
    server?.disconnect?.();
    server?.kill();
    example.dispose();
    await proxy.close();
    await s3.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

// biome-ignore lint/suspicious/noExplicitAny: the report is this file's own JSON, printed as it was built.
function printTable(r: Record<string, any>, ok: boolean) {
  const q = r.requests;
  const m = r.memory;
  const rows: [string, string][] = [
    ['duration / connections', `${r.settings.seconds} s / ${r.settings.connections}`],
    ['server runtime', String(r.settings.serverRuntime)],
    ['requests', `${q.total} (${q.perSecond}/s), p50 ${q.latencyMs.p50} ms, p99 ${q.latencyMs.p99} ms`],
    [
      'status codes',
      Object.entries(q.statusCodes)
        .map(([c, n]) => `${c}: ${n}`)
        .join(', '),
    ],
    ['5xx / errors / timeouts', `${q['5xx']} / ${q.errors} / ${q.timeouts}`],
    ['answers checked / wrong', `${r.answers.checked} / ${r.answers.wrong}`],
    [
      'server RSS min / max',
      `${m.rssMB.min} / ${m.rssMB.max} MB (growth ${m.rssGrowthMB} MB, ${m.samples} samples)`,
    ],
    ['server heap min / max', `${m.heapUsedMB.min} / ${m.heapUsedMB.max} MB`],
    ['tfjs tensors min / max', m.tensors ? `${m.tensors.min} / ${m.tensors.max}` : 'not readable'],
    ['server WARN/ERROR log lines', String(r.serverLogLines.warnOrError)],
    [
      'unknown models',
      `${r.unknownModels.names.join(', ')}: ${Object.entries(r.unknownModels.statusCodes)
        .map(([c, n]) => `${c}: ${n}`)
        .join(', ')}`,
    ],
    [
      'warm, registry healthy',
      `${r.warm.healthy.total} (${r.warm.healthy.perSecond}/s), p99 ${r.warm.healthy.latencyMs.p99} ms, max ${r.warm.healthy.latencyMs.max} ms, 5xx ${r.warm.healthy['5xx']}`,
    ],
    [
      'warm, registry silent',
      `${r.warm.silent.total} (${r.warm.silent.perSecond}/s), p99 ${r.warm.silent.latencyMs.p99} ms, max ${r.warm.silent.latencyMs.max} ms, 5xx ${r.warm.silent['5xx']}; ${r.warm.silent.registryConnections} registry connections, ${r.warm.silent.failedAliasChecks} failed re-checks`,
    ],
    ['silent / healthy throughput', `${r.warm.ratio}× (floor ${SILENT_THROUGHPUT_FLOOR}×)`],
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  for (const [k, v] of rows) process.stdout.write(`${k.padEnd(width)}  ${v}\n`);
  for (const [name, passed] of Object.entries(r.checks)) {
    process.stdout.write(`${passed ? 'ok  ' : 'FAIL'} ${name}\n`);
  }
  for (const example of [...r.answers.examples, ...r.warm.healthy.examples, ...r.warm.silent.examples])
    process.stdout.write(`  wrong: ${example}\n`);
  process.stdout.write(`${ok ? 'load run held' : 'load run FAILED'}\n`);
}

let options: ReturnType<typeof parseArgs>;
try {
  options = parseArgs(process.argv.slice(2));
} catch (error) {
  log(`load: ${(error as Error).message}`);
  process.exit(2);
}
if (options.serve) {
  await serve(options);
} else {
  run(options).then(
    (ok) => process.exit(ok ? 0 : 1),
    (error) => {
      log(`load: ${(error as Error).stack ?? error}`);
      process.exit(2);
    },
  );
}
