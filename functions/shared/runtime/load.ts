import { dirname } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ConfigurationError } from '../errors.js';
import type { RuntimePreference, TfRuntime } from './types.js';

/** Signature of the runtime module's export (layers/tfjs-runtime/runtime.ts). */
export type RuntimeFactory = (preference?: RuntimePreference, wasmDir?: string) => Promise<TfRuntime>;

/**
 * Where the runtime module is: `AIAAS_RUNTIME_MODULE`, else the Lambda layer at /opt, else the
 * local build beside this bundle (dist/layers/...), so the same bundle runs in Lambda and locally.
 */
export function resolveRuntimeModule(env: NodeJS.ProcessEnv = process.env): string {
  if (env.AIAAS_RUNTIME_MODULE) return env.AIAAS_RUNTIME_MODULE;
  const candidates = [
    '/opt/aiaas-runtime/runtime.mjs',
    fileURLToPath(new URL('../../layers/tfjs-runtime/aiaas-runtime/runtime.mjs', import.meta.url)),
  ];
  // node:fs itself, not its ES-module facade, whose getters load fs/promises and readline: ~7 ms
  // of a cold start that may never need this module.
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
export async function loadRuntimeModule(env: NodeJS.ProcessEnv = process.env): Promise<TfRuntime> {
  const path = resolveRuntimeModule(env);
  const mod = (await import(pathToFileURL(path).href)) as { createRuntime: RuntimeFactory };
  const preference = runtimePreference(env);
  return mod.createRuntime(preference, env.AIAAS_WASM_DIR ?? dirname(path));
}

const PREFERENCES: readonly RuntimePreference[] = ['auto', 'native', 'wasm', 'cpu'];

/** `AIAAS_RUNTIME`, checked: a misspelt value must not quietly run on another backend. */
export function runtimePreference(env: NodeJS.ProcessEnv = process.env): RuntimePreference {
  const value = env.AIAAS_RUNTIME || 'auto';
  if (!(PREFERENCES as readonly string[]).includes(value)) {
    throw new ConfigurationError(`AIAAS_RUNTIME must be auto, native, wasm or cpu, got "${value}"`);
  }
  return value as RuntimePreference;
}
