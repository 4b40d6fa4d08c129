/**
 * Bench section 5, artifact sizes: the built function bundle and runtime layer, zipped as Lambda
 * takes them and unzipped, beside Lambda's unzipped limit.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { zipSync } from 'fflate';
import { DIST } from '../../../cli/paths.js';
import { log } from '../setup.js';
import { round } from '../stats.js';

export function artifacts() {
  // Artifact sizes.
  log('artifact sizes…');
  const zipped = (files: Record<string, Uint8Array>) => zipSync(files, { level: 9 }).byteLength;
  const fnFiles = dirBytes(join(DIST, 'functions/inference'), (n) => !n.endsWith('.map'));
  const layerFiles = dirBytes(join(DIST, 'layers/tfjs-runtime'), (n) => !n.endsWith('.map'));
  const unzipped = (files: Record<string, Uint8Array>) =>
    Object.values(files).reduce((n, f) => n + f.byteLength, 0);
  return {
    functionZipMB: round(zipped(fnFiles) / 1e6),
    functionUnzippedMB: round(unzipped(fnFiles) / 1e6),
    layerZipMB: round(zipped(layerFiles) / 1e6),
    layerUnzippedMB: round(unzipped(layerFiles) / 1e6),
    lambdaLimitUnzippedMB: 250,
    tfjsNodeUnzippedMB: 380,
  };
}

function dirBytes(dir: string, filter: (name: string) => boolean = () => true): Record<string, Uint8Array> {
  const files: Record<string, Uint8Array> = {};
  for (const name of readdirSync(dir, { recursive: true }) as string[]) {
    const path = join(dir, name);
    if (statSync(path).isFile() && filter(name)) files[name] = readFileSync(path);
  }
  return files;
}
