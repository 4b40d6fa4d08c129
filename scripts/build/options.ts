/**
 * How every bundle we ship is built, as plain data: `npm run build` (bundle.ts), the CDK app (the
 * runtime layer, the functions' NodejsFunction bundling, the native image's build context) and the
 * native image build (native.ts) all take their esbuild options from here, so what is tested is
 * what is deployed. Nothing here loads esbuild (the type import is erased), so the CDK app can read
 * it without the bundler's API, and the CLI and the functions never import it.
 */
import { join } from 'node:path';
import type { BuildOptions } from 'esbuild';
import { ROOT } from '../../cli/paths.js';

/** What is built, from where. */
export const ENTRY_POINTS = {
  runtime: join(ROOT, 'layers/tfjs-runtime/runtime.ts'),
  inference: join(ROOT, 'functions/inference/handler.ts'),
  retrain: join(ROOT, 'functions/retrain/handler.ts'),
  rollout: join(ROOT, 'functions/rollout/handler.ts'),
  batch: join(ROOT, 'functions/batch/assemble.ts'),
  cli: join(ROOT, 'cli/main.ts'),
} as const;

export type FunctionName = 'inference' | 'retrain' | 'rollout' | 'batch';

/** Folder name of the runtime inside the layer: the layer mounts at /opt, so /opt/aiaas-runtime. */
export const RUNTIME_DIR_NAME = 'aiaas-runtime';

/** The .wasm binaries the runtime needs in Node (no threads there, so no threaded build), and where they come from. */
export const WASM_FILES = ['tfjs-backend-wasm.wasm', 'tfjs-backend-wasm-simd.wasm'] as const;
export const WASM_SOURCE_DIR = join(ROOT, 'node_modules/@tensorflow/tfjs-backend-wasm/dist');

/**
 * Left out of every bundle. @tensorflow/tfjs-node is optional at run time: present only in the
 * native container image. node-fetch (with whatwg-url and tr46) is what tfjs-core's Node platform
 * requires only when there is no global fetch, which never happens on Node ≥ 18. /opt is the
 * layer, loaded at run time.
 */
export const EXTERNAL_MODULES = ['@tensorflow/tfjs-node', 'node-fetch', '/opt/*'] as const;

/** The functions run on Node.js 24; the runtime layer and the CLI also run on the Node ≥ 20 we develop with. */
export const FUNCTION_TARGET = 'node24';

/**
 * What the CDK's NodejsFunction does for ESM output, so the function bundles `npm run build` makes
 * resolve packages as the deployed ones do.
 */
export const FUNCTION_MAIN_FIELDS = ['module', 'main'] as const;

/**
 * The banner of every bundle: ESM bundles that still meet CommonJS code (the AWS SDK, tfjs's
 * emscripten glue) need require() and __dirname.
 */
export const REQUIRE_SHIM = [
  "import { createRequire as __aiaasCreateRequire } from 'node:module';",
  "import { dirname as __aiaasDirname } from 'node:path';",
  "import { fileURLToPath as __aiaasFileURLToPath } from 'node:url';",
  'const require = __aiaasCreateRequire(import.meta.url);',
  'const __filename = __aiaasFileURLToPath(import.meta.url);',
  'const __dirname = __aiaasDirname(__filename);',
].join(' ');

/** What every bundle shares. */
export const COMMON: BuildOptions = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  minify: true,
  sourcemap: 'linked',
  legalComments: 'none',
  logLevel: 'warning',
  banner: { js: REQUIRE_SHIM },
  external: [...EXTERNAL_MODULES],
};

/**
 * What the inference bundle does differently, for its cold start (`npm run build` and the CDK
 * alike): node:crypto is replaced by lazy forwarders (see functions/shared/lazy-node-crypto.ts),
 * and the global `crypto` (Web Crypto) reads as undefined. Its one reader, @smithy/core's UUID
 * helper, probes it when its module loads — which loads all of Web Crypto — and falls back to
 * node:crypto's getRandomValues when it is absent (docs/benchmarks.md). Nothing in the bundle
 * needs Web Crypto.
 */
export const INFERENCE_BUILD = {
  alias: { 'node:crypto': join(ROOT, 'functions/shared/lazy-node-crypto.ts') },
  define: { crypto: 'undefined' },
} as const;

/** The tfjs runtime module, the content of the Lambda layer (with WASM_FILES beside it). */
export function runtimeLayerOptions(outfile: string): BuildOptions {
  return { ...COMMON, entryPoints: [ENTRY_POINTS.runtime], outfile };
}

/** One function's handler bundle (`index.mjs`); the runtime is not in it, it comes from the layer. */
export function functionOptions(name: FunctionName, outfile: string): BuildOptions {
  return {
    ...COMMON,
    mainFields: [...FUNCTION_MAIN_FIELDS],
    target: FUNCTION_TARGET,
    entryPoints: [ENTRY_POINTS[name]],
    outfile,
    ...(name === 'inference'
      ? { alias: { ...INFERENCE_BUILD.alias }, define: { ...INFERENCE_BUILD.define } }
      : {}),
  };
}

/** The CLI, one file; h5wasm stays external (it ships its own wasm, loaded from node_modules). */
export function cliOptions(outfile: string): BuildOptions {
  return {
    ...COMMON,
    minify: false,
    entryPoints: [ENTRY_POINTS.cli],
    outfile,
    external: [...EXTERNAL_MODULES, 'h5wasm', 'h5wasm/*'],
  };
}

/**
 * The native image (manifest `"runtime": "native"`): its Dockerfile, beside the code it packages,
 * runs native.ts in the repository root as build context. Only what that build reads is in the
 * context (Docker ignore rules), so unrelated changes do not change the image hash.
 */
export const NATIVE_IMAGE = {
  /** Relative to the build context (the repository root). */
  dockerfile: 'functions/inference/native/Dockerfile',
  contextExclude: [
    '*',
    '!package.json',
    '!package-lock.json',
    '!tsconfig.json',
    '!functions',
    '!layers',
    '!scripts',
    'scripts/*',
    '!scripts/build',
    '!cli',
    'cli/*',
    '!cli/paths.ts',
    '**/*.test.ts',
    '**/README.md',
  ],
} as const;
