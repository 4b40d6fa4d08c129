import { readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { SingleBar } from 'cli-progress';
import type { Command } from 'commander';
import { AIAAS_MANIFEST, type Environment, readString } from '../functions/shared/env.js';
import { ConfigurationError, ValidationError } from '../functions/shared/errors.js';
import { datasetPrefix, loadManifest, type ModelSpec } from '../functions/shared/manifest.js';
import { assertFileName } from '../functions/shared/registry/layout.js';
import type { ModelRegistry } from '../functions/shared/registry/registry.js';
import type { TfRuntime } from '../functions/shared/runtime/types.js';
import { checkCsv } from '../functions/shared/training/csv.js';
import { type RetrainResult, retrain } from '../functions/shared/training/retrain.js';
import { createRuntime } from '../layers/tfjs-runtime/runtime.js';
import { resolveTarget } from './context.js';
import { ROOT } from './paths.js';

export const MANIFEST_PATH = join(ROOT, 'models/manifest.json');

/** The manifest the CLI and `npm start` read: AIAAS_MANIFEST, else the repository's. */
export function manifestPath(env: Environment = process.env): string {
  return readString(env, AIAAS_MANIFEST) ?? MANIFEST_PATH;
}

/** The model's manifest entry, when the manifest declares it (the CLI also serves models that are not). */
export function manifestEntry(model: string, path = manifestPath()): ModelSpec | undefined {
  try {
    return loadManifest(path).models.find((m) => m.name === model);
  } catch {
    return undefined;
  }
}

/** Where a model's training data lives: the manifest's dataset prefix, else datasets/<model>/. */
function dataPrefix(model: string): { prefix?: string } {
  const spec = manifestEntry(model);
  return spec ? { prefix: datasetPrefix(spec) } : {};
}

export function specOf(model: string, path = manifestPath()): ModelSpec {
  const spec = loadManifest(path).models.find((m) => m.name === model);
  if (!spec) throw new ConfigurationError(`Model "${model}" is not in the manifest ${path}`);
  if (!spec.definition)
    throw new ConfigurationError(`Model "${model}" has no "definition" in the manifest to train`);
  return spec;
}

/**
 * Retrains with a progress bar of epochs and the loss, then prints the gate's decision. Shared by
 * `aiaas retrain` and `npm start` (first run).
 */
export async function retrainWithProgress(
  registry: ModelRegistry,
  spec: ModelSpec,
  options: {
    force?: boolean;
    promote?: 'gate' | 'always' | 'never';
    runtime?: TfRuntime;
    stream?: NodeJS.WritableStream;
  } = {},
): Promise<RetrainResult> {
  const runtime = options.runtime ?? (await createRuntime('auto'));
  const bar = new SingleBar({
    format: `training ${spec.name} [{bar}] epoch {value}/{total} | loss {loss} | val_loss {val_loss} | val_accuracy {val_accuracy}`,
    hideCursor: true,
    stream: options.stream ?? process.stderr,
    // In logs and CI (no TTY) a line every few seconds instead of a redrawn bar.
    noTTYOutput: true,
    notTTYSchedule: 3000,
  });
  let started = false;
  try {
    return await retrain({
      registry,
      spec,
      runtime,
      promote: options.promote ?? 'gate',
      force: options.force ?? false,
      onEpoch: ({ epoch, epochs, logs }) => {
        const fmt = (k: string) => (typeof logs[k] === 'number' ? (logs[k] as number).toFixed(4) : '-');
        const payload = { loss: fmt('loss'), val_loss: fmt('val_loss'), val_accuracy: fmt('val_accuracy') };
        if (!started) {
          bar.start(epochs, epoch, payload);
          started = true;
        }
        bar.update(epoch, payload);
      },
    });
  } finally {
    if (started) bar.stop();
  }
}

/** What a person wants to read after a retrain: the version, its numbers, the gate's decision. */
export function describeRetrain(model: string, result: RetrainResult): string[] {
  const skipped = result.skipped.map((o) => `  skipped ${o.key}: ${o.reason}`);
  if (result.status === 'unchanged') {
    return [
      `${model}: nothing to do — ${result.reason} (v${result.version}); use --force to train anyway`,
      ...skipped,
    ];
  }
  const m = result.metrics;
  const fmt = (k: string) => (m[k] === undefined ? '-' : m[k]!.toFixed(4));
  const lines = [
    `${model} v${result.version}: trained on ${result.rows} rows (${result.rejectedRows} rejected) in ${(result.durationMs / 1000).toFixed(1)} s`,
    `  loss ${fmt('loss')}  accuracy ${fmt('accuracy')}  val_loss ${fmt('val_loss')}  val_accuracy ${fmt('val_accuracy')}`,
  ];
  lines.push(...skipped);
  for (const r of result.rejections.slice(0, 5)) lines.push(`  rejected: ${JSON.stringify(r)}`);
  const d = result.decision;
  lines.push(
    d.promoted
      ? `  promoted ${model}@${d.alias}: ${d.from === null ? 'none' : `v${d.from}`} → v${d.to} (${d.reason})`
      : d.canary
        ? `  rollout started: ${model}@${d.alias} serves v${d.from} with canary v${d.canary.version} at ${d.canary.weight} % (${d.reason})`
        : `  not promoted: ${d.reason}`,
  );
  lines.push(`  training report: ${result.reportKey}`);
  return lines;
}

export function retrainCommand(
  program: Command,
  io: { out: (line?: string) => void; note: (line: string) => void; modelArg: (v: string) => string },
) {
  program
    .command('retrain')
    .description(
      "train the manifest's definition on the model's dataset, publish a version, promote if the gate passes",
    )
    .argument('<model>', 'model name', io.modelArg)
    .option('--force', 'train even if data and settings are unchanged since the last retrained version')
    .option('--promote <when>', 'gate (default), always or never', 'gate')
    .action(async (model: string, opts: { force?: boolean; promote: string }) => {
      if (!['gate', 'always', 'never'].includes(opts.promote)) {
        throw new ValidationError(`--promote must be gate, always or never, not "${opts.promote}"`);
      }
      const { registry } = resolveTarget();
      const result = await retrainWithProgress(registry, specOf(model), {
        force: !!opts.force,
        promote: opts.promote as 'gate' | 'always' | 'never',
      });
      for (const line of describeRetrain(model, result)) io.out(line);
    });

  const dataset = program.command('dataset').description("manage a model's training data in the registry");
  dataset
    .command('put')
    .description('upload a CSV (with a header) under datasets/<model>/')
    .argument('<model>', 'model name', io.modelArg)
    .argument('<file>', 'CSV file')
    .option('--name <name>', 'object name under the prefix (default: the file name)')
    .option(
      '--replace',
      "remove the model's other training data (e.g. the generated data set) after the upload",
    )
    .action(async (model: string, file: string, opts: { name?: string; replace?: boolean }) => {
      // The object's name is checked first: a bad name is wrong whatever the file holds.
      const name = assertFileName(opts.name ?? basename(file));
      const definition = manifestEntry(model)?.definition;
      if (!definition) {
        throw new ValidationError(
          `Cannot check ${file} for ${model}: the manifest has no "definition" for ${model}, so no columns to check it against (retraining needs one too)`,
        );
      }
      const body = await readFile(file).catch((cause) => {
        throw new ValidationError(
          `Cannot read ${file}: ${(cause as NodeJS.ErrnoException).code ?? 'error'}`,
          { cause },
        );
      });
      // Refused before anything is uploaded: a bad file in the registry would be skipped by every retrain.
      const { checkedRows } = checkCsv(body, basename(file), definition);
      const { registry } = resolveTarget();
      const key = await registry.putDataset(model, name, body, dataPrefix(model));
      io.out(
        `Uploaded ${file} (${body.byteLength} bytes, header and first ${checkedRows} rows checked) to ${key}`,
      );
      if (opts.replace) {
        for (const removed of await registry.removeDataset(model, { keep: key, ...dataPrefix(model) }))
          io.out(`Removed ${removed}`);
      }
    });

  dataset
    .command('ls')
    .description("list a model's training data: every CSV under datasets/<model>/ is used")
    .argument('<model>', 'model name', io.modelArg)
    .action(async (model: string) => {
      const { registry } = resolveTarget();
      const objects = await registry.listDataset(model, dataPrefix(model).prefix);
      if (objects.length === 0)
        return io.out(`No training data for ${model}: aiaas dataset put ${model} <file.csv>`);
      for (const o of objects) io.out(`${o.key}  ${o.size} bytes`);
    });

  dataset
    .command('rm')
    .description('remove one CSV from the training data')
    .argument('<model>', 'model name', io.modelArg)
    .argument('<name>', 'object name under datasets/<model>/')
    .action(async (model: string, name: string) => {
      const { registry } = resolveTarget();
      const removed = await registry.removeDataset(model, { only: name, ...dataPrefix(model) });
      if (removed.length === 0) throw new ValidationError(`datasets/${model}/${name} does not exist`);
      io.out(`Removed ${removed.join(', ')}`);
    });
}
