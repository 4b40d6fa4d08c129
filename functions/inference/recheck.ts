/**
 * When one inference function reads its registry. Its serving state is `cold` (nothing loaded yet),
 * `failed` (the last load failed and nothing is loaded) or `serving` (a version is in memory), and
 * `nextStep` decides, for each request, from that state alone: answer from memory, answer and start
 * an alias re-check beside the request, load (and wait: there is nothing else to answer with), or
 * fail fast with the last failure. A warm function's requests never wait for the registry. One
 * registry read is in flight at a time; after a failed re-check the next one waits longer,
 * doubling from the interval up to a cap, and a successful one brings it back to the interval.
 */

export type ServingState<Served, Failure> =
  | { readonly kind: 'cold' }
  | { readonly kind: 'failed'; readonly failure: Failure; readonly at: number }
  | {
      readonly kind: 'serving';
      readonly served: Served;
      /** When the last re-check (or the load) ended, well or not. */
      readonly checkedAt: number;
      /** Re-checks that failed in a row since the last one that reached the registry. */
      readonly failures: number;
    };

export interface RecheckPolicy {
  /** Re-read the alias this long after the last check, while checks succeed. */
  readonly intervalMs: number;
  /** The longest wait between re-checks while they fail (never below the interval). */
  readonly maxBackoffMs: number;
  /** After a failed load with nothing loaded, answer that failure for this long before trying again. */
  readonly retryAfterMs: number;
}

/** What a request does: see the module comment. */
export type Step = 'answer' | 'answer-and-check' | 'load' | 'fail';

/** Long enough that a registry down for hours is asked a few times an hour, short enough to see a promote soon after it returns. */
export const MAX_BACKOFF_CEILING_MS = 5 * 60_000;

/** The default cap: eight intervals, but no more than five minutes unless the interval itself is longer. */
export function defaultMaxBackoffMs(intervalMs: number): number {
  return Math.max(intervalMs, Math.min(8 * intervalMs, MAX_BACKOFF_CEILING_MS));
}

/** How long after the last check the next one is due, given the failures in a row before it. */
export function recheckDelayMs(failures: number, policy: RecheckPolicy): number {
  if (!(failures > 0)) return policy.intervalMs;
  const cap = Math.max(policy.intervalMs, policy.maxBackoffMs);
  // The exponent is clamped: a long outage's count must keep the product finite.
  return Math.min(policy.intervalMs * 2 ** Math.min(failures, 40), cap);
}

/**
 * The step for a request arriving at `now`, with `reading` telling whether a registry read (a
 * re-check or a load) is in flight. Pure: the service applies it.
 */
export function nextStep<S, F>(
  state: ServingState<S, F>,
  reading: boolean,
  now: number,
  policy: RecheckPolicy,
): Step {
  switch (state.kind) {
    case 'serving':
      return !reading && now - state.checkedAt >= recheckDelayMs(state.failures, policy)
        ? 'answer-and-check'
        : 'answer';
    case 'failed':
      // A load already in flight is joined: it may succeed, and it is bounded by the S3 timeouts.
      return reading || now - state.at >= policy.retryAfterMs ? 'load' : 'fail';
    case 'cold':
      return 'load';
  }
}
