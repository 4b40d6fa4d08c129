import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { build } from 'esbuild';
import { afterAll, describe, expect, it } from 'vitest';
import { sourceMappedStack } from '../../functions/shared/stack.js';

const dir = mkdtempSync(join(tmpdir(), 'aiaas-stack-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A minified bundle with a linked source map, as the functions ship; returns its error's stack. */
async function stackFromBundle(withMap: boolean): Promise<string> {
  const source = join(dir, 'thrower.ts');
  writeFileSync(
    source,
    [
      'export function outer(n: number): number {',
      '  return inner(n) + 1;',
      '}',
      'function inner(n: number): number {',
      "  if (n > 0) throw new Error('boom');",
      '  return n;',
      '}',
      '',
    ].join('\n'),
  );
  const outfile = join(dir, withMap ? 'mapped.mjs' : 'bare.mjs');
  await build({
    entryPoints: [source],
    bundle: true,
    minify: true,
    format: 'esm',
    platform: 'node',
    outfile,
    sourcemap: withMap ? 'linked' : false,
    logLevel: 'silent',
  });
  // In a plain Node process: under vitest, modules are transformed and their stacks mapped already.
  const script = `import(${JSON.stringify(pathToFileURL(outfile).href)}).then((m) => { try { m.outer(1); } catch (e) { process.stdout.write(e.stack); } });`;
  return execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
}

describe('sourceMappedStack', () => {
  it("names the source file and line of a bundle's frames, from the map beside it", async () => {
    const stack = await stackFromBundle(true);
    expect(stack).toMatch(/mapped\.mjs:1:\d+/);
    const mapped = sourceMappedStack(stack);
    expect(mapped).toMatch(/thrower\.ts:5:\d+ \[mapped\.mjs:1:\d+\]/); // the throw
    expect(mapped).toMatch(/thrower\.ts:2:\d+ \[mapped\.mjs:1:\d+\]/); // its caller
    expect(mapped.split('\n')[0]).toBe('Error: boom');
  });

  it('leaves frames without a map, and anything that is not a stack, as they are', async () => {
    const stack = await stackFromBundle(false);
    expect(sourceMappedStack(stack)).toBe(stack);
    expect(sourceMappedStack('not a stack')).toBe('not a stack');
    const missing = 'Error: x\n    at f (file:///nowhere/index.mjs:3:14)';
    expect(sourceMappedStack(missing)).toBe(missing);
  });
});
