/**
 * The load run's server: the local function-URL server on the built inference bundle, in a child
 * process of its own so that autocannon does not share its CPU and its memory is measured alone.
 * The child reports its RSS and the tfjs tensor count every second: the bundle imports the runtime
 * module by URL, so the child importing the same URL after the model has loaded gets the same
 * module instance, and so the same tfjs engine. Its stderr lines are collected as `problems`.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { DIST, ROOT } from '../../cli/paths.js';
import { AIAAS_BUCKET, AIAAS_S3_ENDPOINT, requireString } from '../../functions/shared/env.js';
import { ModelRegistry } from '../../functions/shared/registry/registry.js';
import { createS3Client, S3ObjectStore } from '../../functions/shared/registry/store.js';
import type { TfRuntime } from '../../functions/shared/runtime/types.js';
import { startFunctionUrlServer } from '../local/function-url-server.js';
import { LOCAL_CREDENTIALS } from '../local/s3.js';

/** Where the bundle finds the runtime module when run locally (see functions/shared/runtime/load.ts). */
export const RUNTIME_MODULE = join(DIST, 'layers/tfjs-runtime/aiaas-runtime/runtime.mjs');
/** The entry the child runs, with `--serve`. */
const MAIN = fileURLToPath(new URL('./main.ts', import.meta.url));

const round = (x: number, digits = 1) => Number(x.toFixed(digits));

export interface Sample {
  readonly t: number;
  readonly rss: number;
  readonly heapUsed: number;
  readonly external: number;
  readonly arrayBuffers: number;
  readonly tensors: number | null;
  readonly runtime: string | null;
}

/** The child's side: serves until the parent disconnects. */
export async function serve(options: { aliasCheckSeconds: number }) {
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

/** The parent's side: starts the child; `ready` resolves to its port. */
export function startServerChild(env: NodeJS.ProcessEnv, options: { aliasCheckSeconds: number }) {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', MAIN, '--serve', '--alias-check', String(options.aliasCheckSeconds)],
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
