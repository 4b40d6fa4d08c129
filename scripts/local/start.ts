/**
 * `npm start`: the whole stack on 127.0.0.1 — the S3-compatible registry (state kept in .local/s3),
 * the example model trained and published on first run, and the local function-URL server.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { STACK_FILE } from '../../cli/context.js';
import { ROOT } from '../../cli/paths.js';
import { manifestPath, retrainWithProgress } from '../../cli/retrain.js';
import {
  AIAAS_ALIAS_CHECK_SECONDS,
  AIAAS_S3_PORT,
  AIAAS_STATE_DIR,
  DEFAULT_S3_PORT,
  LOCAL_ALIAS_CHECK_SECONDS,
  readPort,
  readPositiveNumber,
  readString,
} from '../../functions/shared/env.js';
import { datasetPrefix, loadManifest } from '../../functions/shared/manifest.js';
import { LocalFigures } from '../../functions/shared/rollout/local.js';
import { rolloutTick } from '../../functions/shared/rollout/tick.js';
import { generateDiabetesCsv } from '../../functions/shared/training/synthetic.js';
import { startFunctionUrlServer } from './function-url-server.js';
import { startLocalS3 } from './s3.js';
import { startStepFunctionsApi } from './step-functions-api.js';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const port = Number(process.env.PORT ?? 8080);
const s3Port = readPort(process.env, AIAAS_S3_PORT, DEFAULT_S3_PORT);
const stateDir = readString(process.env, AIAAS_STATE_DIR) ?? join(ROOT, '.local/s3');
const aliasCheckSeconds = readPositiveNumber(
  process.env,
  AIAAS_ALIAS_CHECK_SECONDS,
  LOCAL_ALIAS_CHECK_SECONDS,
);
const say = (line = '') => process.stdout.write(`${line}\n`);
/** How often `npm start` looks at each rollout (the deployed function runs on its schedule). */
const LOCAL_ROLLOUT_TICK_MS = 5_000;

const manifest = loadManifest(manifestPath());
const s3 = await startLocalS3({ directory: stateDir, port: s3Port }).catch((error: NodeJS.ErrnoException) => {
  if (error.code === 'EADDRINUSE') {
    console.error(`aiaas: port ${s3Port} is taken (another npm start?); set ${AIAAS_S3_PORT} to use another`);
    process.exit(1);
  }
  throw error;
});
say(`registry   s3://${s3.bucket} at ${s3.endpoint} (state in ${stateDir})`);

// First run: train and publish every manifest model that has a definition but no version yet.
for (const spec of manifest.models) {
  if (!spec.definition || (await s3.registry.listVersions(spec.name)).length > 0) continue;
  const prefix = datasetPrefix(spec);
  if ((await s3.registry.store.list(prefix)).length === 0) {
    if (spec.name !== 'diabetes') {
      say(
        `${spec.name}: no data under ${prefix}; upload some with: npx aiaas dataset put ${spec.name} <file.csv>`,
      );
      continue;
    }
    await s3.registry.putDataset(
      spec.name,
      'synthetic.csv',
      new TextEncoder().encode(generateDiabetesCsv()),
      {
        prefix,
      },
    );
    say(
      `${spec.name}: first run — training on a generated data set with the Pima Indians Diabetes schema ` +
        `(${prefix}synthetic.csv); replace it with real data: npx aiaas dataset put ${spec.name} <file.csv> --replace`,
    );
  }
  const result = await retrainWithProgress(s3.registry, spec, { promote: 'always' });
  say(`${spec.name}: ${result.status === 'unchanged' ? 'unchanged' : `published v${result.version}`}`);
}

const server = await startFunctionUrlServer({
  port,
  endpoint: s3.endpoint,
  bucket: s3.bucket,
  registry: s3.registry,
  aliasCheckSeconds,
  aliases: Object.fromEntries(manifest.models.map((m) => [m.name, m.alias])),
  fastPath: Object.fromEntries(manifest.models.map((m) => [m.name, m.fastPath])),
}).catch(async (error: NodeJS.ErrnoException) => {
  await s3.close();
  if (error.code === 'EADDRINUSE') {
    console.error(`aiaas: port ${port} is taken; set PORT to use another`);
    process.exit(1);
  }
  throw error;
});

// Batch jobs (`aiaas batch`): the Step Functions calls, answered by the local executor.
const stepFunctions = await startStepFunctionsApi({ s3, registry: s3.registry, manifest });

mkdirSync(join(ROOT, '.local'), { recursive: true });
writeFileSync(
  STACK_FILE,
  JSON.stringify({
    endpoint: s3.endpoint,
    bucket: s3.bucket,
    url: server.url,
    stepFunctions: stepFunctions.url,
    pid: process.pid,
  }),
);

const models = await s3.registry.listModels();
say(`functions  ${server.url}  (one function per model; alias re-checked every ${aliasCheckSeconds} s)`);
say(`console    ${server.url}/  (the registry in a browser: versions, curves, history, try it, promote)`);
for (const model of models)
  say(`  ${model}: ${server.url}/v1/models/${model}   function URL root: ${server.url}/fn/${model}/`);
say();
say('Try it:');
say(
  `  curl -s -X POST ${server.url}/v1/models/diabetes:predict -H 'content-type: application/json' \\\n` +
    `    -d '{"instances": [[6,148,72,35,0,33.6,0.627,50], [1,85,66,29,0,26.6,0.351,31]]}'`,
);
say(`  curl -s ${server.url}/v1/models/diabetes/metadata`);
say('  npx aiaas versions diabetes');
// The rollout function, locally: every few seconds for each model with a rollout plan, reading the
// local server's own per-version counters (a deployed stack runs it on its schedule instead).
const rollouts = manifest.models.filter((m) => m.rollout);
let rolloutTimer: NodeJS.Timeout | undefined;
if (rollouts.length > 0) {
  const figures = new LocalFigures(server.url);
  let busy = false;
  rolloutTimer = setInterval(async () => {
    if (busy) return; // a slow look is not overlapped by the next
    busy = true;
    for (const spec of rollouts) {
      try {
        const tick = await rolloutTick({
          registry: s3.registry,
          model: spec.name,
          alias: spec.alias,
          plan: spec.rollout!,
          figures,
        });
        if (tick.action !== 'idle' && tick.action !== 'wait')
          say(`rollout ${spec.name}: ${tick.action}: ${tick.reason}`);
      } catch (error) {
        say(`rollout ${spec.name}: failed: ${(error as Error).message}`);
      }
    }
    busy = false;
  }, LOCAL_ROLLOUT_TICK_MS);
  say(
    `rollouts   ${rollouts.map((m) => m.name).join(', ')}: looked at every ${LOCAL_ROLLOUT_TICK_MS / 1000} s`,
  );
}

say();
say('Ctrl-C stops everything.');

let stopping = false;
async function stop(signal: string) {
  if (stopping) return;
  stopping = true;
  say(`\n${signal}: stopping`);
  rmSync(STACK_FILE, { force: true });
  clearInterval(rolloutTimer);
  await Promise.allSettled([server.close(), stepFunctions.close(), s3.close()]);
  process.exit(0);
}
process.on('SIGINT', () => void stop('SIGINT'));
process.on('SIGTERM', () => void stop('SIGTERM'));
