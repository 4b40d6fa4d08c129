/**
 * What S3's failures mean to the registry, one wording for both S3 stores (the SDK's
 * S3ObjectStore and the function's S3ObjectReader), so a caller cannot tell them apart: a missing
 * key is no error, a 403 is a denial (unless the key is merely missing, see `missingBehind403`),
 * anything else leaves the registry unavailable. Every fault becomes a RegistryUnavailableError
 * naming the store and the action, the S3 error kept as its cause.
 */

import { RegistryUnavailableError } from '../errors.js';

/** A read's answer that means the key does not exist. */
export function isMissing(status: number | undefined, code: string | undefined): boolean {
  return status === 404 || code === 'NoSuchKey';
}

/**
 * S3 answers 403, not 404, for a missing key when the caller may list only a prefix of the bucket
 * (least privilege). Listing that key tells a missing object from a real denial. A listing that
 * fails answers false on purpose: the caller then raises the 403 as the denial it may be, so no
 * fault is hidden.
 */
export async function missingBehind403(
  key: string,
  listFrom: (key: string) => Promise<readonly { readonly key: string }[]>,
): Promise<boolean> {
  let listed: readonly { readonly key: string }[];
  try {
    listed = await listFrom(key);
  } catch {
    return false;
  }
  return !listed.some((item) => item.key === key);
}

/** The error for a failed `action` on the store `description`: a denial (403), or unavailable. */
export function registryFault(
  description: string,
  action: string,
  cause: unknown,
  status: number | undefined,
  detail: string,
): RegistryUnavailableError {
  if (status === 403) {
    return new RegistryUnavailableError(`Registry ${description} denied access (${action})`, { cause });
  }
  return new RegistryUnavailableError(
    `Registry ${description} is unavailable (${action}: ${detail}${status ? ` ${status}` : ''})`,
    { cause },
  );
}
