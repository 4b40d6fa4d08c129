/**
 * esbuild bundles of what we deploy. `npm run build`, the local stack, the tests and the CDK app
 * all use these functions, so what is tested is what would be deployed.
 */

import { copyFileSync, mkdirSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type BuildOptions, build } from 'esbuild';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const DIST = join(ROOT, 'dist');

/** The .wasm binaries the runtime needs in Node (no threads there, so no threaded build). */
export const WASM_FILES = ['tfjs-backend-wasm.wasm', 'tfjs-backend-wasm-simd.wasm'] as const;

/** Folder name of the runtime inside the layer: the layer mounts at /opt, so /opt/aiaas-runtime. */
export const RUNTIME_DIR_NAME = 'aiaas-runtime';

// ESM bundles that still meet CommonJS code (the AWS SDK, tfjs's emscripten glue) need require()
// and __dirname.
const requireShim = [
  "import { createRequire as __aiaasCreateRequire } from 'node:module';",
  "import { dirname as __aiaasDirname } from 'node:path';",
  "import { fileURLToPath as __aiaasFileURLToPath } from 'node:url';",
  'const require = __aiaasCreateRequire(import.meta.url);',
  'const __filename = __aiaasFileURLToPath(import.meta.url);',
  'const __dirname = __aiaasDirname(__filename);',
].join(' ');

export const common: BuildOptions = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  minify: true,
  sourcemap: 'linked',
  legalComments: 'none',
  logLevel: 'warning',
  banner: { js: requireShim },
  // @tensorflow/tfjs-node is optional at run time: present only in the native container image.
  // node-fetch (with whatwg-url and tr46, ~300 kB of the runtime) is what tfjs-core's Node platform
  // requires only when there is no global fetch, which never happens on Node ≥ 18.
  external: ['@tensorflow/tfjs-node', 'node-fetch'],
};

/** The tfjs runtime module and its .wasm files: the content of the Lambda layer (under /opt). */
export async function buildRuntimeLayer(outDir = join(DIST, 'layers/tfjs-runtime')): Promise<string> {
  const dir = join(outDir, RUNTIME_DIR_NAME);
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  await build({
    ...common,
    entryPoints: [join(ROOT, 'layers/tfjs-runtime/runtime.ts')],
    outfile: join(dir, 'runtime.mjs'),
  });
  for (const file of WASM_FILES) {
    copyFileSync(join(ROOT, 'node_modules/@tensorflow/tfjs-backend-wasm/dist', file), join(dir, file));
  }
  return outDir;
}

/**
 * What the inference bundle does differently, for its cold start (`npm run build` and the CDK
 * alike): node:crypto is replaced by lazy forwarders (see functions/shared/lazy-node-crypto.ts),
 * and the global `crypto` (Web Crypto) reads as undefined. Its one reader, @smithy/core's UUID
 * helper, probes it when its module loads — which loads all of Web Crypto, ~12 ms (profiled) —
 * and falls back to node:crypto's getRandomValues when it is absent. Nothing in the bundle needs
 * Web Crypto.
 */
export const INFERENCE_BUILD = {
  alias: { 'node:crypto': join(ROOT, 'functions/shared/lazy-node-crypto.ts') },
  define: { crypto: 'undefined' },
} as const;

/** One function's handler bundle (`index.mjs`); the runtime is not in it, it comes from the layer. */
export async function buildFunction(name: 'inference' | 'retrain', outDir = join(DIST, 'functions', name)) {
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  await build({
    ...common,
    // What the CDK's NodejsFunction does for ESM output (FUNCTION_BUNDLING), so the bundle tested
    // here resolves packages as the deployed one does.
    mainFields: ['module', 'main'],
    target: 'node24',
    entryPoints: [join(ROOT, 'functions', name, 'handler.ts')],
    outfile: join(outDir, 'index.mjs'),
    ...(name === 'inference'
      ? { alias: { ...INFERENCE_BUILD.alias }, define: { ...INFERENCE_BUILD.define } }
      : {}),
  });
  return outDir;
}

/** The CLI, one file; h5wasm stays external (it ships its own wasm, loaded from node_modules). */
export async function buildCli(outFile = join(DIST, 'cli/aiaas.mjs')) {
  await build({
    ...common,
    minify: false,
    entryPoints: [join(ROOT, 'scripts/cli/main.ts')],
    outfile: outFile,
    external: [...(common.external ?? []), 'h5wasm', 'h5wasm/*'],
  });
  return outFile;
}
