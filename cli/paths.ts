/**
 * Where the repository is, for the CLI, the local stack and the tools: the folder holding
 * package.json above this module. Found by walking up, so the same answer comes from the source
 * (cli/) and from a bundle of it (dist/cli/), without loading the bundler to ask.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function packageRoot(from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    if (dirname(dir) === dir) throw new Error(`No package.json above ${from}`);
  }
}

/** The repository root (absolute). */
export const ROOT = packageRoot(dirname(fileURLToPath(import.meta.url)));
/** What `npm run build` writes: the function bundles, the runtime layer, the CLI. */
export const DIST = join(ROOT, 'dist');
