/**
 * The training data of a model: every `.csv` object under its dataset prefix, sized before it is
 * downloaded, parsed (csv.ts), fingerprinted over keys and contents so a retrain on unchanged data
 * is recognised, and split deterministically into train and validation rows.
 */
import { createHash } from 'node:crypto';
import { sha256 } from '../digest.js';
import { ConfigurationError, ValidationError } from '../errors.js';
import type { ModelDefinition } from '../manifest.js';
import type { ObjectStore } from '../registry/store.js';
import {
  MAX_REPORTED_REJECTIONS,
  type ParsedCsv,
  parseCsv,
  type Rejection,
  type RejectionKind,
} from './csv.js';

/** Examples as flat row-major arrays: compact enough for Lambda memory, and what tensor2d takes. */
export interface Examples {
  /** rows × features values, row-major. */
  readonly x: Float32Array;
  /** One label per row (a class index for categorical models). */
  readonly y: Float32Array;
  readonly rows: number;
  readonly features: number;
}

export interface DatasetObject {
  readonly key: string;
  readonly sha256: string;
  readonly size: number;
  readonly rows: number;
  readonly rejectedRows: number;
}

/** An object under the dataset prefix that retraining could not use at all, and why. */
export interface SkippedObject {
  readonly key: string;
  /** Absent when the object could not be read. */
  readonly sha256?: string;
  readonly size?: number;
  readonly reason: string;
}

export interface Dataset extends Examples {
  readonly featureNames: readonly string[];
  readonly label: string;
  /** The CSV objects read, in key order. */
  readonly objects: readonly DatasetObject[];
  /** Objects left out whole (unreadable, or a header without the model's columns), in key order. */
  readonly skipped: readonly SkippedObject[];
  /** sha256 over every object's key and sha256, skipped ones too: changes exactly when the data does. */
  readonly fingerprint: string;
  readonly rejectedRows: number;
  readonly rejectedByKind: Readonly<Partial<Record<RejectionKind, number>>>;
  /** The first few rejections, for the report and the logs. */
  readonly rejections: readonly Rejection[];
}

export interface LoadDatasetOptions {
  /** Refuse (ConfigurationError) before downloading when the CSV objects total more bytes than this. */
  readonly maxBytes?: number;
}

/** The CSV objects under a prefix, in key order (S3's own order, made explicit). */
export async function listDatasetObjects(store: ObjectStore, prefix: string) {
  const listed = await store.list(prefix);
  return listed
    .filter((o) => o.key.toLowerCase().endsWith('.csv'))
    .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

/**
 * Reads every `.csv` object under `prefix`, in key order, into one dataset. An object that cannot
 * be used at all (gone, not readable as CSV, a header without the model's columns) is skipped and
 * listed in `skipped` with the reason, so one bad upload does not block every retrain. Throws
 * ConfigurationError when there is no CSV object or it is too large, ValidationError when every
 * object was skipped.
 */
export async function loadDataset(
  store: ObjectStore,
  prefix: string,
  definition: ModelDefinition,
  options: LoadDatasetOptions = {},
): Promise<Dataset> {
  const listed = await listDatasetObjects(store, prefix);
  if (listed.length === 0) {
    throw new ConfigurationError(
      `No training data: no .csv object under ${store.description}/${prefix} (upload one with "aiaas dataset put")`,
    );
  }
  const totalBytes = listed.reduce((n, o) => n + o.size, 0);
  if (options.maxBytes !== undefined && totalBytes > options.maxBytes) {
    throw new ConfigurationError(
      `Training data under ${prefix} is ${mib(totalBytes)} MiB in ${listed.length} objects; retraining in ` +
        `Lambda reads at most ${mib(options.maxBytes)} MiB. Train larger data sets outside Lambda (see training/budget.ts)`,
    );
  }

  const x: number[] = [];
  const y: number[] = [];
  const objects: DatasetObject[] = [];
  const rejections: Rejection[] = [];
  const rejectedByKind: Partial<Record<RejectionKind, number>> = {};
  let rejectedRows = 0;
  const skipped: SkippedObject[] = [];
  const fingerprint = createHash('sha256');
  // One object at a time, so peak memory is one file's text plus the numbers so far.
  for (const { key } of listed) {
    const object = await store.get(key);
    if (!object) {
      // Removed since the listing: it is not part of the data any more.
      skipped.push({ key, reason: 'removed while the training data was read' });
      continue;
    }
    const digest = sha256(object.body);
    fingerprint.update(`${key}\0${digest}\n`);
    let parsed: ParsedCsv;
    try {
      parsed = parseCsv(object.body, key, definition);
    } catch (error) {
      if (!(error instanceof ValidationError)) throw error;
      skipped.push({ key, sha256: digest, size: object.body.byteLength, reason: error.message });
      continue;
    }
    for (const v of parsed.x) x.push(v);
    for (const v of parsed.y) y.push(v);
    rejectedRows += parsed.rejectedRows;
    for (const [kind, n] of Object.entries(parsed.rejectedByKind) as [RejectionKind, number][]) {
      rejectedByKind[kind] = (rejectedByKind[kind] ?? 0) + n;
    }
    for (const r of parsed.rejections) if (rejections.length < MAX_REPORTED_REJECTIONS) rejections.push(r);
    objects.push({
      key,
      sha256: digest,
      size: object.body.byteLength,
      rows: parsed.rows,
      rejectedRows: parsed.rejectedRows,
    });
  }

  if (objects.length === 0) {
    throw new ValidationError(
      `No usable training data under ${store.description}/${prefix}: every object was skipped (` +
        `${skipped.map((o) => `${o.key}: ${o.reason}`).join('; ')})`,
    );
  }
  return {
    x: Float32Array.from(x),
    y: Float32Array.from(y),
    rows: y.length,
    features: definition.features.length,
    featureNames: definition.features,
    label: definition.label,
    objects,
    skipped,
    fingerprint: fingerprint.digest('hex'),
    rejectedRows,
    rejectedByKind,
    rejections,
  };
}

function mib(bytes: number): string {
  return (bytes / 2 ** 20).toFixed(1);
}

export interface Split {
  readonly train: Examples;
  readonly validation: Examples;
  readonly seed: number;
  readonly validationSplit: number;
  readonly method: 'row-hash';
}

/** A seeded 32-bit hash of one row's stored values (features and label). */
function rowHash(x: Float32Array, y: Float32Array, row: number, features: number, seed: number): number {
  const bits = new Uint32Array(x.buffer, x.byteOffset + row * features * 4, features);
  let h = seed >>> 0;
  const mix = (word: number) => {
    let k = Math.imul(word, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    h ^= Math.imul(k, 0x1b873593);
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  };
  for (let i = 0; i < features; i++) mix(bits[i]!);
  mix(new Uint32Array(y.buffer, y.byteOffset + row * 4, 1)[0]!);
  // murmur3's finalizer: spreads every input bit over the whole word.
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * Splits deterministically into train and validation. Each row's side is decided by a seeded hash
 * of its own values rather than by a shuffle of positions, for two reasons that matter to the
 * promotion gate: a row keeps its side when data is appended, so the live version (trained on
 * earlier data with the same seed) is never scored on rows it trained on; and duplicate rows land on
 * the same side, so they cannot leak from train into validation.
 */
export function splitDataset(data: Examples, validationSplit: number, seed: number): Split {
  const { x, y, rows, features } = data;
  const threshold = validationSplit * 2 ** 32;
  const isValidation = new Uint8Array(rows);
  let validationRows = 0;
  for (let r = 0; r < rows; r++) {
    if (rowHash(x, y, r, features, seed) < threshold) {
      isValidation[r] = 1;
      validationRows++;
    }
  }
  const take = (wanted: number, count: number): Examples => {
    const outX = new Float32Array(count * features);
    const outY = new Float32Array(count);
    let i = 0;
    for (let r = 0; r < rows; r++) {
      if (isValidation[r] !== wanted) continue;
      outX.set(x.subarray(r * features, (r + 1) * features), i * features);
      outY[i++] = y[r]!;
    }
    return { x: outX, y: outY, rows: count, features };
  };
  return {
    train: take(0, rows - validationRows),
    validation: take(1, validationRows),
    seed,
    validationSplit,
    method: 'row-hash',
  };
}
