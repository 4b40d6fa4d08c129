/**
 * Bench section 2, warm: HTTP load (autocannon) through the local function-URL server against a
 * bare Node server, both children on the same Node binary, in alternating rounds; the server's CPU
 * per request where /proc tells it, and the latency of one request at a time.
 */
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { ROOT } from '../../../cli/paths.js';
import { cpuMs, cpuPerRequest, startChild } from '../processes.js';
import { type BenchContext, log } from '../setup.js';
import { interval, median, pairedRatios, round } from '../stats.js';

export async function warm({ node, env, quick, body, children }: BenchContext) {
  // Warm: HTTP load through the local function-URL server vs a bare Node server, both on the
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
  const figures = {
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
  return figures;
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
