/**
 * Runs inside the native image build (see Dockerfile beside this file): bundles the inference
 * handler and the tfjs runtime module with the same esbuild options as `npm run build` and the
 * zip functions, so the container runs the same code.
 *
 *   tsx functions/inference/native/build.ts <outDir>  →  <outDir>/function/index.mjs,
 *                                                        <outDir>/layer/aiaas-runtime/runtime.mjs
 */
import { join, resolve } from 'node:path';
import { buildFunction, buildRuntimeLayer } from '../../../scripts/lib/bundle.js';

const out = resolve(process.argv[2] ?? 'dist/native');
await buildRuntimeLayer(join(out, 'layer'));
await buildFunction('inference', join(out, 'function'));
console.log(`native bundles in ${out}`);
