/**
 * sha256 and random ids without `node:crypto` on a cold start's path. Loading node:crypto (it
 * pulls in streams, keys, X.509...) costs more than a small model's whole download
 * (docs/benchmarks.md, "Round 2"); below NATIVE_FROM_BYTES the maintained pure-JS sha256 (the one
 * the AWS SDK uses in browsers) is cheaper, and above it node:crypto is loaded on first use and
 * then kept.
 */
import { Sha256 } from '@aws-crypto/sha256-js';

/** Hashing this many bytes in JS costs about what loading node:crypto does. */
export const NATIVE_FROM_BYTES = 256 * 1024;

type NodeCrypto = typeof import('node:crypto');
let native: NodeCrypto | undefined;
/** node:crypto itself, not its ES-module facade (which also loads Web Crypto). */
export function nodeCrypto(): NodeCrypto {
  native ??= process.getBuiltinModule('node:crypto');
  return native;
}

function hex(bytes: Uint8Array): string {
  let out = '';
  for (const b of bytes) out += b.toString(16).padStart(2, '0');
  return out;
}

/** Hex sha256 of bytes or UTF-8 text. */
export function sha256(data: Uint8Array | string): string {
  const size = typeof data === 'string' ? data.length * 3 : data.byteLength;
  if (native || size >= NATIVE_FROM_BYTES)
    return nodeCrypto().createHash('sha256').update(data).digest('hex');
  const hash = new Sha256();
  hash.update(data);
  return hex(hash.digestSync());
}

/** An incremental hex sha256 for a body of about `size` bytes, native or JS as for `sha256`. */
export function sha256Hasher(size: number): { update(bytes: Uint8Array): void; digest(): string } {
  if (native || size >= NATIVE_FROM_BYTES) {
    const hash = nodeCrypto().createHash('sha256');
    return { update: (bytes) => hash.update(bytes), digest: () => hash.digest('hex') };
  }
  const hash = new Sha256();
  return { update: (bytes) => hash.update(bytes), digest: () => hex(hash.digestSync()) };
}

/** A random v4 UUID (ids of claims and history events). */
export function randomId(): string {
  return nodeCrypto().randomUUID();
}
