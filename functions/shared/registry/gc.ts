/**
 * Garbage collection of the registry: removes what killed or losing publishes left behind, and
 * nothing else. For each version number of a model that has no metadata.json (never committed), its
 * objects (version files, training report, number claims) go once the newest of them is older than
 * the safe age; for a committed version, only its finished number claims go. Aliases, their history,
 * committed versions' files and datasets are never touched. The safe age is never below
 * MIN_GC_AGE_MS whatever the caller asks, so a publish still uploading is never touched; objects
 * whose age the store does not list are never removed. Dry run unless `apply`. A number removed
 * this way may be claimed again by the next publish when nothing above it is taken (it never held
 * a version).
 */

import { keys } from './layout.js';
import type { ModelRegistry } from './registry.js';
import type { ListedObject } from './store.js';

export const DEFAULT_GC_AGE_MS = 24 * 60 * 60 * 1000;
export const MIN_GC_AGE_MS = 60 * 60 * 1000;

export interface GcOptions {
  /** Only this model. @default every model */
  readonly model?: string;
  /** Leave anything younger than this. @default DEFAULT_GC_AGE_MS; raised to MIN_GC_AGE_MS */
  readonly olderThanMs?: number;
  /** Remove; otherwise only report what would go. @default false */
  readonly apply?: boolean;
  /** Wall-clock now, compared with the store's LastModified. @default Date.now */
  readonly now?: () => number;
}

/** One version number's leftovers. */
export interface GcItem {
  readonly model: string;
  readonly version: number;
  /** `uncommitted`: a version that never committed; `claims`: a committed version's number claims. */
  readonly kind: 'uncommitted' | 'claims';
  readonly objects: readonly { readonly key: string; readonly size: number }[];
  readonly bytes: number;
  /** When the newest of its objects was written. */
  readonly newest: Date;
}

export interface GcResult {
  readonly items: readonly GcItem[];
  readonly bytes: number;
  /** The safe age used (after raising to the minimum). */
  readonly olderThanMs: number;
  readonly applied: boolean;
}

export async function collectGarbage(registry: ModelRegistry, options: GcOptions = {}): Promise<GcResult> {
  const olderThanMs = Math.max(MIN_GC_AGE_MS, options.olderThanMs ?? DEFAULT_GC_AGE_MS);
  const now = (options.now ?? Date.now)();
  const models = options.model === undefined ? await registry.listModels() : [options.model];
  const items: GcItem[] = [];
  for (const model of models) {
    for (const item of await leftovers(registry, model)) {
      if (now - item.newest.getTime() >= olderThanMs) items.push(item);
    }
  }
  if (options.apply) {
    for (const item of items) {
      // Claims last: while a number's claim stands, no publish takes that number.
      const ordered = [...item.objects].sort(
        (a, b) => Number(isClaim(a.key, item)) - Number(isClaim(b.key, item)),
      );
      for (const { key } of ordered) await registry.store.delete(key);
    }
  }
  return { items, bytes: items.reduce((n, i) => n + i.bytes, 0), olderThanMs, applied: !!options.apply };
}

function isClaim(key: string, item: GcItem): boolean {
  return key.startsWith(keys.claims(item.model, item.version));
}

/** Every removable object of a model, grouped by version number; ages not applied yet. */
async function leftovers(registry: ModelRegistry, model: string): Promise<GcItem[]> {
  const roots = {
    versions: keys.versions(model),
    claims: keys.claimsRoot(model),
    reports: `${keys.model(model)}reports/`,
  };
  const [versions, claims, reports] = await Promise.all([
    registry.store.list(roots.versions),
    registry.store.list(roots.claims),
    registry.store.list(roots.reports),
  ]);
  const byNumber = new Map<number, { files: ListedObject[]; claims: ListedObject[] }>();
  const add = (objects: readonly ListedObject[], root: string, into: 'files' | 'claims') => {
    for (const object of objects) {
      const part = object.key.slice(root.length).split('/')[0] ?? '';
      if (!/^[1-9]\d{0,9}$/.test(part)) continue; // not of the layout: never ours to remove
      const n = Number(part);
      const entry = byNumber.get(n) ?? { files: [], claims: [] };
      entry[into].push(object);
      byNumber.set(n, entry);
    }
  };
  add(versions, roots.versions, 'files');
  add(reports, roots.reports, 'files');
  add(claims, roots.claims, 'claims');

  const items: GcItem[] = [];
  for (const [version, entry] of [...byNumber].sort((a, b) => a[0] - b[0])) {
    const committed = entry.files.some((o) => o.key === keys.metadata(model, version));
    const objects = committed ? entry.claims : [...entry.files, ...entry.claims];
    if (objects.length === 0) continue;
    // An object of unknown age might be in use: the whole number is left alone.
    if (objects.some((o) => !o.lastModified)) continue;
    const newest = new Date(Math.max(...objects.map((o) => o.lastModified!.getTime())));
    items.push({
      model,
      version,
      kind: committed ? 'claims' : 'uncommitted',
      objects: objects.map(({ key, size }) => ({ key, size })),
      bytes: objects.reduce((n, o) => n + o.size, 0),
      newest,
    });
  }
  return items;
}
