#!/usr/bin/env node
import { spawnSync } from 'node:child_process';
// Runs the bundled CLI; builds it first on a fresh clone where `npm run build` has not run yet.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const cli = new URL('../dist/cli/aiaas.mjs', import.meta.url);
if (
  !existsSync(cli) ||
  !existsSync(new URL('../dist/layers/tfjs-runtime/aiaas-runtime/runtime.mjs', import.meta.url))
) {
  const built = spawnSync('npm', ['run', '--silent', 'build'], {
    cwd: root,
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  if (built.status !== 0) process.exit(built.status ?? 1);
}
await import(cli.href);
