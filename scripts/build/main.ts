/** `npm run build`: every bundle we ship, into dist/. */

import { existsSync } from 'node:fs';
import { buildCli, buildFunction, buildRuntimeLayer } from './bundle.js';
import { ENTRY_POINTS } from './options.js';

const started = performance.now();
const jobs: Promise<unknown>[] = [buildRuntimeLayer(), buildFunction('inference')];
if (existsSync(ENTRY_POINTS.retrain)) jobs.push(buildFunction('retrain'));
if (existsSync(ENTRY_POINTS.rollout)) jobs.push(buildFunction('rollout'));
if (existsSync(ENTRY_POINTS.cli)) jobs.push(buildCli());
await Promise.all(jobs);
console.log(`built dist/ in ${Math.round(performance.now() - started)} ms`);
