/**
 * The built CLI, property-based: whatever bad name, alias, version or file name it is given, it
 * refuses it with an "Invalid ..." line before touching the registry (here one that refuses
 * connections, which would say "unavailable" instead).
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { NAME_PATTERN } from '../../functions/shared/registry/layout.js';
import { nameLike } from '../support/arbitraries.js';

// ---- the CLI -----------------------------------------------------------------------------------

const CLI = join(import.meta.dirname, '../../dist/cli/aiaas.mjs');

function runCli(args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      // A registry that refuses connections: reaching it would say "unavailable", not "Invalid".
      env: {
        ...process.env,
        AIAAS_BUCKET: 'b',
        AIAAS_S3_ENDPOINT: 'http://127.0.0.1:9',
        AWS_ACCESS_KEY_ID: 'x',
        AWS_SECRET_ACCESS_KEY: 'x',
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, stderr }));
  });
}

describe('CLI arguments (property, built CLI)', () => {
  it('refuses bad model names, aliases, versions and file names before touching the registry', async () => {
    const badName = nameLike.filter(
      (n) => !NAME_PATTERN.test(n) && !n.includes('\u0000') && !n.startsWith('-'),
    );
    const badVersion = fc
      .oneof(
        fc.constantFrom('0', '01', '1.5', '1e3', '2147483648', '../1', 'x', ''),
        fc.string({ maxLength: 8 }),
      )
      .filter((v) => !/^[1-9][0-9]{0,9}$/.test(v) && !v.includes('\u0000') && !v.startsWith('-'));
    const commands = [
      ...fc.sample(badName, 4).map((n) => ['promote', n, '1']),
      ...fc.sample(badVersion, 3).map((v) => ['promote', 'lin', v]),
      ...fc.sample(badName, 3).map((n) => ['promote', 'lin', '1', '--alias', n]),
      ...fc.sample(badName, 2).map((n) => ['history', n]),
      ...fc.sample(badName, 2).map((n) => ['versions', n]),
      ...fc.sample(badName, 2).map((n) => ['rollback', 'lin', '-a', n]),
      ...fc.sample(badName, 2).map((n) => ['retrain', n]),
      ...fc.sample(badName, 2).map((n) => ['publish', 'nowhere', '--model', n]),
      ...fc.sample(badName, 2).map((n) => ['dataset', 'put', n, 'package.json']),
      ['dataset', 'put', 'lin', join(import.meta.dirname, '../../package.json'), '--name', '../other/x.csv'],
      ['dataset', 'put', 'lin', join(import.meta.dirname, '../../package.json'), '--name', 'a/b.csv'],
    ];
    const results = await Promise.all(commands.map(runCli));
    for (const [i, { code, stderr }] of results.entries()) {
      const context = `aiaas ${JSON.stringify(commands[i])}: ${stderr}`;
      expect(code, context).not.toBe(0);
      expect(stderr, context).toMatch(/Invalid (model name|alias|version|artifact file name)/);
      expect(stderr, context).not.toMatch(/unavailable|denied|ECONNREFUSED/i);
    }
  });
});
