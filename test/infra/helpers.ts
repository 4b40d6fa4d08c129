import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { afterAll } from 'vitest';
import { parseManifest } from '../../functions/shared/manifest.js';
import { type AiaasAppOptions, type AiaasStacks, defineAiaas } from '../../infra/aiaas.js';
import { paths } from '../../infra/paths.js';

/** The context `cdk synth` uses (feature flags from cdk.json), plus the asset metadata SAM reads. */
export function cdkContext(): Record<string, unknown> {
  const cdkJson = JSON.parse(readFileSync(join(paths.root, 'cdk.json'), 'utf8')) as {
    context: Record<string, unknown>;
  };
  return { ...cdkJson.context, 'aws:cdk:enable-asset-metadata': true, 'aws:cdk:enable-path-metadata': true };
}

export interface SynthResult extends AiaasStacks {
  readonly app: App;
}

const outdirs: string[] = [];
afterAll(() => {
  for (const dir of outdirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A temporary directory removed after the test file. */
export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  outdirs.push(dir);
  return dir;
}

/** Builds the app as `cdk synth` does (cdk-nag included) into a temporary cloud assembly. */
export function buildApp(manifest: unknown, options: Omit<AiaasAppOptions, 'manifest'> = {}): SynthResult {
  const app = new App({ context: cdkContext(), outdir: tempDir('aiaas-cdk-') });
  const stacks = defineAiaas(app, { ...options, manifest: parseManifest(manifest, 'test manifest') });
  return { app, ...stacks };
}

export function exampleManifest(): unknown {
  return JSON.parse(readFileSync(paths.manifest, 'utf8'));
}

export function templateOf(result: SynthResult, model: string): Template {
  const stack = result.models.get(model);
  if (!stack) throw new Error(`no stack for model ${model}`);
  return Template.fromStack(stack);
}
