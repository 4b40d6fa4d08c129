/**
 * Publishing a version: claim the next number (claim.ts), upload the files create-only, then write
 * metadata.json last, which commits the version. A publisher killed half way leaves no visible
 * version, only leftovers that `aiaas gc` removes (gc.ts). Two publishers racing never get the
 * same number, whether or not the server enforces conditional writes.
 */

import { randomId, sha256 } from '../digest.js';
import { IntegrityError } from '../errors.js';
import { type Claimant, claimSlot, slotClaims, withClaimRetries } from './claim.js';
import { putNew } from './create-only.js';
import { assertFileName, assertModelName, keys } from './layout.js';
import type { ObjectReader } from './store.js';
import type { ArtifactFile, FileDigest, VersionMetadata } from './types.js';

export const JSON_TYPE = 'application/json';

/** What a publisher states about a new version; the registry adds model, version, files and time. */
export type PublishInput = Omit<
  VersionMetadata,
  'schema' | 'model' | 'version' | 'createdAt' | 'files' | 'createdBy'
> & {
  readonly createdBy?: string;
};

export interface PublishOptions {
  readonly onProgress?: (bytesDone: number, bytesTotal: number) => void;
  /**
   * Runs once the number is known and the files are up, before the commit: the place to write
   * files named after the version (a training report) and record them in the metadata.
   */
  readonly beforeCommit?: (version: number) => Promise<Pick<VersionMetadata, 'report'>>;
}

/** Publishes a new immutable version; answers its metadata. */
export async function publish(
  { store, actor, retry }: Claimant,
  model: string,
  files: readonly ArtifactFile[],
  input: PublishInput,
  options: PublishOptions = {},
): Promise<VersionMetadata> {
  assertModelName(model);
  const digests: Record<string, FileDigest> = {};
  for (const file of files) {
    assertFileName(file.name);
    if (file.name === 'metadata.json') throw new IntegrityError('An artifact may not be named metadata.json');
    digests[file.name] = { sha256: sha256(file.bytes), size: file.bytes.byteLength };
  }
  if (!files.some((f) => f.name === 'model.json')) throw new IntegrityError('A version needs a model.json');

  const version = await withClaimRetries(
    `allocating a version of ${model}`,
    async () => {
      const next = await nextNumber(store, model);
      // A fresh id each attempt: a claim once marked lost must never be taken for a new one.
      const claim = await claimSlot(
        store,
        keys.claims(model, next),
        JSON.stringify({ by: actor, at: new Date().toISOString() }),
        randomId(),
      );
      return claim.won ? next : undefined;
    },
    retry,
  );

  const total = files.reduce((n, f) => n + f.bytes.byteLength, 0);
  let done = 0;
  options.onProgress?.(0, total);
  await Promise.all(
    files.map(async (file) => {
      await putNew(store, keys.file(model, version, file.name), file.bytes, {
        contentType:
          file.contentType ?? (file.name.endsWith('.json') ? JSON_TYPE : 'application/octet-stream'),
      });
      done += file.bytes.byteLength;
      options.onProgress?.(done, total);
    }),
  );
  const extra = options.beforeCommit ? await options.beforeCommit(version) : {};
  const report = extra.report ?? input.report;
  // Optional fields only when set: the object is returned and stored as it is.
  const metadata: VersionMetadata = {
    schema: 1,
    model,
    version,
    createdAt: new Date().toISOString(),
    createdBy: input.createdBy ?? actor,
    format: input.format,
    files: digests,
    signature: input.signature,
    metrics: input.metrics,
    source: input.source,
    parent: input.parent,
    ...(input.training ? { training: input.training } : {}),
    ...(report ? { report } : {}),
  };
  await putNew(store, keys.metadata(model, version), JSON.stringify(metadata, null, 2), {
    contentType: JSON_TYPE,
  });
  return metadata;
}

/**
 * The number to claim next: one above every number committed, uploaded to or claimed by a
 * contender that has not lost. A number whose claims all lost is free again when nothing above
 * it is taken; below a taken one it stays a gap (see README: version numbers).
 */
async function nextNumber(store: ObjectReader, model: string): Promise<number> {
  const [versions, claims] = await Promise.all([
    store.listPrefixes(keys.versions(model)),
    store.list(keys.claimsRoot(model)),
  ]);
  let highest = 0;
  for (const prefix of versions) {
    const n = Number(/\/(\d+)\/$/.exec(prefix)?.[1] ?? 0);
    if (n > highest) highest = n;
  }
  const root = keys.claimsRoot(model);
  for (const prefix of new Set(claims.map(({ key }) => /^\d+\//.exec(key.slice(root.length))?.[0]))) {
    if (!prefix) continue;
    const n = Number(prefix.slice(0, -1));
    if (n > highest && slotClaims(claims, `${root}${prefix}`).some((claim) => !claim.lost)) highest = n;
  }
  return highest + 1;
}
