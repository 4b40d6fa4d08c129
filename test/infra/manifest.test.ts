import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseManifest } from '../../functions/shared/manifest.js';
import { paths } from '../../infra/paths.js';
import { buildApp, exampleManifest, tempDir } from './helpers.js';

/** Runs the CDK app entry point (what `cdk synth` runs) on a manifest file. */
function synthWith(manifest: unknown) {
  const dir = tempDir('aiaas-manifest-');
  const file = join(dir, 'manifest.json');
  writeFileSync(file, typeof manifest === 'string' ? manifest : JSON.stringify(manifest));
  return spawnSync(process.execPath, ['--import', 'tsx', join(paths.root, 'infra/app.ts')], {
    cwd: paths.root,
    env: { ...process.env, AIAAS_MANIFEST: file, CDK_OUTDIR: join(dir, 'cdk.out') },
    encoding: 'utf8',
    timeout: 60_000,
  });
}

describe('manifest errors fail synth', { timeout: 90_000 }, () => {
  it('names the model and the field', () => {
    const run = synthWith({
      app: 'aiaas',
      models: [{ name: 'good' }, { name: 'diabetes', memoryMiB: 64 }],
    });
    expect(run.status).not.toBe(0);
    expect(run.stderr).toMatch(/model "diabetes": field "memoryMiB"/);
  });

  it('names the model for cross-field rules (CORS needs auth NONE)', () => {
    const run = synthWith({
      models: [{ name: 'leaky', cors: { allowOrigins: ['https://demo.example.com'] } }],
    });
    expect(run.status).not.toBe(0);
    expect(run.stderr).toMatch(/model "leaky": field "cors": CORS is only for auth "NONE"/);
  });

  it('names the model and both fields a public (auth NONE) model lacks', () => {
    const run = synthWith({ models: [{ name: 'good' }, { name: 'open_demo', auth: 'NONE' }] });
    expect(run.status).not.toBe(0);
    expect(run.stderr).toMatch(/model "open_demo": field "cors": required with auth "NONE"/);
    expect(run.stderr).toMatch(/model "open_demo": field "reservedConcurrency": required with auth "NONE"/);
  });

  it('reports a manifest that is not JSON', () => {
    const run = synthWith('{ "models": [');
    expect(run.status).not.toBe(0);
    expect(run.stderr).toMatch(/is not valid JSON/);
  });
});

describe('manifest rules the CDK app adds', () => {
  const withModels = (models: unknown[]) => ({ app: 'aiaas', models });
  const definition = (exampleManifest() as { models: { definition: unknown }[] }).models[0]!.definition;

  it.each(['models/diabetes/', 'datasets/', 'datasets/diabetes/', 'backups/', 'datasets/thief/../diabetes/'])(
    'keeps a dataset prefix inside the model’s own datasets/<name>/ (refuses %s)',
    (datasetPrefix) => {
      expect(() =>
        buildApp(
          withModels([{ name: 'thief', definition, retrain: { schedule: 'rate(1 day)', datasetPrefix } }]),
        ),
      ).toThrow(/model "thief": field "retrain.datasetPrefix": must be datasets\/thief\//);
    },
  );

  it('accepts a folder below datasets/<name>/ as the dataset prefix', () => {
    expect(() =>
      buildApp(
        withModels([
          {
            name: 'owner',
            definition,
            retrain: { schedule: 'rate(1 day)', datasetPrefix: 'datasets/owner/2026/' },
          },
        ]),
      ),
    ).not.toThrow();
  });

  describe('a public (auth NONE) model', () => {
    const open = (extra: Record<string, unknown>) =>
      withModels([{ name: 'open', auth: 'NONE', reservedConcurrency: 5, ...extra }]);
    const origins = (...allowOrigins: string[]) => open({ cors: { allowOrigins } });

    it('needs CORS origins', () => {
      expect(() => buildApp(open({}))).toThrow(/model "open": field "cors": required with auth "NONE"/);
    });

    it('needs a reserved concurrency cap', () => {
      expect(() =>
        buildApp(withModels([{ name: 'open', auth: 'NONE', cors: { allowOrigins: ['https://a.example'] } }])),
      ).toThrow(/model "open": field "reservedConcurrency": required with auth "NONE": it caps/);
    });

    it.each(['*', 'https://*.example.com'])('refuses the wildcard origin %s, saying why', (wildcard) => {
      expect(() => buildApp(origins('https://demo.example.com', wildcard))).toThrow(
        /model "open": field "cors.allowOrigins.1": "\*" is refused: list the web origins .* any website/,
      );
    });

    it.each([
      'https://demo.example.com/',
      'https://demo.example.com/app',
      'demo.example.com',
      'null',
      'ftp://x.example',
    ])('refuses %s, which is not an origin', (bad) => {
      expect(() => buildApp(origins(bad))).toThrow(
        /model "open": field "cors.allowOrigins.0": must be an origin/,
      );
    });

    it('accepts explicit origins with a cap', () => {
      expect(() => parseManifest(origins('https://demo.example.com', 'http://localhost:5173'))).not.toThrow();
    });
  });

  it('refuses two models that would deploy as the same stack', () => {
    expect(() => buildApp(withModels([{ name: 'a_b' }, { name: 'a-b' }]))).toThrow(
      /Models "a_b" and "a-b" would both deploy as stack aiaas-Model-a-b/,
    );
  });
});
