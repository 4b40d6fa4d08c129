/**
 * Inline copies: a small version carried whole by its alias pointers (AliasPointer.inline), so a
 * reader loads it from the pointer alone, one round trip where it would take two. The copy is a
 * shortcut, never the truth: it is made from the version's verified files when a pointer is
 * written, and a reader uses it only if it describes the pointer's version and every file matches
 * the copied metadata's sha256; otherwise the reader reads the version from its own objects, so a
 * damaged copy costs a round trip, never a wrong model.
 */

import { describesVersion, matchesDigest, sameFiles } from './integrity.js';
import { keys } from './layout.js';
import type { ObjectReader } from './store.js';
import type { FileDigest, InlineVersion, VersionMetadata } from './types.js';

/**
 * A version whose files come to at most this many bytes rides in its alias pointers whole (4/3 of
 * it as base64, plus the metadata): a slightly bigger pointer against a whole round trip saved on
 * every cold start and every swap (docs/benchmarks.md, Round 4).
 */
export const INLINE_LIMIT_BYTES = 64 * 1024;

/** A version's verified files, ready for an IOHandler. */
export interface VersionFiles {
  readonly metadata: VersionMetadata;
  readonly files: ReadonlyMap<string, Uint8Array>;
}

/**
 * A small version's files, verified, for its alias pointers to carry; undefined when it is too
 * big, or a file is missing or does not match (readers then find that out from the objects).
 * Throws on a store fault.
 */
export async function readInlineCopy(
  store: ObjectReader,
  metadata: VersionMetadata,
): Promise<InlineVersion | undefined> {
  const digests = Object.entries(metadata.files);
  if (digests.reduce((n, [, d]) => n + d.size, 0) > INLINE_LIMIT_BYTES) return undefined;
  const read = await Promise.all(
    digests.map(async ([name, digest]) => {
      const object = await store.get(keys.file(metadata.model, metadata.version, name));
      if (!object || !matchesDigest(object.body, digest)) return undefined;
      const { buffer, byteOffset, byteLength } = object.body;
      return [name, Buffer.from(buffer, byteOffset, byteLength).toString('base64')] as const;
    }),
  );
  if (read.some((entry) => entry === undefined)) return undefined;
  return { metadata, files: Object.fromEntries(read as (readonly [string, string])[]) };
}

/**
 * A copy that describes the pointer's version, holds a string for each of its files, and agrees
 * with the pointer's own file list when it has one.
 */
export function isInlineVersion(
  value: unknown,
  model: string,
  version: number,
  listed: Readonly<Record<string, FileDigest>> | undefined,
): value is InlineVersion {
  const inline = value as InlineVersion | null;
  if (typeof inline !== 'object' || inline === null) return false;
  const { metadata, files } = inline;
  if (
    !describesVersion(metadata, model, version) ||
    (listed !== undefined && !sameFiles(listed, metadata.files)) ||
    typeof files !== 'object' ||
    files === null
  ) {
    return false;
  }
  return Object.keys(metadata.files).every(
    (name) => Object.hasOwn(files, name) && typeof files[name] === 'string',
  );
}

/**
 * The version from its pointer's copy (checked with isInlineVersion first), each file checked
 * against the copied metadata; undefined (read it from its objects instead) if one does not match.
 */
export function fromInline(inline: InlineVersion): VersionFiles | undefined {
  const files = new Map<string, Uint8Array>();
  for (const [name, digest] of Object.entries(inline.metadata.files)) {
    // A copy that owns its whole ArrayBuffer: a small Buffer is a view into Node's shared pool.
    const bytes = new Uint8Array(Buffer.from(inline.files[name] as string, 'base64'));
    if (!matchesDigest(bytes, digest)) return undefined;
    files.set(name, bytes);
  }
  return { metadata: inline.metadata, files };
}
