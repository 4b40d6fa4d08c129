/**
 * Finds and imports the tfjs runtime module a function runs on (the Lambda layer's, or one beside
 * the bundle), as AIAAS_RUNTIME and AIAAS_RUNTIME_MODULE say; imported only when a version needs tfjs.
 */
import { dirname } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import {
  AIAAS_RUNTIME,
  AIAAS_RUNTIME_MODULE,
  AIAAS_WASM_DIR,
  type Environment,
  readChoice,
  readString,
} from '../env.js';
import type { RuntimePreference, TfRuntime } from './types.js';

/** Signature of the runtime module's export (layers/tfjs-runtime/runtime.ts). */
export type RuntimeFactory = (preference?: RuntimePreference, wasmDir?: string) => Promise<TfRuntime>;

/**
 * Where the runtime module is: AIAAS_RUNTIME_MODULE, else the Lambda layer at /opt, else the
 * local build beside this bundle (dist/layers/...), so the same bundle runs in Lambda and locally.
 */
export function resolveRuntimeModule(env: Environment = process.env): string {
  const configured = readString(env, AIAAS_RUNTIME_MODULE);
  if (configured) return configured;
  const candidates = [
    '/opt/aiaas-runtime/runtime.mjs',
    fileURLToPath(new URL('../../layers/tfjs-runtime/aiaas-runtime/runtime.mjs', import.meta.url)),
  ];
  // node:fs itself, not its ES-module facade, whose getters load fs/promises and readline on a
  // cold start that may never need this module (docs/benchmarks.md, "Round 2").
  const { existsSync } = process.getBuiltinModule('node:fs');
  const found = candidates.find((path) => existsSync(path));
  if (!found)
    throw new Error(`tfjs runtime module not found (looked in ${candidates.join(', ')}); run npm run build`);
  return found;
}

/**
 * Imports the runtime module. It is loaded at first use, not at import time, so a cold start can
 * fetch weights from S3 while tfjs initializes.
 */
export async function loadRuntimeModule(env: Environment = process.env): Promise<TfRuntime> {
  const path = resolveRuntimeModule(env);
  const mod = (await import(pathToFileURL(path).href)) as { createRuntime: RuntimeFactory };
  const preference = runtimePreference(env);
  return mod.createRuntime(preference, readString(env, AIAAS_WASM_DIR) ?? dirname(path));
}

const PREFERENCES: readonly RuntimePreference[] = ['auto', 'native', 'wasm', 'cpu'];

/** AIAAS_RUNTIME, checked: a misspelt value must not quietly run on another backend. */
export function runtimePreference(env: Environment = process.env): RuntimePreference {
  return readChoice(env, AIAAS_RUNTIME, PREFERENCES, 'auto');
}
