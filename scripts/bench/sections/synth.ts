/**
 * Bench section 6, synth time: `cdk synth` of a fleet of 1, 10 and 50 models.
 */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from '../../../cli/paths.js';
import { type BenchContext, log } from '../setup.js';
import { round } from '../stats.js';

export async function synth({ dir }: BenchContext) {
  // Synth time for 1, 10 and 50 models.
  log('cdk synth 1/10/50 models…');
  const { fleetManifest } = await import('../../../infra/fleet.js');
  const synth: Record<string, number> = {};
  for (const count of [1, 10, 50]) {
    const manifest = join(dir, `manifest-${count}.json`);
    writeFileSync(manifest, JSON.stringify(fleetManifest(count)));
    const out = join(dir, `cdk.out-${count}`);
    const started = performance.now();
    const result = spawnSync('npx', ['cdk', 'synth', '--quiet', '-o', out, '-c', `manifest=${manifest}`], {
      cwd: ROOT,
      env: process.env,
      encoding: 'utf8',
    });
    if (result.status !== 0) throw new Error(`cdk synth (${count} models) failed: ${result.stderr}`);
    synth[String(count)] = round((performance.now() - started) / 1000, 2);
  }
  return {
    ratio50to1: round(synth['50']! / synth['1']!),
    seconds: synth,
    target: '50 models ≤ 3× one model',
  };
}
