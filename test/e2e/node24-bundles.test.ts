/**
 * The built bundles, invoked once each under Node.js 24 (the Lambda runtime we target) with the
 * payload-2.0 events in events/, against the local registry: what `sam local invoke` would do,
 * without Docker.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DIST, ROOT } from '../../cli/paths.js';
import { loadManifest } from '../../functions/shared/manifest.js';
import { generateDiabetesCsv } from '../../functions/shared/training/synthetic.js';
import { node24 } from '../../scripts/bench/node24.js';
import { type LocalS3, localFunctionEnv, startLocalS3 } from '../../scripts/local/s3.js';

const NODE = node24() ?? process.execPath;
if (NODE === process.execPath)
  console.warn(
    `[note] Node 24 binary unavailable on ${process.platform}/${process.arch}; using ${process.version}`,
  );

let s3: LocalS3;
let dir: string;
let env: NodeJS.ProcessEnv;

/** Runs the bundle in a child process (asynchronously: s3rver lives in this one and must answer). */
async function invoke(bundle: string, eventFile: string | undefined, extraEnv: NodeJS.ProcessEnv = {}) {
  let stdout = '';
  let stderr = '';
  try {
    ({ stdout, stderr } = await promisify(execFile)(
      NODE,
      [join(ROOT, 'test/support/invoke-bundle.mjs'), bundle, ...(eventFile ? [eventFile] : [])],
      { env: { ...env, ...extraEnv }, encoding: 'utf8', timeout: 120_000, maxBuffer: 16 * 1024 * 1024 },
    ));
  } catch (error) {
    const e = error as { stderr?: string; stdout?: string; code?: number };
    throw new Error(`bundle failed (exit ${e.code}): ${e.stderr || e.stdout}`);
  }
  const line = stdout.split('\n').find((l) => l.startsWith('@@RESULT@@'));
  if (!line) throw new Error(`bundle printed no result: ${stdout}`);
  return {
    ...(JSON.parse(line.slice('@@RESULT@@'.length)) as {
      node: string;
      result: { statusCode: number; body: string } & Record<string, unknown>;
    }),
    stderr,
  };
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'aiaas-node24-'));
  s3 = await startLocalS3({ directory: dir });
  env = { PATH: process.env.PATH, ...localFunctionEnv(s3), AIAAS_RUNTIME: 'wasm' };
});
afterAll(async () => {
  await s3?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('bundles under Node.js 24', () => {
  it('the retraining bundle trains the manifest model and publishes a promoted version', async () => {
    await s3.registry.putDataset(
      'diabetes',
      'synthetic.csv',
      new TextEncoder().encode(generateDiabetesCsv(300)),
    );
    const spec = loadManifest(join(ROOT, 'models/manifest.json')).models.find((m) => m.name === 'diabetes')!;
    const quick = {
      ...spec,
      definition: { ...spec.definition!, fit: { ...spec.definition!.fit, epochs: 3 } },
    };
    // Exactly what the CDK schedule sends (infra/constructs/retraining-function.ts).
    const scheduled = join(dir, 'schedule-event.json');
    writeFileSync(scheduled, JSON.stringify({ source: 'aiaas.schedule', model: 'diabetes' }));
    const { node, result } = await invoke(join(DIST, 'functions/retrain/index.mjs'), scheduled, {
      AIAAS_MODEL: 'diabetes',
      AIAAS_MODEL_SPEC: JSON.stringify(quick),
    });
    if (NODE !== process.execPath) expect(node).toMatch(/^v24\./);
    expect(JSON.stringify(result)).toMatch(/promoted/);
    expect((await s3.registry.getAlias('diabetes', 'live'))?.version).toBe(1);
    expect((await s3.registry.getMetadata('diabetes', 1)).source).toMatchObject({
      kind: 'retrain',
      trigger: 'schedule',
    });
  });

  it('the inference bundle, misconfigured, answers 500 and logs the error by its own name', async () => {
    const { result, stderr } = await invoke(
      join(DIST, 'functions/inference/index.mjs'),
      join(ROOT, 'events', 'predict.json'),
      { AIAAS_MODEL: '' },
    );
    expect(result.statusCode).toBe(500);
    // Callers get a generic reason (no setting names); the log says which setting.
    expect(JSON.parse(result.body).error).toMatch(/misconfigured/);
    // The bundle is minified: class names are not what a log reader would see.
    expect(stderr).toMatch(/AIAAS_MODEL is not set/);
    expect(stderr).toMatch(/ConfigurationError/);
  });

  it.each(readdirSync(join(ROOT, 'events')).filter((f) => f.endsWith('.json')))(
    'the inference bundle answers events/%s',
    async (file) => {
      const { result } = await invoke(
        join(DIST, 'functions/inference/index.mjs'),
        join(ROOT, 'events', file),
        { AIAAS_MODEL: 'diabetes' },
      );
      const body = JSON.parse(result.body) as Record<string, unknown>;
      if (file.startsWith('bad')) {
        expect(result.statusCode).toBe(400);
        expect(body.error).toMatch(/JSON/);
      } else {
        expect(result.statusCode, result.body).toBe(200);
        if (file.startsWith('predict')) expect((body.predictions as number[][])[0]).toHaveLength(1);
      }
    },
  );
});
