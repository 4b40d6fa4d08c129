/**
 * Alias pointers, read side: `models/<model>/aliases/<alias>.json` names the version an alias
 * serves, the history move that set it (`seq`, `eventId`), and shortcuts copied from the version
 * (its file list, and a small version whole: inline.ts). Inference functions poll it with a cheap
 * conditional GET. The version number must be well formed or the pointer is damaged (an
 * IntegrityError naming the object; `readPointer` reports it instead, and a promote writes a fresh
 * pointer over it). Shortcuts that are not well formed are dropped, never trusted and never fatal:
 * readers re-derive them from the version. Only moves.ts writes pointers.
 *
 * The canary and shadow routes (routes.ts) are checked the same way: one that is not well formed
 * (version not a positive integer or the served one, weight or sample outside 0-100, no `since`)
 * is dropped, and the alias serves its version alone until the next move rewrites the pointer
 * from the history, which holds the routes as recorded. Dropping fails safe: every request goes
 * to the version the alias serves, instead of a damaged pointer stopping a function from learning
 * of moves at all. A route's own `files`/`inline` shortcuts are dropped like the pointer's.
 */

import { IntegrityError } from '../errors.js';
import { isInlineVersion } from './inline.js';
import { isFileList, parseJson } from './integrity.js';
import { DEFAULT_ALIAS, isAliasName, keys } from './layout.js';
import { type Canary, canaryRoute, type Shadow, shadowRoute } from './routes.js';
import type { ObjectReader, StoredObject } from './store.js';
import type { AliasPointer, CanaryRoute, FileDigest, InlineVersion, ShadowRoute } from './types.js';

/** An alias pointer as stored: absent, readable, or there but not a pointer (then `reason` says why). */
export type PointerRead =
  | { readonly state: 'absent' }
  | { readonly state: 'ok'; readonly pointer: AliasPointer & { etag: string } }
  | { readonly state: 'damaged'; readonly etag: string; readonly reason: string };

/**
 * What `aliasStates` reports for one alias: the version it serves and its routes beside it (the
 * pointer's canary and shadow without their shortcuts; absent when none runs), or why it is damaged.
 */
export type AliasState =
  | { readonly version: number; readonly canary?: Canary; readonly shadow?: Shadow }
  | { readonly damaged: string };

/**
 * The alias pointer, or undefined when the alias was never set. Throws IntegrityError, naming
 * the alias object, when the object is there but is not a pointer.
 */
export async function getAlias(
  store: ObjectReader,
  model: string,
  alias: string = DEFAULT_ALIAS,
): Promise<(AliasPointer & { etag: string }) | undefined> {
  const object = await store.get(keys.alias(model, alias));
  if (!object) return undefined;
  return { ...parsePointer(object, model, alias), etag: object.etag };
}

/** Conditional read of the alias pointer: 'unchanged' costs one 304. */
export async function getAliasIfChanged(
  store: ObjectReader,
  model: string,
  alias: string,
  etag: string,
): Promise<(AliasPointer & { etag: string }) | 'unchanged' | undefined> {
  const object = await store.getIfChanged(keys.alias(model, alias), etag);
  if (object === undefined || object === 'unchanged') return object;
  return { ...parsePointer(object, model, alias), etag: object.etag };
}

/** The alias pointer as stored, a damaged one reported rather than thrown. Store faults throw. */
export async function readPointer(store: ObjectReader, model: string, alias: string): Promise<PointerRead> {
  const object = await store.get(keys.alias(model, alias));
  if (!object) return { state: 'absent' };
  try {
    return { state: 'ok', pointer: { ...parsePointer(object, model, alias), etag: object.etag } };
  } catch (error) {
    if (!(error instanceof IntegrityError)) throw error;
    return { state: 'damaged', etag: object.etag, reason: error.message };
  }
}

/** Aliases of a model and the versions they point to; a damaged alias object is left out (see aliasStates). */
export async function listAliases(store: ObjectReader, model: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const [alias, state] of Object.entries(await aliasStates(store, model))) {
    if ('version' in state) out[alias] = state.version;
  }
  return out;
}

/**
 * Every alias of a model: the version it points to and its canary and shadow, or why its object
 * is damaged (a promote writes a fresh pointer over it). One damaged alias never hides the others.
 */
export async function aliasStates(store: ObjectReader, model: string): Promise<Record<string, AliasState>> {
  const objects = await store.list(keys.aliasesRoot(model));
  const root = keys.aliasesRoot(model);
  const out: Record<string, AliasState> = {};
  await Promise.all(
    objects
      .map((o) => /^([^/]+)\.json$/.exec(o.key.slice(root.length))?.[1])
      .filter((name): name is string => !!name && isAliasName(name))
      .map(async (alias) => {
        const read = await readPointer(store, model, alias);
        if (read.state === 'ok') out[alias] = servedState(read.pointer);
        else if (read.state === 'damaged') out[alias] = { damaged: read.reason };
      }),
  );
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => (a < b ? -1 : 1)));
}

/** An alias's state from its checked pointer; the routes' shortcuts (files, inline bytes) stay out of a summary. */
function servedState({ version, canary, shadow }: AliasPointer): AliasState {
  return {
    version,
    ...(canary ? { canary: { version: canary.version, weight: canary.weight, since: canary.since } } : {}),
    ...(shadow ? { shadow: { version: shadow.version, sample: shadow.sample, since: shadow.since } } : {}),
  };
}

/** A pointer that names its move (every pointer this registry writes does). */
export function isChained(pointer: AliasPointer): boolean {
  return Number.isSafeInteger(pointer.seq) && pointer.seq >= 1 && typeof pointer.eventId === 'string';
}

function parsePointer(object: StoredObject, model: string, alias: string): AliasPointer {
  const what = `alias ${model}@${alias} (${keys.alias(model, alias)})`;
  const pointer = parseJson<AliasPointer>(object, what);
  if (!Number.isInteger(pointer?.version) || pointer.version < 1) {
    throw new IntegrityError(`${what} does not name a version`);
  }
  // The shortcuts are not the truth (metadata.json is): one that is not well formed is dropped
  // rather than allowed to fail a good version.
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
  const { canary: rawCanary, shadow: rawShadow, ...plain } = checked;
  const canary = canaryRoute(rawCanary, pointer.version);
  const shadow = shadowRoute(rawShadow, pointer.version);
  return {
    ...plain,
    ...(canary
      ? { canary: { ...canary, ...shortcuts(rawCanary, model, canary.version) } as CanaryRoute }
      : {}),
    ...(shadow && shadow.version !== canary?.version
      ? { shadow: { ...shadow, ...shortcuts(rawShadow, model, shadow.version) } as ShadowRoute }
      : {}),
  };
}

/** A route's well-formed shortcuts for its version (see the pointer's own). */
function shortcuts(
  route: unknown,
  model: string,
  version: number,
): { files?: Readonly<Record<string, FileDigest>>; inline?: InlineVersion } {
  const { files, inline } = route as { files?: unknown; inline?: unknown };
  const listed = files !== undefined && isFileList(files) ? (files as Record<string, FileDigest>) : undefined;
  return {
    ...(listed ? { files: listed } : {}),
    ...(inline !== undefined && isInlineVersion(inline, model, version, listed) ? { inline } : {}),
  };
}
