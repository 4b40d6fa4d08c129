/**
 * When one inference function reads its registry. Its serving state is `cold` (nothing loaded yet),
 * `failed` (the last load failed and nothing is loaded) or `serving` (a version is in memory), and
 * `nextStep` decides, for each request, from that state alone: answer from memory; answer after a
 * short wait for an alias re-check it starts; re-check and wait for it in full; load (and wait:
 * there is nothing else to answer with); or fail fast with the last failure. One registry read is
 * in flight at a time, and requests that do not start one never wait. After a failed re-check the
 * next one waits longer, doubling from the interval up to a cap; a successful one brings it back to
 * the interval. `afterCheck` decides the state a re-check leaves, and `aliasChange` what a
 * re-check does with the alias it read. All pure: the service (service.ts) applies them.
 *
 * Why the request that starts a re-check waits for it at all: Lambda freezes the environment as
 * soon as the handler returns, so a re-check left running only progresses while some invocation
 * runs, and its S3 timeouts expire during a freeze. A re-check that failed far later than its own
 * time limit was frozen, not failed by the registry: it does not count (no back-off), and the next
 * request re-checks and waits for it in full, so a promotion is still picked up under sparse traffic.
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
      /** The last re-check was frozen mid-flight (see the module comment): the next request re-checks. */
      readonly interrupted?: boolean;
    };

export interface RecheckPolicy {
  /** Re-read the alias this long after the last check, while checks succeed. */
  readonly intervalMs: number;
  /** The longest wait between re-checks while they fail (never below the interval). */
  readonly maxBackoffMs: number;
  /** After a failed load with nothing loaded, answer that failure for this long before trying again. */
  readonly retryAfterMs: number;
  /**
   * The longest a failing re-check can take while the process runs (the S3 client's timeouts ×
   * attempts). @default none: every failed re-check counts as a failure
   */
  readonly limitMs?: number;
}

/**
 * What a request does: see the module comment. `answer-and-check` waits for the re-check it starts
 * for a short budget; `check-then-answer` waits for it in full.
 */
export type Step = 'answer' | 'answer-and-check' | 'check-then-answer' | 'load' | 'fail';

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
      if (reading) return 'answer';
      if (state.interrupted) return 'check-then-answer';
      return now - state.checkedAt >= recheckDelayMs(state.failures, policy) ? 'answer-and-check' : 'answer';
    case 'failed':
      // A load already in flight is joined: it may succeed, and it is bounded by the S3 timeouts.
      return reading || now - state.at >= policy.retryAfterMs ? 'load' : 'fail';
    case 'cold':
      return 'load';
  }
}

/** How a re-check ended, as the service saw it. */
export interface CheckEnd<Served> {
  /** What serves after it: the version held before, or the one it swapped to. */
  readonly served: Served;
  /** The registry could not be read (a timeout, a refused connection, a 5xx). */
  readonly failed: boolean;
  readonly startedAt: number;
  readonly endedAt: number;
  /** A request waited for the whole re-check, so the process ran throughout: a failure is the registry's. */
  readonly waited: boolean;
  /**
   * The longest stretch of the re-check with no request arriving. A frozen function gets no
   * requests, so a re-check that requests kept arriving during was running, however long it took.
   * @default the re-check's whole duration
   */
  readonly quietMs?: number;
}

/**
 * Whether a failed re-check was frozen rather than failed by the registry: it went without any
 * request for longer than it possibly can take while the process runs, and no request held the
 * process running for it. (A slow load failing while requests arrive is the registry's failure.)
 */
export function wasInterrupted(end: CheckEnd<unknown>, policy: RecheckPolicy): boolean {
  const quiet = end.quietMs ?? end.endedAt - end.startedAt;
  return end.failed && !end.waited && policy.limitMs !== undefined && quiet > policy.limitMs;
}

/**
 * The state a re-check leaves, from the failures in a row before it. A success resets the count; a
 * failure adds one (the next re-check waits longer); an interrupted one keeps the count and asks
 * the next request to re-check.
 */
export function afterCheck<S>(
  failuresBefore: number,
  end: CheckEnd<S>,
  policy: RecheckPolicy,
): Extract<ServingState<S, never>, { kind: 'serving' }> {
  const base = { kind: 'serving', served: end.served, checkedAt: end.endedAt } as const;
  if (!end.failed) return { ...base, failures: 0 };
  if (wasInterrupted(end, policy)) return { ...base, failures: failuresBefore, interrupted: true };
  return { ...base, failures: failuresBefore + 1 };
}

/**
 * What a re-check does with the alias pointer it read: nothing when it is unchanged, or names the
 * version already served (its etag is then updated) or a version rejected before (versions are
 * immutable: not read again); keeps serving and says so when the alias is gone; loads a newly
 * promoted version otherwise (unless it holds it already, as the canary or shadow). A retagged
 * pointer may carry another canary or shadow: the service re-reads those (service.ts: withRoutes).
 */
export type AliasChange = 'unchanged' | 'retagged' | 'rejected-before' | 'gone' | 'promoted';

/** The change a re-check's read shows (`read`: the pointer, undefined when the alias is gone). Pure. */
export function aliasChange(
  read: { readonly version: number; readonly etag: string } | 'unchanged' | undefined,
  servedVersion: number,
  rejected: (etag: string) => boolean,
): AliasChange {
  if (read === 'unchanged') return 'unchanged';
  if (read === undefined) return 'gone';
  if (read.version === servedVersion) return 'retagged';
  return rejected(read.etag) ? 'rejected-before' : 'promoted';
}
