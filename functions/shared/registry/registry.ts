import { randomId, sha256 } from '../digest.js';
import { ConflictError, IntegrityError, InvalidNameError, NotFoundError } from '../errors.js';
import { claimSlot, type RetryOptions, withClaimRetries } from './claim.js';
import {
  assertAliasName,
  assertFileName,
  assertModelName,
  DEFAULT_ALIAS,
  keys,
  parseVersion,
} from './layout.js';
import type { BodySink, ListedObject, ObjectStore, StoredObject } from './store.js';
import type {
  AliasEvent,
  AliasPointer,
  ArtifactFile,
  FileDigest,
  InlineVersion,
  VersionMetadata,
} from './types.js';

const JSON_TYPE = 'application/json';
/** A history slot still holding several entries after this long was left by a crashed writer. */
const STALE_CLAIM_MS = 30_000;
/**
 * A version whose files come to at most this many bytes rides in its alias pointers whole
 * (AliasPointer.inline): ~85 KiB of base64 at most (plus the metadata), a few ms to fetch from S3,
 * against a whole round trip saved on every cold start and every swap.
 */
export const INLINE_LIMIT_BYTES = 64 * 1024;
const decoder = new TextDecoder();

function parseJson<T>(object: StoredObject, what: string): T {
  try {
    return JSON.parse(decoder.decode(object.body)) as T;
  } catch (cause) {
    throw new IntegrityError(`${what} is not valid JSON`, { cause });
  }
}

/** What a publisher states about a new version; the registry adds model, version, files and time. */
export type PublishInput = Omit<
  VersionMetadata,
  'schema' | 'model' | 'version' | 'createdAt' | 'files' | 'createdBy'
> & {
  readonly createdBy?: string;
};

export interface MoveAliasOptions {
  readonly who?: string;
  readonly why?: string;
  readonly kind?: AliasEvent['kind'];
  /** Compare-and-swap: fail with ConflictError unless the alias still points here (null: unset). */
  readonly expectedVersion?: number | null;
  readonly details?: Record<string, unknown>;
}

/** A version's verified files, ready for an IOHandler. */
export interface VersionFiles {
  readonly metadata: VersionMetadata;
  readonly files: ReadonlyMap<string, Uint8Array>;
}

export interface RegistryOptions {
  /** Who acts, recorded in metadata and alias history. @default $AIAAS_ACTOR, $USER, or 'aiaas' */
  readonly actor?: string;
  readonly retry?: RetryOptions;
}

/**
 * The model registry: immutable numbered versions, aliases with an append-only history, over any
 * ObjectStore. Version numbers and alias moves are decided by slot claims (claim.ts), so two
 * publishers or promoters racing never overwrite each other, whether or not the server enforces
 * conditional writes.
 */
export class ModelRegistry {
  readonly actor: string;

  constructor(
    readonly store: ObjectStore,
    private readonly options: RegistryOptions = {},
  ) {
    this.actor = options.actor ?? process.env.AIAAS_ACTOR ?? process.env.USER ?? 'aiaas';
  }

  /** Models that have at least one object in the registry. */
  async listModels(): Promise<string[]> {
    const prefixes = await this.store.listPrefixes(keys.modelsRoot);
    return prefixes.map((p) => p.slice(keys.modelsRoot.length, -1)).sort();
  }

  /** Committed versions (those whose metadata.json exists), ascending. */
  async listVersions(model: string): Promise<number[]> {
    const objects = await this.store.list(keys.versions(model));
    const versions = new Set<number>();
    const root = keys.versions(model);
    for (const { key } of objects) {
      const match = /^(\d+)\/metadata\.json$/.exec(key.slice(root.length));
      if (match?.[1]) versions.add(Number(match[1]));
    }
    return [...versions].sort((a, b) => a - b);
  }

  async getMetadata(model: string, version: number): Promise<VersionMetadata> {
    const object = await this.store.get(keys.metadata(model, version));
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
   * `onFile` sees each verified file as it arrives (a loader can start work before the last shard).
   */
  async readVersion(
    model: string,
    version: number,
    options: {
      /** Also sees the version's file list (names, sizes, digests). */
      readonly onFile?: (
        name: string,
        bytes: Uint8Array,
        listed: Readonly<Record<string, FileDigest>>,
      ) => void;
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
    } = {},
  ): Promise<VersionFiles> {
    const carried =
      options.inline && isInlineVersion(options.inline, model, version, options.files)
        ? fromInline(model, version, options.inline)
        : undefined;
    if (carried) {
      for (const [name, bytes] of carried.files) options.onFile?.(name, bytes, carried.metadata.files);
      return carried;
    }
    // Checked as soon as metadata.json arrives: a wrong list stops here, and files still arriving
    // are no longer passed on.
    let settled = false;
    const metadataRead = this.getMetadata(model, version).then(
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
        const object = await this.store.get(keys.file(model, version, name), {
          sha256: true,
          ...(into ? { into: (length: number) => into(name, length) } : {}),
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
  async readFile(model: string, version: number, name: string): Promise<Uint8Array> {
    const metadata = await this.getMetadata(model, version);
    const digest = metadata.files[assertFileName(name)];
    if (!digest) throw new NotFoundError(`${model} v${version} has no file ${name}`);
    const object = await this.store.get(keys.file(model, version, name));
    if (!object) throw new IntegrityError(`${model} v${version}: file ${name} is missing`);
    verify(model, version, name, object.body, digest);
    return object.body;
  }

  /**
   * Publishes a new immutable version: claims the next number, uploads the files, then writes
   * metadata.json last. A publisher killed half way leaves no visible version.
   */
  async publish(
    model: string,
    files: readonly ArtifactFile[],
    input: PublishInput,
    options: {
      onProgress?: (bytesDone: number, bytesTotal: number) => void;
      /**
       * Runs once the number is known and the files are up, before the commit: the place to write
       * files named after the version (a training report) and record them in the metadata.
       */
      beforeCommit?: (version: number) => Promise<Pick<VersionMetadata, 'report'>>;
    } = {},
  ): Promise<VersionMetadata> {
    assertModelName(model);
    const digests: Record<string, FileDigest> = {};
    for (const file of files) {
      assertFileName(file.name);
      if (file.name === 'metadata.json')
        throw new IntegrityError('An artifact may not be named metadata.json');
      digests[file.name] = { sha256: sha256(file.bytes), size: file.bytes.byteLength };
    }
    if (!files.some((f) => f.name === 'model.json')) throw new IntegrityError('A version needs a model.json');

    const claimId = randomId();
    const version = await withClaimRetries(
      `allocating a version of ${model}`,
      async () => {
        const next = (await this.highestNumber(model)) + 1;
        const claim = await claimSlot(
          this.store,
          keys.claims(model, next),
          JSON.stringify({ by: this.actor, at: new Date().toISOString() }),
          claimId,
        );
        return claim.won ? next : undefined;
      },
      this.options.retry,
    );

    const total = files.reduce((n, f) => n + f.bytes.byteLength, 0);
    let done = 0;
    options.onProgress?.(0, total);
    await Promise.all(
      files.map(async (file) => {
        await this.store.put(keys.file(model, version, file.name), file.bytes, {
          contentType:
            file.contentType ?? (file.name.endsWith('.json') ? JSON_TYPE : 'application/octet-stream'),
          ifNoneMatch: '*',
        });
        done += file.bytes.byteLength;
        options.onProgress?.(done, total);
      }),
    );
    const extra = options.beforeCommit ? await options.beforeCommit(version) : {};
    const report = extra.report ?? input.report;
    const metadata: VersionMetadata = {
      schema: 1,
      model,
      version,
      createdAt: new Date().toISOString(),
      createdBy: input.createdBy ?? this.actor,
      format: input.format,
      files: digests,
      signature: input.signature,
      metrics: input.metrics,
      source: input.source,
      parent: input.parent,
      ...(input.training ? { training: input.training } : {}),
      ...(report ? { report } : {}),
    };
    await this.store.put(keys.metadata(model, version), JSON.stringify(metadata, null, 2), {
      contentType: JSON_TYPE,
      ifNoneMatch: '*',
    });
    return metadata;
  }

  /** Highest version number committed or claimed, 0 when none. */
  private async highestNumber(model: string): Promise<number> {
    const [versions, claims] = await Promise.all([
      this.store.listPrefixes(keys.versions(model)),
      this.store.listPrefixes(keys.claimsRoot(model)),
    ]);
    let highest = 0;
    for (const prefix of [...versions, ...claims]) {
      const n = Number(/\/(\d+)\/$/.exec(prefix)?.[1] ?? 0);
      if (n > highest) highest = n;
    }
    return highest;
  }

  /** Writes an extra object under the model's report folder (training curves and the like). */
  async putReport(
    model: string,
    version: number,
    name: string,
    body: Uint8Array | string,
    contentType: string,
  ) {
    const key = `${keys.reports(model, version)}${assertFileName(name)}`;
    await this.store.put(key, body, { contentType });
    return key;
  }

  /** The alias pointer, or undefined when the alias was never set. */
  async getAlias(
    model: string,
    alias: string = DEFAULT_ALIAS,
  ): Promise<(AliasPointer & { etag: string }) | undefined> {
    const object = await this.store.get(keys.alias(model, alias));
    if (!object) return undefined;
    return { ...this.parsePointer(object, model, alias), etag: object.etag };
  }

  /** Conditional read of the alias pointer: 'unchanged' costs one 304. */
  async getAliasIfChanged(
    model: string,
    alias: string,
    etag: string,
  ): Promise<(AliasPointer & { etag: string }) | 'unchanged' | undefined> {
    const object = await this.store.getIfChanged(keys.alias(model, alias), etag);
    if (object === undefined || object === 'unchanged') return object;
    return { ...this.parsePointer(object, model, alias), etag: object.etag };
  }

  private parsePointer(object: StoredObject, model: string, alias: string): AliasPointer {
    const pointer = parseJson<AliasPointer>(object, `alias ${model}@${alias}`);
    if (!Number.isInteger(pointer?.version) || pointer.version < 1) {
      throw new IntegrityError(`alias ${model}@${alias} does not name a version`);
    }
    // The file list is a shortcut, not the truth (metadata.json is): one that is not well formed is
    // ignored rather than allowed to fail a good version.
    let checked = pointer;
    if (checked.files !== undefined && !isFileList(checked.files)) {
      const { files: _ignored, ...rest } = checked;
      checked = rest;
    }
    if (
      checked.inline !== undefined &&
      !isInlineVersion(checked.inline, model, pointer.version, checked.files)
    ) {
      const { inline: _ignored, ...rest } = checked;
      checked = rest;
    }
    return checked;
  }

  /** Aliases of a model and the versions they point to. */
  async listAliases(model: string): Promise<Record<string, number>> {
    const objects = await this.store.list(keys.aliasesRoot(model));
    const root = keys.aliasesRoot(model);
    const out: Record<string, number> = {};
    await Promise.all(
      objects
        .map((o) => /^([^/]+)\.json$/.exec(o.key.slice(root.length))?.[1])
        .filter((name): name is string => !!name)
        .map(async (alias) => {
          const pointer = await this.getAlias(model, alias);
          if (pointer) out[alias] = pointer.version;
        }),
    );
    return out;
  }

  /**
   * The alias history, oldest first. Each event occupies one sequence slot; a slot briefly holding
   * two entries (a race being decided) is resolved by the pointer or left out until decided.
   */
  async history(model: string, alias: string = DEFAULT_ALIAS): Promise<AliasEvent[]> {
    const root = keys.history(model, alias);
    const [objects, pointer] = await Promise.all([this.store.list(root), this.getAlias(model, alias)]);
    const slots = new Map<number, string[]>();
    for (const { key } of objects) {
      const seq = Number(key.slice(root.length).split('/')[0]);
      if (!Number.isInteger(seq)) continue;
      slots.set(seq, [...(slots.get(seq) ?? []), key]);
    }
    const read = new Map<string, AliasEvent>();
    await Promise.all(
      objects.map(async ({ key }) => {
        const object = await this.store.get(key);
        if (object) read.set(key, parseJson<AliasEvent>(object, `history entry ${key}`));
      }),
    );
    // Newest first: a slot holding several entries is settled by the pointer, or by the `prev`
    // of the event decided after it.
    const events: AliasEvent[] = [];
    let prev: string | null | undefined;
    for (const [seq, entries] of [...slots].sort((a, b) => b[0] - a[0])) {
      const id = entries.length === 1 ? undefined : pointer?.seq === seq ? pointer.eventId : prev;
      const key =
        entries.length === 1 ? entries[0] : id ? entries.find((k) => k.endsWith(`/${id}.json`)) : undefined;
      const event = key ? read.get(key) : undefined;
      prev = event?.prev;
      if (event) events.unshift(event);
    }
    return events;
  }

  /**
   * Moves an alias to a version, recording the move in the history first (the history is the
   * truth; the pointer is what functions poll). Concurrent moves are serialized: each lands in its
   * own history slot, none is lost.
   */
  async setAlias(
    model: string,
    alias: string,
    version: number,
    options: MoveAliasOptions = {},
  ): Promise<AliasEvent> {
    assertModelName(model);
    assertAliasName(alias);
    parseVersion(version);
    const target = await this.getMetadata(model, version); // the target must be a committed version
    const id = randomId();
    const event = await withClaimRetries(
      `moving ${model}@${alias}`,
      async () => {
        const latest = await this.latestEvent(model, alias);
        if (latest === 'contended') return undefined;
        const { seq, current } = latest;
        const from = current?.to ?? null;
        if (options.expectedVersion !== undefined && options.expectedVersion !== from) {
          throw new ConflictError(
            `${model}@${alias} points to ${from ?? 'nothing'}, not ${options.expectedVersion}: it was moved meanwhile`,
          );
        }
        const candidate: AliasEvent = {
          id,
          seq: seq + 1,
          model,
          alias,
          kind: options.kind ?? 'promote',
          from,
          to: version,
          at: new Date().toISOString(),
          who: options.who ?? this.actor,
          why: options.why ?? '',
          ...(options.details ? { details: options.details } : {}),
          prev: current?.id ?? null,
        };
        const claim = await claimSlot(
          this.store,
          keys.historySlot(model, alias, seq + 1),
          JSON.stringify(candidate),
          id,
        );
        return claim.won ? candidate : undefined;
      },
      this.options.retry,
    );
    await this.writePointer(event, target);
    return event;
  }

  /**
   * Points the alias at the newest decided event of its history. Moves can finish out of order
   * and clocks can disagree, so the history (not the old pointer) decides: after each write the
   * history is read again, until the pointer matches its newest event.
   */
  private async writePointer(won: AliasEvent, wonMetadata: VersionMetadata): Promise<void> {
    let event = won;
    let metadata: VersionMetadata | undefined = wonMetadata;
    let inline: InlineVersion | null | undefined; // null: read, and not carried
    for (let attempt = 0; attempt < 10; attempt++) {
      const latest = await this.latestEvent(event.model, event.alias);
      if (latest !== 'contended' && latest.current && latest.current.seq > event.seq) event = latest.current;
      // The file list and the copy are shortcuts for readers: if a newer event's version cannot be
      // read now, the pointer goes without them rather than the recorded move going without a
      // pointer. Read before the current pointer, to keep the window for a conflicting write short.
      if (metadata?.version !== event.to) {
        metadata = await this.getMetadata(event.model, event.to).catch(() => undefined);
        inline = undefined;
      }
      if (metadata?.version === event.to && inline === undefined) {
        // Tried once more after a store fault: a pointer written without its copy stays without one
        // until the alias moves again.
        inline =
          (await this.inlineVersion(metadata)
            .catch(() => this.inlineVersion(metadata!))
            .catch(() => undefined)) ?? null;
      }
      const current = await this.getAlias(event.model, event.alias).catch(() => undefined);
      if (current && current.seq === event.seq && current.eventId === event.id) return;
      const pointer: AliasPointer = {
        model: event.model,
        alias: event.alias,
        version: event.to,
        seq: event.seq,
        eventId: event.id,
        updatedAt: event.at,
        ...(metadata?.version === event.to ? { files: metadata.files } : {}),
        ...(inline ? { inline } : {}),
      };
      try {
        await this.store.put(keys.alias(event.model, event.alias), JSON.stringify(pointer), {
          contentType: JSON_TYPE,
          ...(current ? { ifMatch: current.etag } : {}),
        });
      } catch (error) {
        if (!(error instanceof ConflictError)) throw error;
      }
    }
    throw new ConflictError(
      `${won.model}@${won.alias}: the move was recorded, but the alias pointer kept changing; run the command again`,
    );
  }

  /**
   * A small version's files, verified, for its alias pointers to carry; undefined when it is too
   * big, or a file is missing or does not match (readers then find that out from the objects).
   * Throws on a store fault.
   */
  private async inlineVersion(metadata: VersionMetadata): Promise<InlineVersion | undefined> {
    const digests = Object.entries(metadata.files);
    if (digests.reduce((n, [, d]) => n + d.size, 0) > INLINE_LIMIT_BYTES) return undefined;
    const read = await Promise.all(
      digests.map(async ([name, digest]) => {
        const object = await this.store.get(keys.file(metadata.model, metadata.version, name));
        if (!object) return undefined;
        try {
          verify(metadata.model, metadata.version, name, object.body, digest);
        } catch {
          return undefined;
        }
        const { buffer, byteOffset, byteLength } = object.body;
        return [name, Buffer.from(buffer, byteOffset, byteLength).toString('base64')] as const;
      }),
    );
    if (read.some((entry) => entry === undefined)) return undefined;
    return { metadata, files: Object.fromEntries(read as (readonly [string, string])[]) };
  }

  /**
   * The newest history slot and the alias state it holds. A top slot still being contended (more
   * than one entry, written recently) makes the caller wait, so no move is based on a state that
   * is about to change; one left contended by a crashed writer counts as void after a while.
   */
  private async latestEvent(
    model: string,
    alias: string,
  ): Promise<{ seq: number; current?: AliasEvent } | 'contended'> {
    const root = keys.history(model, alias);
    const bySlot = new Map<number, ListedObject[]>();
    for (const object of await this.store.list(root)) {
      const seq = Number(object.key.slice(root.length).split('/')[0]);
      if (Number.isInteger(seq)) bySlot.set(seq, [...(bySlot.get(seq) ?? []), object]);
    }
    const seqs = [...bySlot.keys()].sort((a, b) => b - a);
    const top = seqs[0] ?? 0;
    let pointer: AliasPointer | undefined | null = null; // read once, only if a slot needs it
    for (const seq of seqs) {
      const entries = bySlot.get(seq)!;
      let key = entries.length === 1 ? entries[0]!.key : undefined;
      if (key && seq === top) {
        // One entry is not yet a decision: it may be a winner that has not written the pointer,
        // or the last of two losers about to remove its entry. Until the pointer names it (or it
        // goes stale), a move based on it could chain onto a move that never happened.
        if (pointer === null) pointer = await this.getAlias(model, alias).catch(() => undefined);
        const confirmed = pointer?.seq === seq && key.endsWith(`/${pointer.eventId}.json`);
        const pending = (pointer?.seq ?? 0) === seq - 1;
        const fresh = entries.some(
          (e) => !e.lastModified || Date.now() - e.lastModified.getTime() < STALE_CLAIM_MS,
        );
        if (!confirmed && pending && fresh) return 'contended';
      }
      if (!key) {
        // Several entries: the winner already wrote the pointer, or a loser has not removed its
        // entry yet (or died before it could). The pointer settles it; otherwise wait, and treat
        // a slot still undecided after STALE_CLAIM_MS as void.
        if (pointer === null) pointer = await this.getAlias(model, alias).catch(() => undefined);
        const eventId = pointer?.seq === seq ? pointer.eventId : undefined;
        if (eventId) key = entries.find((e) => e.key.endsWith(`/${eventId}.json`))?.key;
        const fresh = entries.some(
          (e) => !e.lastModified || Date.now() - e.lastModified.getTime() < STALE_CLAIM_MS,
        );
        if (!key && seq === top && fresh) return 'contended';
        if (!key) continue;
      }
      const object = await this.store.get(key);
      if (!object) return 'contended'; // deleted since listed: a loser backing off
      return { seq: top, current: parseJson<AliasEvent>(object, 'alias history entry') };
    }
    return { seq: top };
  }

  /**
   * Moves the alias back to the version it served before its current one (undo; repeated
   * rollbacks walk further back).
   */
  async rollback(model: string, alias: string = DEFAULT_ALIAS, options: Omit<MoveAliasOptions, 'kind'> = {}) {
    const events = await this.history(model, alias);
    const stack: number[] = [];
    for (const e of events) {
      if (e.kind === 'rollback') stack.pop();
      else stack.push(e.to);
    }
    const current = stack[stack.length - 1];
    const previous = stack[stack.length - 2];
    if (current === undefined || previous === undefined) {
      throw new ConflictError(`${model}@${alias} has no earlier version to roll back to`);
    }
    return this.setAlias(model, alias, previous, {
      ...options,
      kind: 'rollback',
      expectedVersion: options.expectedVersion ?? current,
    });
  }

  /** The dataset prefix of a model: `datasets/<model>/`, or a folder below it. */
  datasetPrefix(model: string, prefix?: string): string {
    const root = keys.dataset(model);
    if (prefix === undefined) return root;
    if (!prefix.startsWith(root) || !prefix.endsWith('/') || prefix.includes('..')) {
      throw new InvalidNameError(
        `Dataset prefix ${JSON.stringify(prefix)} is not ${root} or a folder below it`,
      );
    }
    return prefix;
  }

  /** Writes a training data object under the model's dataset prefix. */
  async putDataset(
    model: string,
    name: string,
    body: Uint8Array,
    options: { prefix?: string; contentType?: string } = {},
  ) {
    const key = `${this.datasetPrefix(model, options.prefix)}${assertFileName(name)}`;
    await this.store.put(key, body, { contentType: options.contentType ?? 'text/csv' });
    return key;
  }

  /** The objects under the model's dataset prefix (every one of them is training data). */
  listDataset(model: string, prefix?: string) {
    return this.store.list(this.datasetPrefix(model, prefix));
  }

  /** Removes objects under the model's dataset prefix: all but `keep`, or `only` that one. */
  async removeDataset(
    model: string,
    options: { prefix?: string; only?: string; keep?: string } = {},
  ): Promise<string[]> {
    const root = this.datasetPrefix(model, options.prefix);
    const only = options.only === undefined ? undefined : `${root}${assertFileName(options.only)}`;
    const removed: string[] = [];
    for (const { key } of await this.listDataset(model, options.prefix)) {
      if (key === options.keep || (only !== undefined && key !== only)) continue;
      await this.store.delete(key);
      removed.push(key);
    }
    return removed;
  }
}

function isFileList(value: unknown): value is Record<string, FileDigest> {
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

function isFileName(name: string): boolean {
  try {
    assertFileName(name);
    return true;
  } catch {
    return false;
  }
}

/** Same names, sizes and digests. */
function sameFiles(
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

/** A body that went to a sink: the store's count and sha256 of what it wrote must match. */
function verifyDigest(
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

function verify(
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

/** Metadata of this model's version, with a well-formed file list: from metadata.json or a pointer's copy. */
function describesVersion(value: unknown, model: string, version: number): value is VersionMetadata {
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

/**
 * A copy that describes the pointer's version, holds a string for each of its files, and agrees
 * with the pointer's own file list when it has one.
 */
function isInlineVersion(
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
 * The version from its pointer's copy, each file checked against the copied metadata; undefined
 * (read it from its objects instead) if one does not match, so a damaged copy costs a round trip,
 * never a wrong model.
 */
function fromInline(model: string, version: number, inline: InlineVersion): VersionFiles | undefined {
  const files = new Map<string, Uint8Array>();
  for (const [name, digest] of Object.entries(inline.metadata.files)) {
    try {
      // A copy that owns its whole ArrayBuffer: a small Buffer is a view into Node's shared pool.
      const bytes = new Uint8Array(Buffer.from(inline.files[name] as string, 'base64'));
      verify(model, version, name, bytes, digest);
      files.set(name, bytes);
    } catch {
      return undefined;
    }
  }
  return { metadata: inline.metadata, files };
}
