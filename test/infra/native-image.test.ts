/**
 * The native image's Dockerfile, read as Docker reads it (no Docker engine here): tfjs-node's addon
 * is compiled for the image's architecture rather than downloaded (the prebuilt one is x86-64 only,
 * tensorflow/tfjs#8603), and the build fails unless tfjs-node loads in the final image.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { IgnoreStrategy } from 'aws-cdk-lib';
import { describe, expect, it } from 'vitest';
import { TfjsRuntimeLayer } from '../../infra/constructs/tfjs-runtime-layer.js';
import { paths } from '../../infra/paths.js';
import { ENTRY_POINTS, INFERENCE_BUILD, NATIVE_IMAGE } from '../../scripts/build/options.js';

interface Stage {
  readonly from: string;
  readonly instructions: readonly string[];
}

/** Instructions per stage: comments dropped, continuation lines joined. */
function stages(dockerfile: string): Stage[] {
  const lines = dockerfile
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line && !line.startsWith('#'));
  const result: { from: string; instructions: string[] }[] = [];
  for (const line of lines) {
    if (/^FROM\s/i.test(line)) result.push({ from: line, instructions: [] });
    else result.at(-1)?.instructions.push(line);
  }
  return result;
}

const dockerfile = readFileSync(join(paths.root, paths.nativeDockerfile), 'utf8');
const all = stages(dockerfile);
const stageNamed = (name: string) =>
  all.find((stage) => new RegExp(`\\sAS\\s+${name}$`, 'i').test(stage.from));
const runs = (stage: Stage | undefined) =>
  (stage?.instructions ?? []).filter((line) => line.startsWith('RUN '));

describe('the native image', () => {
  it('builds every stage for linux/arm64, the functions’ architecture', () => {
    expect(all.length).toBeGreaterThanOrEqual(3);
    for (const stage of all) expect(stage.from).toMatch(/^FROM --platform=linux\/arm64 /);
  });

  it('compiles the tfjs-node addon from source in its stage, with the toolchain there', () => {
    const stage = stageNamed('tfjs-node');
    expect(stage).toBeDefined();
    const install = runs(stage).find((line) => /npm install .*@tensorflow\/tfjs-node@/.test(line));
    // node-pre-gyp's own option, scoped to this package, in the same command as the install.
    expect(install).toMatch(/npm_config_build_from_source=@tensorflow\/tfjs-node\s+npm install /);
    expect(install).not.toMatch(/--ignore-scripts/);
    const toolchain = runs(stage).find((line) => /\bdnf install\b/.test(line));
    for (const tool of ['python3', 'make', 'gcc-c++']) expect(toolchain).toContain(` ${tool}`);
  });

  it('fails the build unless tfjs-node loads in the final image, from the runtime module’s folder', () => {
    const final = all.at(-1)!;
    expect(final.from).not.toMatch(/\sAS\s/i);
    const instructions = final.instructions;
    const copied = instructions.findIndex((line) => /^COPY --from=tfjs-node \/opt\/node_modules /.test(line));
    const required = instructions.indexOf(
      `RUN cd /opt/aiaas-runtime && node -e "require('@tensorflow/tfjs-node')"`,
    );
    const started = instructions.findIndex(
      (line) =>
        line.startsWith('RUN node --input-type=module -e ') &&
        line.includes(`import('${TfjsRuntimeLayer.MODULE_PATH}')`) &&
        line.includes("createRuntime('native')") &&
        /if \(runtime\.kind !== 'native'\) \{.*process\.exit\(1\)/.test(line),
    );
    expect(copied).toBeGreaterThanOrEqual(0);
    expect(required).toBeGreaterThan(copied);
    expect(started).toBeGreaterThan(copied);
    expect(
      instructions.some((line) =>
        line.includes('COPY --from=bundle /out/layer/aiaas-runtime /opt/aiaas-runtime'),
      ),
    ).toBe(true);
  });

  it('has in its build context, and copies, every file its bundle stage builds from', () => {
    const bundle = stageNamed('bundle');
    const run = runs(bundle).find((line) => /^RUN npx tsx \S+\.ts /.test(line));
    const script = run?.split(' ')[3] ?? '';
    const copied = (bundle?.instructions ?? [])
      .filter((line) => line.startsWith('COPY '))
      .flatMap((line) => line.split(/\s+/).slice(1, -1));
    const context = IgnoreStrategy.docker(paths.root, [...NATIVE_IMAGE.contextExclude]);
    const files = localImports([
      join(paths.root, script),
      ENTRY_POINTS.inference,
      ENTRY_POINTS.runtime,
      INFERENCE_BUILD.alias['node:crypto'],
    ]);
    expect(files.length).toBeGreaterThan(10);
    for (const file of [...files, join(paths.root, 'package-lock.json'), join(paths.root, 'tsconfig.json')]) {
      const path = relative(paths.root, file);
      expect(context.ignores(file), `${path} is outside the build context`).toBe(false);
      expect(
        copied.some((source) => path === source || path.startsWith(`${source}/`)),
        `${path} is not copied into the bundle stage`,
      ).toBe(true);
    }
  });
});

/** The repository's files reachable from `entries` by relative imports (static or dynamic). */
function localImports(entries: readonly string[]): string[] {
  const seen = new Set<string>();
  const pending = [...entries];
  while (pending.length > 0) {
    const file = pending.pop()!;
    if (seen.has(file)) continue;
    expect(existsSync(file), `${relative(paths.root, file)} exists`).toBe(true);
    seen.add(file);
    for (const [, specifier] of readFileSync(file, 'utf8').matchAll(
      /(?:from|import\()\s*'(\.{1,2}\/[^']+)'/g,
    )) {
      pending.push(resolve(dirname(file), specifier!.replace(/\.js$/, '.ts')));
    }
  }
  return [...seen];
}
