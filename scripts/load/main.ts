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

import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DIST, ROOT } from '../../cli/paths.js';
import { FaultProxy } from '../local/fault-proxy.js';
import { localFunctionEnv, startLocalS3 } from '../local/s3.js';
import { type Options, parseArgs } from './options.js';
import { type Phase, runPhase } from './phase.js';
import { buildReport, printTable } from './report.js';
import { buildRequests, checkAnswer, publishExample } from './requests.js';
import { RUNTIME_MODULE, serve, startServerChild } from './server.js';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

const BUNDLE = join(DIST, 'functions/inference/index.mjs');

const log = (line: string) => process.stderr.write(`${line}\n`);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The parent's side: registry, model, server child, the three phases, the report. */
async function run(options: Options) {
  if (!existsSync(BUNDLE) || !existsSync(RUNTIME_MODULE)) throw new Error('run npm run build first');
  const dir = mkdtempSync(join(tmpdir(), 'aiaas-load-'));
  const s3 = await startLocalS3({ directory: dir });
  let server: ChildProcess | undefined;
  const { createRuntime } = await import('../../layers/tfjs-runtime/runtime.js');
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
    await sleep(1_500); // one more sample after the load
    const during = child.samples.slice(samplesBefore);
    const mixedProblems = [...child.problems];

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
    const report = buildReport({
      options,
      baseline,
      mix: mix.map((m) => m.expect.name),
      mixed,
      during,
      mixedProblems,
      serverLogLines: child.problems.length,
      healthy,
      silent,
      silentConnections,
      failedAliasChecks: failedChecks,
    });
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
