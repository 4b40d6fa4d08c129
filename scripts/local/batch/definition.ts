/**
 * A model's batch state machine definition for the local stack: the construct's own, rendered
 * offline (infra/batch-definition.ts) with the model's `batch` settings, or the manifest's
 * defaults when it has none, and the local registry bucket. Loads aws-cdk-lib: import it lazily.
 */

import { type ModelSpec, parseManifest } from '../../../functions/shared/manifest.js';
import { type RenderedBatchDefinition, renderBatchDefinition } from '../../../infra/batch-definition.js';
import type { BatchSettings } from '../../../infra/constructs/batch-job.js';

/** The manifest's `batch` defaults (its schema holds them: a model with `batch: {}`). */
export function defaultBatchSettings(): BatchSettings {
  const parsed = parseManifest({ models: [{ name: 'defaults', batch: {} }] }, 'batch defaults');
  return parsed.models[0]!.batch!;
}

const rendered = new Map<string, RenderedBatchDefinition>();

/** The definition `cdk synth` would deploy for `model`, pointing at `bucket` (cached per settings). */
export function localBatchDefinition(
  model: Pick<ModelSpec, 'name' | 'timeoutSeconds' | 'batch'>,
  bucket: string,
): RenderedBatchDefinition {
  const settings = model.batch ?? defaultBatchSettings();
  const key = JSON.stringify([model.name, model.timeoutSeconds, settings, bucket]);
  let definition = rendered.get(key);
  if (!definition) {
    definition = renderBatchDefinition({
      model: model.name,
      settings,
      scorerTimeoutSeconds: model.timeoutSeconds,
      bucket,
    });
    rendered.set(key, definition);
  }
  return definition;
}
