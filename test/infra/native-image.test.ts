/**
 * The native image's Dockerfile, read as Docker reads it (no Docker engine here): tfjs-node's addon
 * is compiled for the image's architecture rather than downloaded (the prebuilt one is x86-64 only,
 * tensorflow/tfjs#8603), and the build fails unless tfjs-node loads in the final image.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { TfjsRuntimeLayer } from '../../infra/constructs/tfjs-runtime-layer.js';
import { paths } from '../../infra/paths.js';

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
});
