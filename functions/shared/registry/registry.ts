import { setTimeout as sleep } from 'node:timers/promises';
import { monotonicMs } from '../clock.js';
import { randomId, sha256 } from '../digest.js';
import { ConflictError, IntegrityError, InvalidNameError, NotFoundError } from '../errors.js';
import { claimSlot, type RetryOptions, type SlotClaim, slotClaims, withClaimRetries } from './claim.js';
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
/**
 * How long a mover lets an unfinished move (a won history slot whose pointer is not written yet)
 * finish before finishing it itself, and how long it waits on a slot it cannot decide before
 * skipping it. Correctness does not depend on it: finishing a move twice writes the same pointer.
 */
export const DEFAULT_SETTLE_MS = 2_000;
/**
 * A version whose files come to at most this many bytes rides in its alias pointers whole
 * (AliasPointer.inline): ~85 KiB of base64 at most (plus the metadata), a few ms to fetch from S3,
 * against a whole round trip saved on every cold start and every swap.
 */
export const INLINE_LIMIT_BYTES = 64 * 1024;
const decoder = new TextDecoder();

/** An alias pointer as stored: absent, readable, or there but not a pointer (then `reason` says why). */
export type PointerRead =
  | { readonly state: 'absent' }
  | { readonly state: 'ok'; readonly pointer: AliasPointer & { etag: string } }
  | { readonly state: 'damaged'; readonly etag: string; readonly reason: string };

/** What `aliasStates` reports for one alias. */
export type AliasState = { readonly version: number } | { readonly damaged: string };

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
  /** See DEFAULT_SETTLE_MS. @default 2 seconds */
  readonly settleMs?: number;
}

/** A history slot's state as a mover sees it (see `moveState`). */
type MoveState =
  | {
      readonly kind: 'settled';
      /** The move the alias is at: the pointer's event, or the one being repaired. */
      readonly head?: AliasEvent;
      readonly nextSeq: number;
    }
  /** A won (or possibly won) slot above the head whose pointer is not written: finish it. */
  | {
      readonly kind: 'unfinished';
      readonly event: AliasEvent;
      readonly claim: SlotClaim;
      /** The pointer is damaged or names no recorded move: repaired at once. */
      readonly repair?: boolean;
    }
  /** A slot above the head with several unmarked claims: wait, then skip it. */
  | { readonly kind: 'undecided'; readonly seq: number; readonly claims: readonly SlotClaim[] };

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

    const version = await withClaimRetries(
      `allocating a version of ${model}`,
      async () => {
        const next = await this.nextNumber(model);
        // A fresh id each attempt: a claim once marked lost must never be taken for a new one.
        const claim = await claimSlot(
          this.store,
          keys.claims(model, next),
          JSON.stringify({ by: this.actor, at: new Date().toISOString() }),
          randomId(),
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

  /**
   * The number to claim next: one above every number committed, uploaded to or claimed by a
   * contender that has not lost. A number whose claims all lost is free again when nothing above
   * it is taken; below a taken one it stays a gap (see README: version numbers).
   */
  private async nextNumber(model: string): Promise<number> {
    const [versions, claims] = await Promise.all([
      this.store.listPrefixes(keys.versions(model)),
      this.store.list(keys.claimsRoot(model)),
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

  /** Writes an extra object under the model's report folder (training curves and the like). */
  async putReport(
    model: string,
    version: number,
    name: string,
    body: Uint8Array | string,
    contentType: string,
  ) {
    const key = `${keys.reports(model, version)}${assertFileName(name)}`;
    await this.store.put(key, body, { contentType, ifNoneMatch: '*' });
    return key;
  }

  /**
   * The alias pointer, or undefined when the alias was never set. Throws IntegrityError, naming
   * the alias object, when the object is there but is not a pointer.
   */
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

  /** The alias pointer as stored, a damaged one reported rather than thrown. Store faults throw. */
  async readPointer(model: string, alias: string): Promise<PointerRead> {
    const object = await this.store.get(keys.alias(model, alias));
    if (!object) return { state: 'absent' };
    try {
      return { state: 'ok', pointer: { ...this.parsePointer(object, model, alias), etag: object.etag } };
    } catch (error) {
      if (!(error instanceof IntegrityError)) throw error;
      return { state: 'damaged', etag: object.etag, reason: error.message };
    }
  }

  private parsePointer(object: StoredObject, model: string, alias: string): AliasPointer {
    const what = `alias ${model}@${alias} (${keys.alias(model, alias)})`;
    const pointer = parseJson<AliasPointer>(object, what);
    if (!Number.isInteger(pointer?.version) || pointer.version < 1) {
      throw new IntegrityError(`${what} does not name a version`);
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

  /** Aliases of a model and the versions they point to; a damaged alias object is left out (see aliasStates). */
  async listAliases(model: string): Promise<Record<string, number>> {
    const out: Record<string, number> = {};
    for (const [alias, state] of Object.entries(await this.aliasStates(model))) {
      if ('version' in state) out[alias] = state.version;
    }
    return out;
  }

  /**
   * Every alias of a model: the version it points to, or why its object is damaged (a promote
   * writes a fresh pointer over it). One damaged alias never hides the others.
   */
  async aliasStates(model: string): Promise<Record<string, AliasState>> {
    const objects = await this.store.list(keys.aliasesRoot(model));
    const root = keys.aliasesRoot(model);
    const out: Record<string, AliasState> = {};
    await Promise.all(
      objects
        .map((o) => /^([^/]+)\.json$/.exec(o.key.slice(root.length))?.[1])
        .filter((name): name is string => !!name && isAliasName(name))
        .map(async (alias) => {
          const read = await this.readPointer(model, alias);
          if (read.state === 'ok') out[alias] = { version: read.pointer.version };
          else if (read.state === 'damaged') out[alias] = { damaged: read.reason };
        }),
    );
    return Object.fromEntries(Object.entries(out).sort(([a], [b]) => (a < b ? -1 : 1)));
  }

  /**
   * The alias history, oldest first: exactly the moves the alias made. It is the chain that ends at
   * the move the pointer names, each move naming the one before it (`prev`). A move whose mover
   * died before writing the pointer is not in it until the next move finishes it (see
   * `unfinishedMoves`). With a damaged pointer, the chain ends at the newest decided move.
   */
  async history(model: string, alias: string = DEFAULT_ALIAS): Promise<AliasEvent[]> {
    const { slots, head, pointer } = await this.chainHead(model, alias);
    const events = await this.chainTo(slots, head);
    // No pointer: the newest recorded move never reached it (the alias was never set by it).
    return pointer.state === 'absent' ? events.slice(0, -1) : events;
  }

  /** Moves recorded above the pointer's and not finished yet: the next move finishes or drops them. */
  async unfinishedMoves(model: string, alias: string = DEFAULT_ALIAS): Promise<AliasEvent[]> {
    const state = await this.moveState(model, alias, new Set());
    return state.kind === 'unfinished' && !state.repair ? [state.event] : [];
  }

  /**
   * Moves an alias to a version, recording the move in the history first (the history is the
   * truth; the pointer is what functions poll). Concurrent moves are serialized: each lands in its
   * own history slot, none is lost. A move left unfinished by a mover that died is finished first
   * (its pointer written) after at most `settleMs`, so it never blocks the alias for longer.
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
    const mine = new Set<string>(); // ids of this call's claims: one finished by another mover is ours
    const skip = new Set<number>();
    const waiting = new Map<string, number>();
    for (let round = 0; round < 10; round++) {
      const event = await withClaimRetries(
        `moving ${model}@${alias}`,
        async () => {
          const state = await this.moveState(model, alias, skip);
          if (state.kind === 'unfinished') {
            if (state.repair || this.settled(state.claim.key, state.claim.lastModified, waiting)) {
              await this.writePointer(state.event);
            } else await sleep(25 + Math.random() * 75);
            return undefined;
          }
          if (state.kind === 'undecided') {
            const key = `slot ${state.seq}`;
            const newest = Math.max(...state.claims.map((c) => c.lastModified?.getTime() ?? Date.now()));
            if (this.settled(key, new Date(newest), waiting)) skip.add(state.seq);
            else await sleep(25 + Math.random() * 75);
            return undefined;
          }
          const { head, nextSeq } = state;
          if (head && mine.has(head.id)) return head;
          const from = head?.to ?? null;
          if (options.expectedVersion !== undefined && options.expectedVersion !== from) {
            throw new ConflictError(
              `${model}@${alias} points to ${from ?? 'nothing'}, not ${options.expectedVersion}: it was moved meanwhile`,
            );
          }
          // A fresh id each attempt: a claim once marked lost must never be taken for a new one.
          const id = randomId();
          mine.add(id);
          const candidate: AliasEvent = {
            id,
            seq: nextSeq,
            model,
            alias,
            kind: options.kind ?? 'promote',
            from,
            to: version,
            at: new Date().toISOString(),
            who: options.who ?? this.actor,
            why: options.why ?? '',
            ...(options.details ? { details: options.details } : {}),
            prev: head?.id ?? null,
          };
          const claim = await claimSlot(
            this.store,
            keys.historySlot(model, alias, nextSeq),
            JSON.stringify(candidate),
            id,
          );
          return claim.won ? candidate : undefined;
        },
        this.options.retry,
      );
      if (await this.writePointer(event, target)) return event;
      // Another mover finished a different move in this slot first (it waited out ours): this
      // move was not made. Made again on top of it, unless the caller asked for a compare-and-swap.
      if (options.expectedVersion !== undefined) {
        throw new ConflictError(`${model}@${alias} was moved meanwhile; v${version} was not promoted`);
      }
    }
    throw new ConflictError(`Gave up on moving ${model}@${alias}: it kept being moved meanwhile; try again`);
  }

  /** Whether a wait on `key` is over: it is older than settleMs, or this mover has waited that long. */
  private settled(key: string, lastModified: Date | undefined, waiting: Map<string, number>): boolean {
    const settleMs = this.options.settleMs ?? DEFAULT_SETTLE_MS;
    if (lastModified && Date.now() - lastModified.getTime() >= settleMs) return true;
    const now = monotonicMs();
    const since = waiting.get(key) ?? now;
    waiting.set(key, since);
    return now - since >= settleMs;
  }

  /**
   * Writes the alias pointer for `event` unless the pointer already names it or a later move.
   * Returns whether `event` is one of the alias's moves: false when another move of the same slot
   * (or one not built on `event`) got the pointer first. Writes are conditional on the pointer
   * read (If-Match, or If-None-Match when there is none), so where S3 enforces them a stale write
   * never lands.
   */
  private async writePointer(event: AliasEvent, known?: VersionMetadata): Promise<boolean> {
    let metadata = known?.version === event.to ? known : undefined;
    let inline: InlineVersion | null | undefined; // null: read, and not carried
    for (let attempt = 0; attempt < 10; attempt++) {
      const read = await this.readPointer(event.model, event.alias);
      const at = read.state === 'ok' && isChained(read.pointer) ? read.pointer : undefined;
      if (at && at.seq === event.seq && at.eventId === event.id) return true;
      if (at && at.seq >= event.seq) {
        // A pointer naming a move the history does not hold is damaged: it is replaced.
        const verdict = await this.inChain(event, at);
        if (verdict !== 'unrecorded') return verdict === 'in';
      }
      // The file list and the copy are shortcuts for readers: if the version cannot be read now,
      // the pointer goes without them rather than the recorded move going without a pointer.
      metadata ??= await this.getMetadata(event.model, event.to).catch(() => undefined);
      if (metadata && inline === undefined) {
        // Tried once more after a store fault: a pointer written without its copy stays without one
        // until the alias moves again.
        const read = metadata;
        inline =
          (await this.inlineVersion(read)
            .catch(() => this.inlineVersion(read))
            .catch(() => undefined)) ?? null;
      }
      const pointer: AliasPointer = {
        model: event.model,
        alias: event.alias,
        version: event.to,
        seq: event.seq,
        eventId: event.id,
        updatedAt: event.at,
        ...(metadata ? { files: metadata.files } : {}),
        ...(inline ? { inline } : {}),
      };
      try {
        await this.store.put(keys.alias(event.model, event.alias), JSON.stringify(pointer), {
          contentType: JSON_TYPE,
          ...(read.state === 'absent'
            ? { ifNoneMatch: '*' as const }
            : { ifMatch: read.state === 'ok' ? read.pointer.etag : read.etag }),
        });
      } catch (error) {
        if (!(error instanceof ConflictError)) throw error;
      }
    }
    throw new ConflictError(
      `${event.model}@${event.alias}: the move was recorded, but the alias pointer kept changing; run the command again`,
    );
  }

  /**
   * Whether `event` is in the chain that ends at the pointer `at` (walks `prev` back to its slot),
   * or 'unrecorded' when the pointer names a move the history does not hold.
   */
  private async inChain(event: AliasEvent, at: AliasPointer): Promise<'in' | 'out' | 'unrecorded'> {
    const { slots } = await this.listHistory(event.model, event.alias);
    let id: string | null = at.eventId;
    let seq = at.seq;
    for (let steps = 0; id !== null && seq >= event.seq && steps < 10_000; steps++) {
      if (id === event.id && seq === event.seq) return 'in';
      const current = await this.readEvent(slots, seq, id);
      if (!current) return steps === 0 ? 'unrecorded' : 'out';
      ({ id, seq } = this.prevOf(slots, current) ?? { id: null, seq: 0 });
    }
    return 'out';
  }

  /** The history's claims by slot. */
  private async listHistory(model: string, alias: string): Promise<{ slots: Map<number, SlotClaim[]> }> {
    const root = keys.history(model, alias);
    const objects = await this.store.list(root);
    const bySlot = new Map<number, ListedObject[]>();
    for (const object of objects) {
      const part = object.key.slice(root.length).split('/')[0] ?? '';
      if (!/^\d+$/.test(part)) continue;
      const seq = Number(part);
      bySlot.set(seq, [...(bySlot.get(seq) ?? []), object]);
    }
    const slots = new Map<number, SlotClaim[]>();
    for (const [seq, listed] of bySlot)
      slots.set(seq, slotClaims(listed, keys.historySlot(model, alias, seq)));
    return { slots };
  }

  /** One history entry, by slot and id; undefined when it is not there. */
  private async readEvent(
    slots: ReadonlyMap<number, readonly SlotClaim[]>,
    seq: number,
    id: string,
  ): Promise<AliasEvent | undefined> {
    const claim = slots.get(seq)?.find((c) => c.id === id);
    if (!claim) return undefined;
    const object = await this.store.get(claim.key);
    if (!object) return undefined;
    const event = parseJson<AliasEvent>(object, `alias history entry ${claim.key}`);
    return event?.id === id && event.seq === seq ? event : undefined;
  }

  /**
   * The move before `event`: the one its `prev` names, or, for entries written before `prev`
   * existed, the only claim of the nearest slot below.
   */
  private prevOf(
    slots: ReadonlyMap<number, readonly SlotClaim[]>,
    event: AliasEvent,
  ): { id: string; seq: number } | undefined {
    if (event.prev === null) return undefined;
    if (typeof event.prev === 'string') {
      const seq = slotOf(slots).get(event.prev);
      return seq !== undefined && seq < event.seq ? { id: event.prev, seq } : undefined;
    }
    const below = [...slots.keys()].filter((seq) => seq < event.seq).sort((a, b) => b - a)[0];
    const claims = below === undefined ? [] : slots.get(below)!;
    return below !== undefined && claims.length === 1 ? { id: claims[0]!.id, seq: below } : undefined;
  }

  /** The chain of moves ending at `head`, oldest first. */
  private async chainTo(
    slots: ReadonlyMap<number, readonly SlotClaim[]>,
    head: AliasEvent | undefined,
  ): Promise<AliasEvent[]> {
    if (!head) return [];
    // Read together rather than one round trip per move: every claim that may be in the chain.
    const read = new Map<string, AliasEvent>();
    await Promise.all(
      [...slots]
        .filter(([seq]) => seq < head.seq)
        .flatMap(([seq, claims]) => claims.filter((c) => !c.lost).map((c) => [seq, c.id] as const))
        .map(async ([seq, id]) => {
          const event = await this.readEvent(slots, seq, id);
          if (event) read.set(`${seq}/${id}`, event);
        }),
    );
    const events: AliasEvent[] = [];
    let current: AliasEvent | undefined = head;
    while (current && events.length <= slots.size) {
      events.unshift(current);
      const prev = this.prevOf(slots, current);
      current = prev
        ? (read.get(`${prev.seq}/${prev.id}`) ?? (await this.readEvent(slots, prev.seq, prev.id)))
        : undefined;
    }
    return events;
  }

  /**
   * The history's slots and the move the alias is at: the one the pointer names, or, when the
   * pointer is absent, damaged or names no recorded move, the newest slot's only unmarked claim.
   */
  private async chainHead(
    model: string,
    alias: string,
  ): Promise<{ slots: Map<number, SlotClaim[]>; head?: AliasEvent; pointer: PointerRead }> {
    const [{ slots }, pointer] = await Promise.all([
      this.listHistory(model, alias),
      this.readPointer(model, alias),
    ]);
    if (pointer.state === 'ok' && isChained(pointer.pointer)) {
      const head = await this.readEvent(slots, pointer.pointer.seq, pointer.pointer.eventId);
      if (head) return { slots, head, pointer };
    }
    if (pointer.state === 'absent' && slots.size === 0) return { slots, pointer };
    for (const seq of [...slots.keys()].sort((a, b) => b - a)) {
      const open = slots.get(seq)!.filter((c) => !c.lost);
      if (open.length !== 1) continue;
      const head = await this.readEvent(slots, seq, open[0]!.id);
      if (head) return { slots, head, pointer };
    }
    return { slots, pointer };
  }

  /**
   * Where the next move goes. The head is the move the pointer names (repaired when the pointer is
   * absent or damaged: the newest decided move). Above it, a slot with exactly one unmarked claim
   * built on the head is a move that won (or may have) and whose pointer is not written: the mover
   * must finish it first. Finishing it is always safe: while that claim is unmarked no other claim
   * of its slot can win. A slot with several unmarked claims cannot be told apart (one may have
   * won): the mover waits, then skips it (`skip`). Claims built on another move are void.
   */
  private async moveState(model: string, alias: string, skip: ReadonlySet<number>): Promise<MoveState> {
    const { slots, head, pointer } = await this.chainHead(model, alias);
    const confirmed = pointer.state === 'ok' && head !== undefined && pointer.pointer.eventId === head.id;
    if (head && !confirmed) {
      // No usable pointer: the newest decided move is the head, and is finished (its pointer written) first.
      const claim = slots.get(head.seq)!.find((c) => c.id === head.id)!;
      return { kind: 'unfinished', event: head, claim, repair: pointer.state !== 'absent' };
    }
    const above = [...slots.keys()].filter((seq) => seq > (head?.seq ?? 0)).sort((a, b) => b - a);
    for (const seq of above) {
      if (skip.has(seq)) continue;
      const open = slots.get(seq)!.filter((c) => !c.lost);
      if (open.length === 1) {
        const event = await this.readEvent(slots, seq, open[0]!.id);
        if (event && event.prev === (head?.id ?? null) && event.from === (head?.to ?? null)) {
          return { kind: 'unfinished', event, claim: open[0]! };
        }
      } else if (open.length > 1) {
        return { kind: 'undecided', seq, claims: open };
      }
    }
    const top = above[0];
    const free = top !== undefined && !skip.has(top) && slots.get(top)!.every((c) => c.lost);
    const highest = Math.max(head?.seq ?? 0, ...slots.keys());
    return { kind: 'settled', ...(head ? { head } : {}), nextSeq: free ? top : highest + 1 };
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

const slotIndex = new WeakMap<ReadonlyMap<number, readonly SlotClaim[]>, Map<string, number>>();

/** Claim id → its slot, built once per listing. */
function slotOf(slots: ReadonlyMap<number, readonly SlotClaim[]>): Map<string, number> {
  let index = slotIndex.get(slots);
  if (!index) {
    index = new Map();
    for (const [seq, claims] of slots) for (const claim of claims) index.set(claim.id, seq);
    slotIndex.set(slots, index);
  }
  return index;
}

/** A pointer that names its move (every pointer this registry writes does). */
function isChained(pointer: AliasPointer): boolean {
  return Number.isSafeInteger(pointer.seq) && pointer.seq >= 1 && typeof pointer.eventId === 'string';
}

function isAliasName(name: string): boolean {
  try {
    assertAliasName(name);
    return true;
  } catch {
    return false;
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
