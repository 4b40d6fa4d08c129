/**
 * One retraining run, step by step: the data (dataset.ts), the job's identity and size
 * (settings.ts, budget.ts), training (train.ts), scoring against the alias's version
 * (baseline.ts), the gate (gate.ts), publishing with the report, and the alias move (promote.ts).
 * This module only sequences them and decides what the run returns.
 */
import type { io } from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { ConfigurationError, ValidationError } from '../errors.js';
import { datasetPrefix, type ModelSpec } from '../manifest.js';
import { artifactsToFiles, signatureOf } from '../model/artifacts.js';
import type { ModelRegistry } from '../registry/registry.js';
import type { VersionMetadata } from '../registry/types.js';
import type { TfRuntime } from '../runtime/types.js';
import { type BaselineScore, scoreBaseline } from './baseline.js';
import { BUDGET, estimateTrainingSeconds, type TrainingLimits, trainingBudgetSeconds } from './budget.js';
import type { Rejection } from './csv.js';
import { type Dataset, loadDataset, type SkippedObject, splitDataset } from './dataset.js';
import { evaluateGate, type GateDecision } from './gate.js';
import { type PromotionDecision, promoteVersion } from './promote.js';
import { renderTrainingReport } from './report.js';
import { settingsHash, trainingSettings } from './settings.js';
import { type EpochProgress, evaluateModel, trainModel } from './train.js';

/** File name of the loss-curve picture under the version's report folder. */
export const REPORT_FILE = 'training-report.svg';

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
        'reduce epochs or data, or train outside Lambda (see training/budget.ts)',
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
          // Per-epoch curves, for the console to draw (6 significant digits: the picture needs no more).
          history: Object.fromEntries(
            Object.entries(trained.history).map(([name, values]) => [
              name,
              values.map((v) => Number(v.toPrecision(6))),
            ]),
          ),
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

    // 7. The alias, compare-and-swap against the version the gate compared with (or, with the
    // gate's onPass 'rollout', the canary beside it).
    const decision = await promoteVersion({
      registry,
      model,
      alias,
      mode: promote,
      version,
      from,
      gate,
      who,
      metrics,
      baseline,
      dataFingerprint: dataset.fingerprint,
      reportKey,
      ...(definition.gate.onPass === 'rollout' && spec.rollout
        ? { rollout: { weight: spec.rollout.steps[0]!, memoryMiB: spec.memoryMiB } }
        : {}),
    });
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
