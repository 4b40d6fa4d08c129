/**
 * Training data: objects under `datasets/<model>/` (CSV), or a folder below it. Every object under
 * a model's dataset prefix is training data; no name or prefix given here can reach outside it.
 * Plain writes: a dataset object is replaced by the next upload of the same name.
 */

import { InvalidNameError } from '../errors.js';
import { assertFileName, keys } from './layout.js';
import type { ListedObject, ObjectReader, ObjectStore } from './store.js';

/** The dataset prefix of a model: `datasets/<model>/`, or a folder below it. */
export function datasetPrefix(model: string, prefix?: string): string {
  const root = keys.dataset(model);
  if (prefix === undefined) return root;
  if (!prefix.startsWith(root) || !prefix.endsWith('/') || prefix.includes('..')) {
    throw new InvalidNameError(
      `Dataset prefix ${JSON.stringify(prefix)} is not ${root} or a folder below it`,
    );
  }
  return prefix;
}

/** Writes a training data object under the model's dataset prefix; answers its key. */
export async function putDataset(
  store: ObjectStore,
  model: string,
  name: string,
  body: Uint8Array,
  options: { prefix?: string; contentType?: string } = {},
): Promise<string> {
  const key = `${datasetPrefix(model, options.prefix)}${assertFileName(name)}`;
  await store.put(key, body, { contentType: options.contentType ?? 'text/csv' });
  return key;
}

/** The objects under the model's dataset prefix. */
export function listDataset(store: ObjectReader, model: string, prefix?: string): Promise<ListedObject[]> {
  return store.list(datasetPrefix(model, prefix));
}

/** Removes objects under the model's dataset prefix: all but `keep`, or `only` that one. */
export async function removeDataset(
  store: ObjectStore,
  model: string,
  options: { prefix?: string; only?: string; keep?: string } = {},
): Promise<string[]> {
  const root = datasetPrefix(model, options.prefix);
  const only = options.only === undefined ? undefined : `${root}${assertFileName(options.only)}`;
  const removed: string[] = [];
  for (const { key } of await listDataset(store, model, options.prefix)) {
    if (key === options.keep || (only !== undefined && key !== only)) continue;
    await store.delete(key);
    removed.push(key);
  }
  return removed;
}
