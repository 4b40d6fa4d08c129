/**
 * Stands in for `node:crypto` in the inference function's bundle (an esbuild alias: see
 * `INFERENCE_BUILD` in scripts/build/options.ts, used by `npm run build` and the CDK alike).
 *
 * Dependencies import from node:crypto at the top of their modules — Powertools Logger
 * (`randomInt`, for log sampling), @smithy/core (`getRandomValues`, `createHash`...) — and loading
 * node:crypto is a large part of a cold start (it pulls in streams, keys, ciphers, X.509;
 * docs/benchmarks.md, "Round 2") even when neither function is ever called. These forward to the
 * real module, loaded on first call. A dependency that imports anything else from node:crypto fails the build with
 * "No matching export", never at run time.
 */
import type * as NodeCrypto from 'node:crypto';

const real = (): typeof NodeCrypto => process.getBuiltinModule('node:crypto');

export const randomInt: typeof NodeCrypto.randomInt = ((...args: Parameters<typeof NodeCrypto.randomInt>) =>
  (real().randomInt as (...a: unknown[]) => unknown)(...args)) as typeof NodeCrypto.randomInt;

export const getRandomValues: typeof NodeCrypto.getRandomValues = (array) => real().getRandomValues(array);

export const createHash: typeof NodeCrypto.createHash = (algorithm, options) =>
  real().createHash(algorithm, options);

export const createHmac: typeof NodeCrypto.createHmac = (algorithm, key, options) =>
  real().createHmac(algorithm, key, options);
