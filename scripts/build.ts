/** `npm run build`: every bundle we ship, into dist/. */

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { buildCli, buildFunction, buildRuntimeLayer, ROOT } from './lib/bundle.js';

const started = performance.now();
const jobs: Promise<unknown>[] = [buildRuntimeLayer(), buildFunction('inference')];
if (existsSync(join(ROOT, 'functions/retrain/handler.ts'))) jobs.push(buildFunction('retrain'));
if (existsSync(join(ROOT, 'scripts/cli/main.ts'))) jobs.push(buildCli());
await Promise.all(jobs);
console.log(`built dist/ in ${Math.round(performance.now() - started)} ms`);
