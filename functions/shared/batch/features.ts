/**
 * Which CSV columns feed a version in a batch job, in input order. A CSV row is one instance of a
 * model with one input of shape [-1, n]; its n numbers come from, in this order of preference:
 *   1. the features the version was trained with (retraining records them in its metadata): the
 *      truth for that version even if the manifest has changed since;
 *   2. the manifest's definition features the job was started with (BatchJobInput.features);
 *   3. every column of the header, in the header's order (a model with no feature names).
 * A list whose length is not n is skipped. Shared by the function (to read rows) and the CLI (to
 * check a header before uploading), so both decide alike.
 */
import { ValidationError } from '../errors.js';
import type { Signature, TensorSpec, VersionMetadata } from '../registry/types.js';

/** The single input a CSV row feeds, and how many numbers a row gives it. */
export interface CsvInput {
  readonly spec: TensorSpec;
  readonly width: number;
}

/** The model's CSV input, or a ValidationError saying why this model cannot read CSV rows. */
export function csvInputOf(signature: Signature): CsvInput {
  const [spec, ...others] = signature.inputs;
  const width = spec?.shape.length === 2 ? spec.shape[1] : undefined;
  if (!spec || others.length > 0 || typeof width !== 'number' || width < 1) {
    const described = signature.inputs
      .map((s) => `"${s.name}" [${s.shape.map((d) => d ?? -1).join(', ')}]`)
      .join(', ');
    throw new ValidationError(
      `CSV rows need a model with one input of shape [-1, n]; this one takes ${described || 'no inputs'}: send JSON Lines of instances instead`,
    );
  }
  return { spec, width };
}

/** Where the feature list came from. */
export type FeatureSource = 'version' | 'job' | 'header';

/** The columns to read, or undefined: every column in header order (source `header`). */
export function batchFeatures(
  metadata: Pick<VersionMetadata, 'training'>,
  jobFeatures: readonly string[] | undefined,
  width: number,
): { readonly features?: readonly string[]; readonly source: FeatureSource } {
  const settings = metadata.training?.settings as { features?: unknown } | undefined;
  const trained = settings?.features;
  if (isNames(trained) && trained.length === width) return { features: trained, source: 'version' };
  if (jobFeatures && jobFeatures.length === width) return { features: jobFeatures, source: 'job' };
  return { source: 'header' };
}

/**
 * Checks a CSV header against the columns a job will read: every feature present (extra columns
 * are carried to the output, unread), or, without feature names, exactly `width` columns.
 */
export function checkHeader(
  header: readonly string[],
  features: readonly string[] | undefined,
  width: number,
): void {
  if (features) {
    const missing = features.filter((f) => !header.includes(f));
    if (missing.length > 0) {
      throw new ValidationError(
        `The CSV header has no column ${missing.map((m) => `"${m}"`).join(', ')}: the model reads ${features.map((f) => `"${f}"`).join(', ')}`,
      );
    }
    return;
  }
  if (header.length !== width) {
    throw new ValidationError(
      `The CSV header has ${header.length} columns; the model takes ${width} numbers per row and names no features, so give exactly ${width} columns, in input order`,
    );
  }
}

function isNames(value: unknown): value is readonly string[] {
  return Array.isArray(value) && value.every((v) => typeof v === 'string' && v !== '');
}
