/**
 * The identity of a training job: the settings that determine the trained model, hashed in a
 * canonical form, so a run on the same data with the same settings is recognised and skipped.
 */
import { createHash } from 'node:crypto';
import type { ModelDefinition } from '../manifest.js';

/**
 * Bumped whenever a change to the training code would train a different model from the same data
 * and settings, so the idempotency check does not mistake the old result for the new one.
 */
export const TRAINER_VERSION = 1;

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
