/**
 * Runs esbuild with the options of options.ts: the bundles of what we deploy, for `npm run build`
 * (main.ts), the native image (native.ts), the local stack and the tests, so what is tested is what
 * would be deployed. The CDK app bundles with the same options (infra/constructs).
 */
import { copyFileSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'esbuild';
import { DIST } from '../../cli/paths.js';
import {
  cliOptions,
  type FunctionName,
  functionOptions,
  RUNTIME_DIR_NAME,
  runtimeLayerOptions,
  WASM_FILES,
  WASM_SOURCE_DIR,
} from './options.js';

/** The tfjs runtime module and its .wasm files: the content of the Lambda layer (under /opt). */
export async function buildRuntimeLayer(outDir = join(DIST, 'layers/tfjs-runtime')): Promise<string> {
  const dir = join(outDir, RUNTIME_DIR_NAME);
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  await build(runtimeLayerOptions(join(dir, 'runtime.mjs')));
  for (const file of WASM_FILES) copyFileSync(join(WASM_SOURCE_DIR, file), join(dir, file));
  return outDir;
}

/** One function's handler bundle (`index.mjs`); the runtime is not in it, it comes from the layer. */
export async function buildFunction(name: FunctionName, outDir = join(DIST, 'functions', name)) {
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  await build(functionOptions(name, join(outDir, 'index.mjs')));
  return outDir;
}

/** The CLI, one file. */
export async function buildCli(outFile = join(DIST, 'cli/aiaas.mjs')) {
  await build(cliOptions(outFile));
  return outFile;
}
