/**
 * The native image's bundles, run inside its build (functions/inference/native/Dockerfile): the
 * inference handler and the tfjs runtime module with the same esbuild options as `npm run build`
 * and the zip functions (options.ts), so the container runs the same code.
 *
 *   tsx scripts/build/native.ts <outDir>  →  <outDir>/function/index.mjs,
 *                                            <outDir>/layer/aiaas-runtime/runtime.mjs
 */
import { join, resolve } from 'node:path';
import { buildFunction, buildRuntimeLayer } from './bundle.js';

const out = resolve(process.argv[2] ?? 'dist/native');
await buildRuntimeLayer(join(out, 'layer'));
await buildFunction('inference', join(out, 'function'));
console.log(`native bundles in ${out}`);
