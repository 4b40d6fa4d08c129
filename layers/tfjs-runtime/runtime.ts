/**
 * The tfjs runtime module. Built by esbuild into the Lambda layer (`/opt/aiaas-runtime/runtime.mjs`,
 * with the backend's .wasm files beside it) so that every model's function shares one copy, and
 * imported directly by the CLI and tests.
 *
 * Packages are imported one by one (core, layers, converter, backends), never the umbrella
 * `@tensorflow/tfjs`, which would also pull the WebGL backend and its start-up cost. What a cold
 * start of a layers model on wasm does not need is imported on first use: the converter (graph
 * models only) and the cpu backend (only when wasm cannot start, or when asked for).
 */

import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import type * as tfconv from '@tensorflow/tfjs-converter';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { AIAAS_WASM_DIR } from '../../functions/shared/env.js';
import type { RuntimeKind, RuntimePreference, TfRuntime } from '../../functions/shared/runtime/types.js';

const WASM_FILE = 'tfjs-backend-wasm-simd.wasm';

/** Where the .wasm binaries are: beside this module once bundled, in node_modules when run from source. */
function defaultWasmDir(): string | undefined {
  const here = dirname(fileURLToPath(import.meta.url));
  for (const dir of [here, join(here, '../../node_modules/@tensorflow/tfjs-backend-wasm/dist')]) {
    if (existsSync(join(dir, WASM_FILE))) return dir;
  }
  return undefined;
}

// The cpu backend registers itself and its kernels when its module runs, a cost to every cold start
// that serves on wasm, so it is imported only when the cpu backend is first initialized (tfjs accepts
// an async backend factory; docs/benchmarks.md, "Round 1"). Its own registration then finds this
// one and keeps it.
if (!tf.findBackendFactory('cpu')) {
  tf.registerBackend(
    'cpu',
    async () => {
      const { MathBackendCPU } = await import('@tensorflow/tfjs-backend-cpu');
      return new MathBackendCPU();
    },
    1,
  );
}

/** The converter is needed for graph models only: imported (and its ops registered) on first use. */
const loadGraphModel: typeof tfconv.loadGraphModel = async (...args) => {
  const { loadGraphModel: load } = await import('@tensorflow/tfjs-converter');
  return load(...args);
};

let pending: Promise<TfRuntime> | undefined;

/**
 * Initializes tfjs once per process with the preferred backend, falling back (and saying why) when
 * it is not available: native → wasm → cpu. The result names what was requested, so a caller can
 * tell a fallback from a choice (a `native` function running on wasm must say so loudly).
 */
export function createRuntime(preference: RuntimePreference = 'auto', wasmDir?: string): Promise<TfRuntime> {
  pending ??= initRuntime(preference, wasmDir);
  return pending;
}

/** How @tensorflow/tfjs-node is imported; injectable so tests can make it fail as on a broken image. */
export type NativeImport = () => Promise<unknown>;

const importTfjsNode: NativeImport = () => {
  const specifier = '@tensorflow/tfjs-node';
  return import(/* @vite-ignore */ specifier);
};

/** `createRuntime` without the per-process cache (tests; `createRuntime` is what functions use). */
export async function initRuntime(
  preference: RuntimePreference,
  wasmDir: string | undefined,
  importNative: NativeImport = importTfjsNode,
): Promise<TfRuntime> {
  const notes: string[] = [];
  if (preference === 'native' || preference === 'auto') {
    const native = await tryNative(preference, notes, importNative);
    if (native) return native;
  }
  tf.env().set('PROD', true);
  const order: RuntimeKind[] = preference === 'cpu' ? ['cpu'] : ['wasm', 'cpu'];
  for (const kind of order) {
    try {
      if (kind === 'wasm') {
        const dir = wasmDir ?? process.env[AIAAS_WASM_DIR] ?? defaultWasmDir();
        if (!dir) throw new Error(`${WASM_FILE} not found`);
        setWasmPaths(dir.endsWith('/') ? dir : `${dir}/`);
      }
      if (!(await tf.setBackend(kind))) throw new Error(`backend ${kind} did not initialize`);
      await tf.ready();
      return { kind, requested: preference, tf, layers: tfl, loadGraphModel, notes };
    } catch (error) {
      notes.push(`${kind} backend unavailable: ${(error as Error).message}`);
    }
  }
  throw new Error(`No tfjs backend could start: ${notes.join('; ')}`);
}

/** @tensorflow/tfjs-node is optional: present in the native container image, absent elsewhere. */
async function tryNative(
  requested: RuntimePreference,
  notes: string[],
  importNative: NativeImport,
): Promise<TfRuntime | undefined> {
  try {
    const tfn = (await importNative()) as typeof tf & typeof tfl & typeof tfconv;
    await tfn.ready();
    return { kind: 'native', requested, tf: tfn, layers: tfn, loadGraphModel: tfn.loadGraphModel, notes };
  } catch (error) {
    const message = String((error as Error)?.message ?? error).split('\n')[0];
    notes.push(`native runtime unavailable (@tensorflow/tfjs-node: ${message})`);
    return undefined;
  }
}
