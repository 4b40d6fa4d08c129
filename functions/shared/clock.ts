/**
 * Milliseconds on a monotonic clock. `performance.now()` would do, but the first use of the
 * `performance` global loads perf_hooks, which a cold start does not otherwise need
 * (docs/benchmarks.md, "Round 2").
 */
export const monotonicMs = (): number => Number(process.hrtime.bigint()) / 1e6;
