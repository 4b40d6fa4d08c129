/**
 * Whether several versions of a model fit in one function's memory at once (the live version with
 * a canary and/or a shadow): a conservative rule, used by the registry to refuse a canary or shadow
 * that would not fit, and by the inference function before it loads a second version.
 *
 * Rule: need = BASE_MIB + WEIGHT_MULTIPLIER × (sum of the versions' file bytes), in MiB, rounded up;
 * it fits when need ≤ the function's memory.
 * - BASE_MIB covers what does not grow with the model: Node, the bundle, the tfjs runtime and its
 *   wasm heap's reserve, the SDK and HTTP buffers (a deployed function's RSS before any model is
 *   well under it).
 * - Each version's bytes count three times: its weights held as tensors (in the wasm heap or as
 *   the fast path's float32 copies), the buffers they were fetched into while the load runs, and
 *   working space for activations and a batch's input/output copies. A single model's measured
 *   peak RSS (README, "memory over 10,000 predictions" and model load) stays below this.
 * The headroom is in the rule itself: a version set that exactly meets it still leaves the
 * multiplier's slack, so no separate margin is added.
 */

export const MEMORY_RULE = {
  /** The runtime, before any model. */
  baseMiB: 192,
  /** Memory per byte of a version's files while it is served. */
  weightMultiplier: 3,
} as const;

const MIB = 2 ** 20;

export interface MemoryFit {
  readonly fits: boolean;
  /** Memory the versions need together by the rule, in MiB (rounded up). */
  readonly needMiB: number;
}

/**
 * Whether versions of `versionBytes` bytes each (their files' total sizes) fit together in a
 * function of `memoryMiB`. Throws a RangeError for a size or memory that is not a usable number.
 */
export function fitsInMemory(versionBytes: readonly number[], memoryMiB: number): MemoryFit {
  if (!Number.isFinite(memoryMiB) || memoryMiB <= 0)
    throw new RangeError(`memory must be a positive number of MiB, got ${memoryMiB}`);
  let total = 0;
  for (const [index, bytes] of versionBytes.entries()) {
    if (!Number.isFinite(bytes) || bytes < 0)
      throw new RangeError(`version size #${index + 1} must be a number of bytes (0 or more), got ${bytes}`);
    total += bytes;
  }
  const needMiB = Math.ceil(MEMORY_RULE.baseMiB + (MEMORY_RULE.weightMultiplier * total) / MIB);
  return { fits: needMiB <= memoryMiB, needMiB };
}

/** A version's size for the rule: its files' bytes together (a size that is not a number counts 0). */
export function filesBytes(files: Readonly<Record<string, { readonly size: number }>>): number {
  let total = 0;
  for (const file of Object.values(files))
    if (Number.isFinite(file.size) && file.size > 0) total += file.size;
  return total;
}

/** A size in bytes for messages: "52.5 MB" style (MiB, one decimal). */
export function formatMiB(bytes: number): string {
  return `${(bytes / MIB).toFixed(1)} MiB`;
}
