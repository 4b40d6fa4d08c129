/**
 * The model registry's front door: one object per store, each method one line into the module
 * that owns the concept and states its contract:
 *
 *   versions.ts   reading versions (list, metadata, files verified against their sha256)
 *   publish.ts    publishing a version (number claim, files, metadata.json last)
 *   aliases.ts    alias pointers as stored (absent, ok, damaged)
 *   history.ts    the alias history: the chain of moves, unfinished and undecided slots
 *   moves.ts      moving an alias (promote, rollback, canary and shadow changes), finishing and
 *                 repairing on the way
 *   routes.ts     an alias's canary and shadow: what each change makes of them
 *   inline.ts     small versions carried whole by their pointers
 *   datasets.ts   training data;  reports.ts  training reports;  gc.ts  leftovers of killed publishes
 *
 * Beneath them: claim.ts (slot claims: version numbers, history slots), integrity.ts (sha256 and
 * shape checks), layout.ts (every key), store.ts (ObjectReader / ObjectWriter, the SDK store),
 * s3-reader.ts (the function's read-only store) with s3-address, s3-xml and s3-errors.
 *
 * `RegistryReader` needs only an ObjectReader and has no way to write: the inference function
 * holds one. `ModelRegistry` adds the writes (the CLI, retraining, tests).
 */

import { AIAAS_ACTOR, readString } from '../env.js';
import * as aliases from './aliases.js';
import type { RetryOptions } from './claim.js';
import * as datasets from './datasets.js';
import * as aliasHistory from './history.js';
import * as moves from './moves.js';
import * as publishing from './publish.js';
import * as reports from './reports.js';
import type { RouteChange } from './routes.js';
import type { ObjectReader, ObjectStore } from './store.js';
import type { AliasEvent, ArtifactFile, VersionMetadata } from './types.js';
import * as versions from './versions.js';

export interface RegistryOptions {
  /** Who acts, recorded in metadata and alias history. @default $AIAAS_ACTOR, $USER, or 'aiaas' */
  readonly actor?: string;
  readonly retry?: RetryOptions;
  /** See DEFAULT_SETTLE_MS (moves.ts). @default 2 seconds */
  readonly settleMs?: number;
}

/** Everything the registry can tell, over a store that may only be read. */
export class RegistryReader {
  constructor(readonly store: ObjectReader) {}

  listModels(): Promise<string[]> {
    return versions.listModels(this.store);
  }

  listVersions(model: string): Promise<number[]> {
    return versions.listVersions(this.store, model);
  }

  getMetadata(model: string, version: number): Promise<VersionMetadata> {
    return versions.getMetadata(this.store, model, version);
  }

  readVersion(model: string, version: number, options?: versions.ReadVersionOptions) {
    return versions.readVersion(this.store, model, version, options);
  }

  readFile(model: string, version: number, name: string): Promise<Uint8Array> {
    return versions.readFile(this.store, model, version, name);
  }

  getAlias(model: string, alias?: string) {
    return aliases.getAlias(this.store, model, alias);
  }

  getAliasIfChanged(model: string, alias: string, etag: string) {
    return aliases.getAliasIfChanged(this.store, model, alias, etag);
  }

  readPointer(model: string, alias: string): Promise<aliases.PointerRead> {
    return aliases.readPointer(this.store, model, alias);
  }

  listAliases(model: string): Promise<Record<string, number>> {
    return aliases.listAliases(this.store, model);
  }

  aliasStates(model: string): Promise<Record<string, aliases.AliasState>> {
    return aliases.aliasStates(this.store, model);
  }

  history(model: string, alias?: string): Promise<AliasEvent[]> {
    return aliasHistory.history(this.store, model, alias);
  }

  unfinishedMoves(model: string, alias?: string): Promise<AliasEvent[]> {
    return aliasHistory.unfinishedMoves(this.store, model, alias);
  }

  datasetPrefix(model: string, prefix?: string): string {
    return datasets.datasetPrefix(model, prefix);
  }

  listDataset(model: string, prefix?: string) {
    return datasets.listDataset(this.store, model, prefix);
  }
}

/** The registry with its writes: versions published, aliases moved, datasets and reports kept. */
export class ModelRegistry extends RegistryReader {
  declare readonly store: ObjectStore;
  readonly actor: string;
  private readonly mover: moves.Mover;

  constructor(store: ObjectStore, options: RegistryOptions = {}) {
    super(store);
    this.actor =
      options.actor ?? readString(process.env, AIAAS_ACTOR) ?? readString(process.env, 'USER') ?? 'aiaas';
    this.mover = { store, actor: this.actor, retry: options.retry, settleMs: options.settleMs };
  }

  publish(
    model: string,
    files: readonly ArtifactFile[],
    input: publishing.PublishInput,
    options?: publishing.PublishOptions,
  ): Promise<VersionMetadata> {
    return publishing.publish(this.mover, model, files, input, options);
  }

  setAlias(
    model: string,
    alias: string,
    version: number,
    options?: moves.MoveAliasOptions,
  ): Promise<AliasEvent> {
    return moves.setAlias(this.mover, model, alias, version, options);
  }

  /** Changes the canary or shadow of an alias (see moves.changeRoutes, routes.ts). */
  changeRoutes(
    model: string,
    alias: string,
    change: RouteChange,
    options?: moves.RouteChangeOptions,
  ): Promise<AliasEvent> {
    return moves.changeRoutes(this.mover, model, alias, change, options);
  }

  rollback(
    model: string,
    alias?: string,
    options?: Omit<moves.MoveAliasOptions, 'kind'>,
  ): Promise<AliasEvent> {
    return moves.rollback(this.mover, model, alias, options);
  }

  putReport(model: string, version: number, name: string, body: Uint8Array | string, contentType: string) {
    return reports.putReport(this.store, model, version, name, body, contentType);
  }

  putDataset(
    model: string,
    name: string,
    body: Uint8Array,
    options?: { prefix?: string; contentType?: string },
  ) {
    return datasets.putDataset(this.store, model, name, body, options);
  }

  removeDataset(
    model: string,
    options?: { prefix?: string; only?: string; keep?: string },
  ): Promise<string[]> {
    return datasets.removeDataset(this.store, model, options);
  }
}
