/**
 * Training reports: extra objects under `models/<model>/reports/<n>/` (loss curves and the like),
 * written create-only while a version is published (PublishOptions.beforeCommit) and listed in its
 * metadata's `report`. A report of a version that never committed is a leftover `aiaas gc` removes.
 */

import { putNew } from './create-only.js';
import { assertFileName, keys } from './layout.js';
import type { ObjectStore } from './store.js';

/** Writes one report object; answers its key. */
export async function putReport(
  store: ObjectStore,
  model: string,
  version: number,
  name: string,
  body: Uint8Array | string,
  contentType: string,
): Promise<string> {
  const key = `${keys.reports(model, version)}${assertFileName(name)}`;
  await putNew(store, key, body, { contentType });
  return key;
}
