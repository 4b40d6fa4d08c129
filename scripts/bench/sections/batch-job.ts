/**
 * Bench section, batch job: a local batch job (the deployed state machine's definition run by
 * scripts/local/batch, the built inference bundle scoring each batch in this process, the final
 * step writing the output) in rows per second, beside its floor: the same job done in one process
 * with no Step Functions, no S3 and no JSON events. The floor reads the same CSV text, parses it
 * with csv-parse (as the final step reads CSV with a library), turns the rows into inputs, predicts
 * with the same version through the same executor in batches of rowsPerBatch, and writes the output
 * CSV text (the input rows plus the prediction column) in input order; its output is checked to be
 * the job's, byte for byte. So the ratio is what the batch machinery costs (the ItemReader, JSON
 * events, ResultWriter's files, the final step, the local S3), not the work itself. The job scores
 * its batches as the executor does by default, in warm worker threads (one Lambda execution
 * environment per core); the floor is one thread. The same job with its batches scored in this
 * thread, and the bare predicts inside the floor, are reported beside. Rounds alternate; the ratio
 * is the median of each round's.
 */
import { join } from 'node:path';
import { parse } from 'csv-parse/sync';
import { DIST } from '../../../cli/paths.js';
import { loadVersion } from '../../../functions/inference/version-load.js';
import { keys } from '../../../functions/shared/registry/layout.js';
import { RegistryReader } from '../../../functions/shared/registry/registry.js';
import { PIMA_HEADER } from '../../../functions/shared/training/synthetic.js';
import { localBatchDefinition } from '../../local/batch/definition.js';
import { runLocalBatchJob } from '../../local/batch/executor.js';
import { type BenchContext, log } from '../setup.js';
import { interval, median, pairedRatios, round } from '../stats.js';

/** The example model's CSV columns (models/manifest.json), in input order: the data set's, less its label. */
const FEATURES = PIMA_HEADER.filter((column) => column !== 'outcome');

const quiet = { info() {}, warn() {}, error() {} };

export async function batchJob({ s3, runtime, quick, env }: BenchContext) {
  log('batch job…');
  const rows = quick ? 20_000 : 100_000;
  const rounds = quick ? 1 : 3;
  const model = { name: 'diabetes', timeoutSeconds: 30, fastPath: 'auto' as const };
  const definition = localBatchDefinition(model, s3.bucket);
  const csvState = definition.definition.States.ScoreCsv as { ItemBatcher: { MaxItemsPerBatch: number } };
  const rowsPerBatch = csvState.ItemBatcher.MaxItemsPerBatch;
  const version = Number(env.BENCH_VERSION);

  // Rows of plausible measurements.
  const csv = `${FEATURES.join(',')}\n${Array.from({ length: rows }, (_, i) =>
    [
      i % 17,
      80 + (i % 120),
      50 + (i % 60),
      i % 50,
      (i * 7) % 300,
      18 + (i % 400) / 10,
      ((i % 200) + 10) / 100,
      21 + (i % 60),
    ].join(','),
  ).join('\n')}\n`;

  // The floor's model: the same version, loaded as the function loads it (the same executor).
  const { executor } = await loadVersion(
    { model: 'diabetes', alias: 'batch', version, seq: 0, eventId: '', updatedAt: '', etag: '' },
    {
      registry: new RegistryReader(s3.registry.store),
      model: 'diabetes',
      runtime: async () => runtime,
      fastPath: 'auto',
      log: quiet,
    },
  );
  const [input] = executor.signature.inputs;
  const [output] = executor.signature.outputs;
  if (!input || !output || input.shape[1] !== FEATURES.length) {
    throw new Error('the example model must take one [-1, 8] input and give one output');
  }
  let predictMs = 0;
  const floorJob = () => {
    const [header, ...records] = parse(csv) as string[][];
    const columns = FEATURES.map((f) => header!.indexOf(f));
    const width = columns.length;
    const out: string[] = [`${header!.join(',')},${output.name}`];
    for (let start = 0; start < records.length; start += rowsPerBatch) {
      const batch = records.slice(start, start + rowsPerBatch);
      const values = new Float32Array(batch.length * width);
      for (let r = 0; r < batch.length; r++) {
        for (let k = 0; k < width; k++) values[r * width + k] = Number(batch[r]![columns[k]!]);
      }
      const started = performance.now();
      const [predicted] = executor.predict([
        { name: input.name, dtype: 'float32', shape: [batch.length, width], values },
      ]);
      predictMs += performance.now() - started;
      const stride = predicted!.values.length / batch.length;
      for (let r = 0; r < batch.length; r++)
        out.push(`${batch[r]!.join(',')},${predicted!.values[r * stride]}`);
    }
    return `${out.join('\n')}\n`;
  };
  const floor = () => {
    predictMs = 0;
    const started = performance.now();
    floorJob();
    const seconds = (performance.now() - started) / 1000;
    return { rowsPerSecond: rows / seconds, predictRowsPerSecond: rows / (predictMs / 1000) };
  };

  let jobs = 0;
  let lastTimings: Record<string, number | undefined> = {};
  let usedThreads = 0;
  const job = async (threads: number | undefined) => {
    const id = `bench-${Date.now()}-${jobs++}`;
    const inputKey = keys.batchInput('diabetes', id, 'csv');
    await s3.registry.store.put(inputKey, csv);
    const started = performance.now();
    const result = await runLocalBatchJob({
      model,
      definition,
      input: { model: 'diabetes', version, job: id, format: 'csv', inputKey, features: FEATURES },
      s3: { endpoint: s3.endpoint, bucket: s3.bucket },
      bundle: env.BENCH_BUNDLE ?? join(DIST, 'functions/inference/index.mjs'),
      ...(threads !== undefined ? { threads } : {}),
      log: () => {},
    });
    const seconds = (performance.now() - started) / 1000;
    if (result.status !== 'SUCCEEDED' || result.progress.rowsFailed !== 0) {
      throw new Error(`bench batch job ${id}: ${result.status} ${result.error ?? ''} ${result.cause ?? ''}`);
    }
    if (threads === undefined) {
      lastTimings = { ...result.timings };
      usedThreads = result.threads;
    }
    return { rowsPerSecond: rows / seconds, output: keys.batchOutput('diabetes', id, 'csv') };
  };

  // Warm-up (the model loads, JIT settles), and the check that both do the same job.
  floor();
  const warm = await job(undefined);
  await job(0);
  const written = await s3.registry.store.get(warm.output);
  if (new TextDecoder().decode(written?.body) !== floorJob()) {
    throw new Error(`bench batch job: ${warm.output} differs from the floor's output`);
  }
  const floorRounds: number[] = [];
  const predictRounds: number[] = [];
  const oursRounds: number[] = [];
  const oneThreadRounds: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const measured = floor();
    floorRounds.push(measured.rowsPerSecond);
    predictRounds.push(measured.predictRowsPerSecond);
    oursRounds.push((await job(undefined)).rowsPerSecond);
    oneThreadRounds.push((await job(0)).rowsPerSecond);
  }
  const ratios = pairedRatios(oursRounds, floorRounds);
  return {
    rows,
    rowsPerBatch,
    rowsPerSecond: round(median(oursRounds), 0),
    floorRowsPerSecond: round(median(floorRounds), 0),
    ratio: round(median(ratios)),
    ratioInterval: interval(ratios),
    threads: usedThreads,
    // Batches scored in this thread instead: what the worker threads bring.
    rowsPerSecondInOneThread: round(median(oneThreadRounds), 0),
    oneThreadRatio: round(median(pairedRatios(oneThreadRounds, floorRounds))),
    // The floor's predicts alone: the model's cost in the job.
    predictRowsPerSecond: round(median(predictRounds), 0),
    // The last job's phases: where the time goes.
    lastJobMs: Object.fromEntries(Object.entries(lastTimings).map(([k, v]) => [k, round(v ?? 0, 0)])),
    rounds: { ours: oursRounds.map((r) => round(r, 0)), floor: floorRounds.map((r) => round(r, 0)) },
    target:
      '≥ 0.5× the floor: the same job in one thread of one process (csv-parse, the same executor, the output CSV)',
    note: 'the whole job: read the CSV from s3rver, batch, score, write ResultWriter files, assemble the output',
  };
}
