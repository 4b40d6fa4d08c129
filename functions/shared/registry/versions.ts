/**
 * Reading versions: `models/<model>/versions/<n>/`, immutable once committed. A version exists
 * when its metadata.json does (publish.ts writes it last); every file a reader gets has been
 * checked against the size and sha256 metadata.json lists (IntegrityError otherwise), so corrupt
 * or half-written weights never load. Needs only an ObjectReader.
 */

import { IntegrityError, NotFoundError } from '../errors.js';
import { fromInline, isInlineVersion, type VersionFiles } from './inline.js';
import { describesVersion, parseJson, sameFiles, verify, verifyDigest } from './integrity.js';
import { assertFileName, keys } from './layout.js';
import type { BodySink, ObjectReader } from './store.js';
import type { FileDigest, InlineVersion, VersionMetadata } from './types.js';

export interface ReadVersionOptions {
  /**
   * Sees each verified file as it arrives (a loader can start work before the last shard), and
   * the version's file list (names, sizes, digests).
   */
  readonly onFile?: (name: string, bytes: Uint8Array, listed: Readonly<Record<string, FileDigest>>) => void;
  /**
   * Where a file's body goes as it arrives, instead of into `files` (see BodySink); undefined
   * keeps it. A file that went to a sink is verified all the same, and is not in `files`.
   */
  readonly into?: (name: string, length: number) => BodySink | undefined;
  /**
   * The version's files as its alias pointer lists them: then they are fetched alongside
   * metadata.json instead of after it (one round trip less), and must match it.
   */
  readonly files?: Readonly<Record<string, FileDigest>>;
  /** The version whole, as its alias pointer carries it: then nothing is fetched if it checks out. */
  readonly inline?: InlineVersion;
}

/** Models that have at least one object in the registry. */
export async function listModels(store: ObjectReader): Promise<string[]> {
  const prefixes = await store.listPrefixes(keys.modelsRoot);
  return prefixes.map((p) => p.slice(keys.modelsRoot.length, -1)).sort();
}

/** Committed versions (those whose metadata.json exists), ascending. */
export async function listVersions(store: ObjectReader, model: string): Promise<number[]> {
  const objects = await store.list(keys.versions(model));
  const versions = new Set<number>();
  const root = keys.versions(model);
  for (const { key } of objects) {
    const match = /^(\d+)\/metadata\.json$/.exec(key.slice(root.length));
    if (match?.[1]) versions.add(Number(match[1]));
  }
  return [...versions].sort((a, b) => a - b);
}

export async function getMetadata(
  store: ObjectReader,
  model: string,
  version: number,
): Promise<VersionMetadata> {
  const object = await store.get(keys.metadata(model, version));
  if (!object) throw new NotFoundError(`Model "${model}" has no version ${version}`);
  const metadata = parseJson<unknown>(object, `metadata.json of ${model} v${version}`);
  if (!describesVersion(metadata, model, version)) {
    throw new IntegrityError(`metadata.json of ${model} v${version} does not describe that version`);
  }
  return metadata;
}

/**
 * Reads every file of a version and checks each against the sha256 in its metadata, fetching
 * them in parallel. Throws IntegrityError on any mismatch, so corrupt weights never load.
 */
export async function readVersion(
  store: ObjectReader,
  model: string,
  version: number,
  options: ReadVersionOptions = {},
): Promise<VersionFiles> {
  const carried =
    options.inline && isInlineVersion(options.inline, model, version, options.files)
      ? fromInline(options.inline)
      : undefined;
  if (carried) {
    for (const [name, bytes] of carried.files) options.onFile?.(name, bytes, carried.metadata.files);
    return carried;
  }
  // Checked as soon as metadata.json arrives: a wrong list stops here, and files still arriving
  // are no longer passed on.
  let settled = false;
  const metadataRead = getMetadata(store, model, version).then(
    (metadata) => {
      if (options.files && !sameFiles(options.files, metadata.files)) {
        settled = true;
        throw new IntegrityError(
          `${model} v${version}: the alias pointer's file list does not match the version's metadata`,
        );
      }
      return metadata;
    },
    (error: unknown) => {
      settled = true;
      throw error;
    },
  );
  const listed = options.files ?? (await metadataRead).files;
  const { into } = options;
  const filesRead = Promise.all(
    Object.entries(listed).map(async ([name, digest]) => {
      const object = await store.get(keys.file(model, version, name), {
        sha256: true,
        into: into && ((length: number) => into(name, length)),
      });
      if (!object) throw new IntegrityError(`${model} v${version}: file ${name} is missing`);
      if (object.sunk) {
        verifyDigest(model, version, name, object.sunk.bytes, object.sha256, digest);
        return undefined;
      }
      verify(model, version, name, object.body, digest, object.sha256);
      // A store that ignores `into` gave the body whole: it goes to the sink all the same.
      const sink = into?.(name, object.body.byteLength);
      if (sink) {
        sink.write(object.body, 0);
        return undefined;
      }
      if (!settled) options.onFile?.(name, object.body, listed);
      return [name, object.body] as const;
    }),
  );
  try {
    const [metadata, files] = await Promise.all([metadataRead, filesRead]);
    return { metadata, files: new Map(files.filter((file) => file !== undefined)) };
  } finally {
    settled = true;
  }
}

/** Reads one file of a version, verified. */
export async function readFile(
  store: ObjectReader,
  model: string,
  version: number,
  name: string,
): Promise<Uint8Array> {
  const metadata = await getMetadata(store, model, version);
  const digest = metadata.files[assertFileName(name)];
  if (!digest) throw new NotFoundError(`${model} v${version} has no file ${name}`);
  const object = await store.get(keys.file(model, version, name));
  if (!object) throw new IntegrityError(`${model} v${version}: file ${name} is missing`);
  verify(model, version, name, object.body, digest);
  return object.body;
}
