/**
 * The bench's child processes: a fresh process timed from spawn to exit, a child run to completion
 * for the JSON line it prints last, a server child that prints `ready <port>`, and a process's own
 * CPU time where /proc tells it.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { ROOT } from '../../cli/paths.js';
import { median, round } from './stats.js';

/** Wall time of a fresh process from spawn to exit, median of `runs`. */
export async function timeProcess(
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
export async function childJson<T>(bin: string, argv: string[], env: NodeJS.ProcessEnv): Promise<T> {
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

export function startChild(
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

/** CPU time (user + system) a process has used, in ms, where /proc tells it (Linux). */
export function cpuMs(pid: number | undefined): number | undefined {
  if (pid === undefined || !existsSync(`/proc/${pid}/stat`)) return undefined;
  // Fields after the command name: state is 3rd, utime 14th and stime 15th (in clock ticks, 100 Hz).
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

export function cpuPerRequest(pid: number | undefined, before: number | undefined, requests: number) {
  const after = cpuMs(pid);
  if (before === undefined || after === undefined || requests === 0) return {};
  return { serverCpuUsPerRequest: round(((after - before) * 1000) / requests, 1) };
}
