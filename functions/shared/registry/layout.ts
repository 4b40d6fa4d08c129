import { InvalidNameError } from '../errors.js';

/**
 * Key layout of the registry bucket, in the spirit of TensorFlow Serving's base path:
 *
 *   models/<model>/versions/<n>/model.json, weight shards, metadata.json (written last: the commit)
 *   models/<model>/claims/<n>/<id>.json             version-number claims; <id>.lost marks one
 *                                                   that lost (see claim.ts); `aiaas gc` removes them
 *   models/<model>/aliases/<alias>.json             the alias pointer (cheap conditional GET)
 *   models/<model>/aliases/<alias>/history/<seq>/<id>.json   append-only alias history: each a
 *                                                   move's claim of slot <seq> (<id>.lost: it lost)
 *   models/<model>/reports/<n>/...                  training reports
 *   datasets/<model>/...                            training data (CSV)
 *   batch/<model>/<job>/input.csv|jsonl             a batch job's input (or any key under batch/<model>/)
 *   batch/<model>/<job>/job.json                    what started the job (written by the CLI)
 *   batch/<model>/<job>/results/<map run>/...       Step Functions ResultWriter's files
 *   batch/<model>/<job>/output.csv|jsonl, failures.csv, manifest.json   the job's final step
 *
 * Every name that reaches a key passes through these checks, so no request or CLI argument can
 * reach another model's keys or leave the layout.
 */

/** Model and alias names: lowercase, digits, '-' and '_', starting with a letter or digit, ≤ 63. */
export const NAME_PATTERN = /^[a-z0-9][a-z0-9_-]{0,62}$/;

export const DEFAULT_ALIAS = 'live';
export const MAX_VERSION = 2 ** 31 - 1;

export function assertModelName(name: unknown): string {
  if (typeof name !== 'string' || !NAME_PATTERN.test(name)) {
    throw new InvalidNameError(
      `Invalid model name ${JSON.stringify(name)}: use 1-63 characters of a-z, 0-9, '-' or '_', starting with a letter or digit`,
    );
  }
  return name;
}

export function assertAliasName(name: unknown): string {
  if (!isAliasName(name)) {
    throw new InvalidNameError(
      `Invalid alias ${JSON.stringify(name)}: use 1-63 characters of a-z, 0-9, '-' or '_', starting with a letter or digit`,
    );
  }
  return name;
}

/** Whether assertAliasName accepts `name`. */
export function isAliasName(name: unknown): name is string {
  return typeof name === 'string' && NAME_PATTERN.test(name);
}

/** Versions are positive integers written in decimal without leading zeros. */
export function parseVersion(value: unknown): number {
  const text = typeof value === 'number' ? String(value) : value;
  if (typeof text !== 'string' || !/^[1-9][0-9]{0,9}$/.test(text) || Number(text) > MAX_VERSION) {
    throw new InvalidNameError(`Invalid version ${JSON.stringify(value)}: versions are positive integers`);
  }
  return Number(text);
}

/** Artifact file names inside a version folder: a plain file name, no separators. */
export function assertFileName(name: string): string {
  if (!isFileName(name)) throw new InvalidNameError(`Invalid artifact file name ${JSON.stringify(name)}`);
  return name;
}

/** Whether assertFileName accepts `name`. */
export function isFileName(name: string): boolean {
  return /^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$/.test(name) && !name.includes('..');
}

function assertSeq(seq: number): number {
  if (!Number.isSafeInteger(seq) || seq < 1)
    throw new InvalidNameError(`Invalid history sequence number ${seq}`);
  return seq;
}

/**
 * Batch job ids: the Step Functions execution name too (≤ 80 of [A-Za-z0-9-_]), kept to the
 * registry's own name rule so a job id is a single, safe key segment.
 */
export function assertJobId(job: unknown): string {
  if (typeof job !== 'string' || !NAME_PATTERN.test(job)) {
    throw new InvalidNameError(
      `Invalid batch job id ${JSON.stringify(job)}: use 1-63 characters of a-z, 0-9, '-' or '_', starting with a letter or digit`,
    );
  }
  return job;
}

/** Batch input and output formats: the file extension of the job's input and output objects. */
export function assertBatchFormat(format: unknown): 'csv' | 'jsonl' {
  if (format !== 'csv' && format !== 'jsonl') {
    throw new InvalidNameError(`Invalid batch format ${JSON.stringify(format)}: use "csv" or "jsonl"`);
  }
  return format;
}

/**
 * Whether `key` is an object key under `batch/<model>/` (the only place a model's batch jobs may
 * read): no empty, `.` or `..` segment, no backslash or control character.
 */
export function isBatchKey(model: string, key: string): boolean {
  const root = `batch/${assertModelName(model)}/`;
  if (!key.startsWith(root) || key.length === root.length || key.length > 1024) return false;
  // biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters is the point
  if (/[\\\u0000-\u001f\u007f]/.test(key)) return false;
  return key
    .slice(root.length)
    .split('/')
    .every((segment) => segment !== '' && segment !== '.' && segment !== '..');
}

const batchJob = (model: string, job: string) => `batch/${assertModelName(model)}/${assertJobId(job)}/`;

export const keys = {
  modelsRoot: 'models/',
  model: (model: string) => `models/${assertModelName(model)}/`,
  versions: (model: string) => `models/${assertModelName(model)}/versions/`,
  version: (model: string, version: number) =>
    `models/${assertModelName(model)}/versions/${parseVersion(version)}/`,
  file: (model: string, version: number, file: string) =>
    `models/${assertModelName(model)}/versions/${parseVersion(version)}/${assertFileName(file)}`,
  metadata: (model: string, version: number) =>
    `models/${assertModelName(model)}/versions/${parseVersion(version)}/metadata.json`,
  claims: (model: string, version: number) =>
    `models/${assertModelName(model)}/claims/${parseVersion(version)}/`,
  claimsRoot: (model: string) => `models/${assertModelName(model)}/claims/`,
  alias: (model: string, alias: string) =>
    `models/${assertModelName(model)}/aliases/${assertAliasName(alias)}.json`,
  aliasesRoot: (model: string) => `models/${assertModelName(model)}/aliases/`,
  history: (model: string, alias: string) =>
    `models/${assertModelName(model)}/aliases/${assertAliasName(alias)}/history/`,
  historySlot: (model: string, alias: string, seq: number) =>
    `models/${assertModelName(model)}/aliases/${assertAliasName(alias)}/history/${String(assertSeq(seq)).padStart(10, '0')}/`,
  reports: (model: string, version: number) =>
    `models/${assertModelName(model)}/reports/${parseVersion(version)}/`,
  dataset: (model: string) => `datasets/${assertModelName(model)}/`,
  batchRoot: (model: string) => `batch/${assertModelName(model)}/`,
  batchJob,
  batchInput: (model: string, job: string, format: string) =>
    `${batchJob(model, job)}input.${assertBatchFormat(format)}`,
  batchJobRecord: (model: string, job: string) => `${batchJob(model, job)}job.json`,
  /** ResultWriter's prefix (it adds `/<map run id>/manifest.json`, `SUCCEEDED_0.json`, ...). */
  batchResults: (model: string, job: string) => `${batchJob(model, job)}results`,
  batchOutput: (model: string, job: string, format: string) =>
    `${batchJob(model, job)}output.${assertBatchFormat(format)}`,
  batchFailures: (model: string, job: string) => `${batchJob(model, job)}failures.csv`,
  batchManifest: (model: string, job: string) => `${batchJob(model, job)}manifest.json`,
};

/**
 * The immediate sub-"folders" of `prefix` among listed objects. Derived from a full listing rather
 * than S3's Delimiter: S3-compatible servers (s3rver among them) omit common prefixes of deeper
 * keys, and a registry that misses a version is wrong.
 */
export function prefixesOf(objects: readonly { readonly key: string }[], prefix: string): string[] {
  const prefixes = new Set<string>();
  for (const { key } of objects) {
    const slash = key.indexOf('/', prefix.length);
    if (slash > prefix.length) prefixes.add(key.slice(0, slash + 1));
  }
  return [...prefixes];
}
