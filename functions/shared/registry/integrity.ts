/**
 * The checks the registry makes before it trusts stored bytes: a file's size and sha256 against
 * its version's file list, the shape of a file list and of metadata.json, JSON that parses. The
 * `verify*` forms throw an IntegrityError naming the version and file (a load must stop); the
 * `is*` and `matches*` forms answer a boolean where a reader falls back to another source instead
 * (a pointer's shortcut that does not check out is ignored, never trusted and never fatal).
 */

import { sha256 } from '../digest.js';
import { IntegrityError } from '../errors.js';
import { isFileName } from './layout.js';
import type { StoredObject } from './store.js';
import type { FileDigest, VersionMetadata } from './types.js';

const decoder = new TextDecoder();

/** A stored object's body as JSON; IntegrityError naming `what` when it is not JSON. */
export function parseJson<T>(object: StoredObject, what: string): T {
  try {
    return JSON.parse(decoder.decode(object.body)) as T;
  } catch (cause) {
    throw new IntegrityError(`${what} is not valid JSON`, { cause });
  }
}

/** A body that went to a sink: the store's count and sha256 of what it wrote must match. */
export function verifyDigest(
  model: string,
  version: number,
  name: string,
  size: number,
  computed: string | undefined,
  digest: FileDigest,
) {
  if (size !== digest.size || computed !== digest.sha256) {
    throw new IntegrityError(
      `${model} v${version}: ${name} does not match its sha256 (${size} bytes, expected ${digest.size})`,
    );
  }
}

/** A file's bytes against its digest; hashed only when the size matches. */
export function verify(
  model: string,
  version: number,
  name: string,
  bytes: Uint8Array,
  digest: FileDigest,
  /** The store's sha256 of the same bytes, computed as they arrived. */
  computed?: string,
) {
  const size = bytes.byteLength;
  verifyDigest(
    model,
    version,
    name,
    size,
    size === digest.size ? (computed ?? sha256(bytes)) : undefined,
    digest,
  );
}

/** Whether `verify` would accept the bytes (for copies a reader may ignore). */
export function matchesDigest(bytes: Uint8Array, digest: FileDigest): boolean {
  return bytes.byteLength === digest.size && sha256(bytes) === digest.sha256;
}

/** Same names, sizes and digests. */
export function sameFiles(
  a: Readonly<Record<string, FileDigest>>,
  b: Readonly<Record<string, FileDigest>>,
): boolean {
  const names = Object.keys(a);
  if (names.length !== Object.keys(b).length) return false;
  return names.every((name) => {
    const x = a[name];
    const y = Object.hasOwn(b, name) ? b[name] : undefined;
    return x !== undefined && y !== undefined && x.sha256 === y.sha256 && x.size === y.size;
  });
}

/** A file list of layout-valid names, each with a sha256 and an integer size. */
export function isFileList(value: unknown): value is Record<string, FileDigest> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  return Object.entries(value).every(
    ([name, d]) =>
      isFileName(name) &&
      typeof d === 'object' &&
      d !== null &&
      typeof (d as FileDigest).sha256 === 'string' &&
      Number.isInteger((d as FileDigest).size),
  );
}

/** Metadata of this model's version, with a well-formed file list: from metadata.json or a pointer's copy. */
export function describesVersion(value: unknown, model: string, version: number): value is VersionMetadata {
  const metadata = value as VersionMetadata | null;
  return (
    typeof metadata === 'object' &&
    metadata !== null &&
    metadata.schema === 1 &&
    metadata.model === model &&
    metadata.version === version &&
    isFileList(metadata.files)
  );
}
