import { createHash } from 'node:crypto';
import type { io } from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { ConfigurationError, ConflictError, RegistryUnavailableError, ValidationError } from '../errors.js';
import { datasetPrefix, type ModelDefinition, type ModelSpec } from '../manifest.js';
import { artifactsToFiles, filesToArtifacts, signatureOf } from '../model/artifacts.js';
import type { ModelRegistry } from '../registry/registry.js';
import type { VersionMetadata } from '../registry/types.js';
import type { TfRuntime } from '../runtime/types.js';
import {
  type Dataset,
  type Examples,
  loadDataset,
  type Rejection,
  type SkippedObject,
  splitDataset,
} from './dataset.js';
import { evaluateGate, type GateDecision } from './gate.js';
import { renderTrainingReport } from './report.js';
import { compileModel, type EpochProgress, evaluateModel, trainModel } from './train.js';

/**
 * Bumped whenever a change to the training code would train a different model from the same data
 * and settings, so the idempotency check does not mistake the old result for the new one.
 */
export const TRAINER_VERSION = 1;

/** File name of the loss-curve picture under the version's report folder. */
export const REPORT_FILE = 'training-report.svg';

/*
 * What fits in one Lambda run (15 minutes, at most 10 GB), and how it is estimated.
 *
 * Time. For networks of this size tfjs spends its time on per-batch overhead (a dozen kernels
 * forward and backward, each dispatched from JavaScript), not arithmetic: the example network
 * (8→8 standardize→10→1) trains 627 rows × 150 epochs at batch 32 (3,000 steps, validation scored
 * every epoch) in about 3.2 s on the cpu backend of a laptop core, ~1 ms a step. A Lambda vCPU is
 * slower, so the estimate takes 2 ms a step, plus the arithmetic at 2.5e8 multiply-adds a second
 * (single-threaded JavaScript/WebAssembly matmul, conservative): forward + backward ≈ 3× the
 * forward multiply-adds per training row, 1× per validation row, every epoch. Of the function's
 * timeout, 60 s are kept for reading data, loading the live version, publishing and the alias
 * move, and training gets 80% of the rest; training also stops itself at that deadline, so an
 * underestimate fails cleanly instead of being killed mid-run.
 *
 * Memory. Parsing a CSV with csv-parse/sync holds every field as a JS string (~30 bytes each plus
 * the row arrays): about 8 bytes of heap per byte of CSV for the file being parsed, plus the
 * numbers accumulated (16 bytes per value) and their float32 copies (train/validation split, the
 * tensors, the per-epoch shuffled copy). 16 bytes of heap per byte of CSV bounds all of it, so the
 * data may total memoryMiB / 16: 128 MiB of CSV (about 3 million Pima-sized rows) at the default
 * 2,048 MiB, 640 MiB at Lambda's 10,240 MiB maximum.
 *
 * Larger jobs: train outside Lambda, on an AWS Batch or ECS Fargate task or a SageMaker training
 * job (hours, up to 120 GB on Fargate, GPUs on SageMaker) running the same `retrain()` with
 * `limits` raised, or stream the data in with `model.fitDataset` there; the registry, gate and
 * alias move are the same wherever it runs.
 */
export const BUDGET = {
  secondsPerStep: 0.002,
  multiplyAddsPerSecond: 2.5e8,
  reservedSeconds: 60,
  trainingShare: 0.8,
  heapBytesPerCsvByte: 16,
} as const;

export interface TrainingLimits {
  /** The function's timeout. @default spec.retrain.timeoutSeconds ?? 900 */
  readonly timeoutSeconds: number;
  /** The function's memory. @default spec.retrain.memoryMiB ?? 2048 */
  readonly memoryMiB: number;
}

/** Multiply-adds of one forward pass of the definition's network (standardization included). */
export function forwardMultiplyAdds(definition: ModelDefinition): number {
  let inputs = definition.features.length;
  let total = definition.standardize ? inputs * inputs : 0;
  for (const layer of definition.layers) {
    total += inputs * layer.units;
    inputs = layer.units;
  }
  return total;
}

/** Estimated training seconds for this many train and validation rows (see BUDGET). */
export function estimateTrainingSeconds(
  definition: ModelDefinition,
  trainRows: number,
  validationRows: number,
): number {
  const { epochs, batchSize } = definition.fit;
  const macs = forwardMultiplyAdds(definition);
  const perEpoch =
    Math.ceil(trainRows / batchSize) * BUDGET.secondsPerStep +
    (trainRows * 3 * macs + validationRows * macs) / BUDGET.multiplyAddsPerSecond;
  return epochs * perEpoch;
}

/** Seconds of the timeout given to training. */
export function trainingBudgetSeconds(limits: TrainingLimits): number {
  return (limits.timeoutSeconds - BUDGET.reservedSeconds) * BUDGET.trainingShare;
}

/** The settings that determine the trained model, in a stable key order. */
export function trainingSettings(definition: ModelDefinition) {
  return {
    trainer: TRAINER_VERSION,
    features: definition.features,
    label: definition.label,
    standardize: definition.standardize,
    layers: definition.layers,
    compile: definition.compile,
    fit: definition.fit,
    split: 'row-hash',
  };
}

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** sha256 of the canonical JSON of the training settings. */
export function settingsHash(definition: ModelDefinition): string {
  return createHash('sha256')
    .update(canonicalJson(trainingSettings(definition)))
    .digest('hex');
}

/** One structured log line of a run. */
export type RetrainEvent = { readonly event: string; readonly model: string } & Readonly<
  Record<string, unknown>
>;

export interface RetrainOptions {
  readonly registry: ModelRegistry;
  readonly spec: ModelSpec;
  readonly runtime: TfRuntime;
  /** The alias to compare with and move. @default spec.alias */
  readonly alias?: string;
  /** 'gate' (default) moves the alias when the gate passes; 'always' moves it anyway; 'never' only publishes. */
  readonly promote?: 'gate' | 'always' | 'never';
  /** Train and publish even when data and settings are those of the latest retrained version. */
  readonly force?: boolean;
  /** Recorded in the version metadata and the alias history. @default registry.actor */
  readonly who?: string;
  /** What started the run (schedule, cli, invoke), recorded in the version's source. */
  readonly trigger?: string;
  readonly log?: (event: RetrainEvent) => void;
  readonly onEpoch?: (progress: EpochProgress) => void | Promise<void>;
  /** Override the Lambda limits the run is sized against (e.g. outside Lambda). */
  readonly limits?: Partial<TrainingLimits>;
  /** Stop training past this time (ms since epoch), e.g. from Lambda's remaining time. */
  readonly deadline?: number;
}

/** How the live (alias) version scored on the new validation set. */
export type BaselineScore =
  | { readonly version: number; readonly metrics: Readonly<Record<string, number>> }
  | { readonly version: number; readonly error: string };

/** What was decided about the alias, and why. */
export interface PromotionDecision {
  readonly alias: string;
  readonly mode: 'gate' | 'always' | 'never';
  readonly gate: GateDecision;
  readonly promoted: boolean;
  readonly reason: string;
  /** The alias's version before the run (null: unset). */
  readonly from: number | null;
  /** The alias's version after the run. */
  readonly to: number | null;
  /** True when another writer moved the alias while this run trained. */
  readonly conflict?: boolean;
}

export type RetrainResult =
  | {
      readonly status: 'unchanged';
      readonly model: string;
      /** The retrained version that already has this data and these settings. */
      readonly version: number;
      readonly dataFingerprint: string;
      readonly settingsHash: string;
      readonly reason: string;
      /** Objects under the dataset prefix left out whole, and why. */
      readonly skipped: readonly SkippedObject[];
    }
  | {
      /** 'promoted': published and the alias moved to it; 'published': published, alias left alone. */
      readonly status: 'promoted' | 'published';
      readonly model: string;
      readonly version: number;
      readonly parent: number | null;
      readonly metrics: Readonly<Record<string, number>>;
      readonly baseline?: BaselineScore;
      readonly decision: PromotionDecision;
      readonly reportKey: string;
      readonly rows: number;
      readonly rejectedRows: number;
      readonly rejections: readonly Rejection[];
      /** Objects under the dataset prefix left out whole, and why. */
      readonly skipped: readonly SkippedObject[];
      readonly dataFingerprint: string;
      readonly settingsHash: string;
      readonly durationMs: number;
    };

/** The newest version made by retraining, if any (newest first, so usually one read). */
async function latestRetrained(registry: ModelRegistry, model: string): Promise<VersionMetadata | undefined> {
  const versions = await registry.listVersions(model);
  for (let i = versions.length - 1; i >= 0; i--) {
    const metadata = await registry.getMetadata(model, versions[i]!);
    if (metadata.source.kind === 'retrain') return metadata;
  }
  return undefined;
}

/**
 * Scores the alias's version on the validation set. A version that cannot be scored (another
 * format, other inputs, corrupt) is reported with the reason rather than thrown: the gate then
 * refuses, since "better than something we could not measure" is unknown. Registry outages are
 * thrown: retrying later is the right answer to those.
 */
async function scoreBaseline(
  registry: ModelRegistry,
  runtime: TfRuntime,
  model: string,
  version: number,
  definition: ModelDefinition,
  validation: Examples,
): Promise<BaselineScore> {
  let loaded: LayersModel | undefined;
  try {
    const { metadata, files } = await registry.readVersion(model, version);
    if (metadata.format !== 'layers-model') {
      return {
        version,
        error: `v${version} is a ${metadata.format}, which cannot be scored as a Keras model`,
      };
    }
    const artifacts: io.ModelArtifacts = filesToArtifacts(files);
    loaded = await runtime.layers.loadLayersModel(runtime.tf.io.fromMemory(artifacts));
    const inputs = loaded.inputs[0]?.shape;
    if (loaded.inputs.length !== 1 || inputs?.length !== 2 || inputs[1] !== definition.features.length) {
      return {
        version,
        error: `v${version} takes inputs ${JSON.stringify(loaded.inputs.map((t) => t.shape))}, not ${definition.features.length} features`,
      };
    }
    compileModel(runtime, loaded, definition);
    return { version, metrics: await evaluateModel(runtime, loaded, definition, validation, 'val_') };
  } catch (error) {
    if (error instanceof RegistryUnavailableError) throw error;
    return { version, error: `v${version} could not be scored: ${(error as Error).message}` };
  } finally {
    loaded?.dispose();
  }
}

/** The model's weights and topology as version files (model.json + shards). */
async function modelFiles(runtime: TfRuntime, model: LayersModel) {
  let captured: io.ModelArtifacts | undefined;
  await model.save(
    runtime.tf.io.withSaveHandler(async (artifacts) => {
      captured = artifacts;
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
  if (!captured) throw new ConfigurationError('The trained model produced no artifacts');
  return artifactsToFiles(captured);
}

const round = (n: number) => Math.round(n * 1e4) / 1e4;

/**
 * Retrains a model from the data under its dataset prefix and publishes the result as a new
 * version; moves the alias when the promotion gate passes (see PromotionDecision). Publishes nothing
 * when the newest retrained version already has the same data fingerprint and settings hash.
 *
 * Safe under concurrency: version numbers come from the registry's claims, and the alias moves
 * only from the version this run compared against (compare-and-swap), so a run that lost a race
 * publishes its version but leaves the alias to the winner and says so.
 *
 * Throws ConfigurationError when the model has no definition or no data, or the data does not fit
 * the Lambda limits; ValidationError when a file lacks a column or too few rows remain.
 */
export async function retrain(options: RetrainOptions): Promise<RetrainResult> {
  const { registry, spec, runtime, force = false, promote = 'gate' } = options;
  const started = Date.now();
  const model = spec.name;
  const alias = options.alias ?? spec.alias;
  const who = options.who ?? registry.actor;
  const log = (event: string, fields: Record<string, unknown> = {}) =>
    options.log?.({ event, model, ...fields });
  const definition = spec.definition;
  if (!definition)
    throw new ConfigurationError(`Model "${model}" has no "definition" in the manifest to train`);
  const limits: TrainingLimits = {
    timeoutSeconds: options.limits?.timeoutSeconds ?? spec.retrain?.timeoutSeconds ?? 900,
    memoryMiB: options.limits?.memoryMiB ?? spec.retrain?.memoryMiB ?? 2048,
  };

  // 1. Data: sized before download, then parsed and fingerprinted.
  const prefix = datasetPrefix(spec);
  const dataset: Dataset = await loadDataset(registry.store, prefix, definition, {
    maxBytes: Math.floor((limits.memoryMiB * 2 ** 20) / BUDGET.heapBytesPerCsvByte),
  });
  const hash = settingsHash(definition);
  log('dataset', {
    prefix,
    objects: dataset.objects.length,
    rows: dataset.rows,
    rejectedRows: dataset.rejectedRows,
    rejectedByKind: dataset.rejectedByKind,
    rejections: dataset.rejections,
    skipped: dataset.skipped,
    dataFingerprint: dataset.fingerprint,
    settingsHash: hash,
  });
  for (const object of dataset.skipped) log('skipped', { key: object.key, reason: object.reason });

  // 2. Idempotency: same data, same settings → the newest retrained version already is this model.
  if (!force) {
    const latest = await latestRetrained(registry, model);
    const training = latest?.training as { dataFingerprint?: string; settingsHash?: string } | undefined;
    if (latest && training?.dataFingerprint === dataset.fingerprint && training.settingsHash === hash) {
      const reason = `v${latest.version} was trained on the same data (${dataset.fingerprint.slice(0, 12)}) with the same settings`;
      log('unchanged', { version: latest.version, reason });
      return {
        status: 'unchanged',
        model,
        version: latest.version,
        dataFingerprint: dataset.fingerprint,
        settingsHash: hash,
        reason,
        skipped: dataset.skipped,
      };
    }
  }

  // 3. Split and size the job.
  const split = splitDataset(dataset, definition.fit.validationSplit, definition.fit.seed);
  const minimum = 10;
  if (split.train.rows < minimum || split.validation.rows < 1) {
    throw new ValidationError(
      `Too little usable data under ${prefix}: ${dataset.rows} rows (${dataset.rejectedRows} rejected` +
        `${dataset.skipped.length > 0 ? `, ${dataset.skipped.length} object(s) skipped: ${dataset.skipped.map((o) => `${o.key}: ${o.reason}`).join('; ')}` : ''}) split into ` +
        `${split.train.rows} train / ${split.validation.rows} validation; need at least ${minimum} train and 1 validation row`,
    );
  }
  const estimate = estimateTrainingSeconds(definition, split.train.rows, split.validation.rows);
  const budget = trainingBudgetSeconds(limits);
  if (estimate > budget) {
    throw new ConfigurationError(
      `Training ${model} would take about ${Math.ceil(estimate)} s (${split.train.rows} rows × ${definition.fit.epochs} epochs), ` +
        `more than the ${Math.floor(budget)} s a ${limits.timeoutSeconds} s Lambda run allows; ` +
        'reduce epochs or data, or train outside Lambda (see retrain.ts)',
    );
  }
  const deadline = Math.min(options.deadline ?? Number.POSITIVE_INFINITY, started + budget * 1000);
  log('training', {
    train: split.train.rows,
    validation: split.validation.rows,
    epochs: definition.fit.epochs,
    estimatedSeconds: Math.ceil(estimate),
    budgetSeconds: Math.floor(budget),
  });

  // 4. Train, and score candidate and baseline on the same validation rows.
  const trained = await trainModel({
    runtime,
    definition,
    train: split.train,
    validation: split.validation,
    deadline,
    ...(options.onEpoch ? { onEpoch: options.onEpoch } : {}),
  });
  try {
    const validationMetrics = await evaluateModel(
      runtime,
      trained.model,
      definition,
      split.validation,
      'val_',
    );
    const metrics: Record<string, number> = {};
    for (const [name, values] of Object.entries(trained.history)) {
      if (!name.startsWith('val_') && values.length > 0) metrics[name] = values[values.length - 1]!;
    }
    Object.assign(metrics, validationMetrics);

    const pointer = await registry.getAlias(model, alias);
    const from = pointer?.version ?? null;
    const baseline =
      from === null
        ? undefined
        : await scoreBaseline(registry, runtime, model, from, definition, split.validation);
    log('evaluated', { metrics, baseline: baseline ?? null, alias, from });

    // 5. The gate is decided before publishing, so the version's metadata records it either way.
    const gate: GateDecision =
      baseline && 'error' in baseline
        ? {
            ...evaluateGate(definition.gate, metrics),
            pass: false,
            reason: `the ${alias} version cannot be compared: ${baseline.error}`,
          }
        : evaluateGate(definition.gate, metrics, baseline?.metrics);

    const files = await modelFiles(runtime, trained.model);
    let reportKey = '';
    const published = await registry.publish(
      model,
      files,
      {
        format: 'layers-model',
        signature: signatureOf(runtime, trained.model),
        metrics,
        source: { kind: 'retrain', alias, ...(options.trigger ? { trigger: options.trigger } : {}) },
        parent: from,
        createdBy: who,
        training: {
          settings: trainingSettings(definition),
          settingsHash: hash,
          dataFingerprint: dataset.fingerprint,
          datasetPrefix: prefix,
          objects: dataset.objects.map(({ key, sha256, size }) => ({ key, sha256, size })),
          rows: dataset.rows,
          rejectedRows: dataset.rejectedRows,
          rejectedByKind: dataset.rejectedByKind,
          rejections: dataset.rejections,
          skipped: dataset.skipped,
          split: {
            method: split.method,
            seed: split.seed,
            validationSplit: split.validationSplit,
            train: split.train.rows,
            validation: split.validation.rows,
          },
          epochs: trained.epochs,
          durationMs: trained.durationMs,
          ...(trained.standardization ? { standardization: trained.standardization } : {}),
          baseline: baseline ?? null,
          gate,
        },
      },
      {
        // 6. The report, beside the version and named in its metadata: written once the registry
        // has decided the number (its title carries it) and before the metadata commits the version.
        beforeCommit: async (version) => {
          reportKey = await registry.putReport(
            model,
            version,
            REPORT_FILE,
            renderTrainingReport({
              model,
              version,
              history: trained.history,
              subtitle:
                `${dataset.rows} rows (${split.train.rows} train / ${split.validation.rows} validation, ` +
                `${dataset.rejectedRows} rejected) · ${trained.epochs} epochs, ${definition.compile.optimizer} ` +
                `lr ${definition.compile.learningRate}, batch ${definition.fit.batchSize} · data ${dataset.fingerprint.slice(0, 12)}`,
            }),
            'image/svg+xml',
          );
          return { report: { lossCurve: reportKey } };
        },
      },
    );
    const version = published.version;
    log('published', { version, parent: from, metrics });

    // 7. The alias, compare-and-swap against the version the gate compared with.
    const move = promote === 'always' || (promote === 'gate' && gate.pass);
    let decision: PromotionDecision;
    if (!move) {
      const reason = promote === 'never' ? 'promotion disabled for this run' : `gate refused: ${gate.reason}`;
      decision = { alias, mode: promote, gate, promoted: false, reason, from, to: from };
    } else {
      const why =
        promote === 'always'
          ? `retrained v${version}, promoted without gate (${gate.reason})`
          : `retrained v${version}: ${gate.reason}`;
      try {
        await registry.setAlias(model, alias, version, {
          who,
          why,
          kind: 'retrain',
          expectedVersion: from,
          details: {
            gate: {
              metric: gate.thresholds.metric,
              candidate: round(gate.candidate),
              baseline: gate.baseline === null ? null : round(gate.baseline),
              delta: gate.delta === null ? null : round(gate.delta),
              improvement: gate.improvement === null ? null : round(gate.improvement),
              pass: gate.pass,
              thresholds: gate.thresholds,
            },
            mode: promote,
            metrics,
            baseline: baseline ?? null,
            dataFingerprint: dataset.fingerprint,
            report: reportKey,
          },
        });
        decision = { alias, mode: promote, gate, promoted: true, reason: why, from, to: version };
      } catch (error) {
        if (!(error instanceof ConflictError)) throw error;
        const now = await registry.getAlias(model, alias).catch(() => undefined);
        const reason =
          `${model}@${alias} moved from v${from ?? 'none'} to v${now?.version ?? '?'} while this run trained; ` +
          `v${version} is published but not promoted (compare it and promote it by hand if wanted)`;
        decision = {
          alias,
          mode: promote,
          gate,
          promoted: false,
          reason,
          from,
          to: now?.version ?? null,
          conflict: true,
        };
      }
    }
    log('decision', { version, ...decision });

    return {
      status: decision.promoted ? 'promoted' : 'published',
      model,
      version,
      parent: from,
      metrics,
      ...(baseline ? { baseline } : {}),
      decision,
      reportKey,
      rows: dataset.rows,
      rejectedRows: dataset.rejectedRows,
      rejections: dataset.rejections,
      skipped: dataset.skipped,
      dataFingerprint: dataset.fingerprint,
      settingsHash: hash,
      durationMs: Date.now() - started,
    };
  } finally {
    trained.model.dispose();
  }
}

/** True when a retrain error is the caller's to fix (data, manifest), not a fault to retry. */
export function isUserError(error: unknown): boolean {
  return error instanceof ConfigurationError || error instanceof ValidationError;
}
