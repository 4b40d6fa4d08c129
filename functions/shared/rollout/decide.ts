/**
 * The rollout decision, pure: given a model's rollout plan (manifest.ts), its running canary
 * (weight, and `since`: when this step began), the figures of the live and canary versions since
 * then, and the time, decide to wait, step the weight up, promote the canary, or abort it. Every
 * decision carries its reason in words and the numbers behind it (recorded in the alias history).
 *
 * The rule, in order:
 * 1. Abort early on clear evidence: the canary failed at least CLEAR_ERRORS requests, and its
 *    error rate would exceed the live one's by more than `maxErrorRateIncrease` even if every
 *    remaining request of the step's `minRequests` succeeded (errors / max(requests, minRequests)).
 * 2. Wait until the step has lasted `stepMinutes`, and until the canary answered `minRequests`
 *    requests in it: too few requests never promote.
 * 3. Abort when the canary's error rate exceeds the live one's by more than `maxErrorRateIncrease`,
 *    or its p99 latency exceeds `maxP99Ratio` × the live one's (judged only when both have a p99).
 * 4. Otherwise step to the plan's next weight above the current one; when that is 100 (or there
 *    is none), promote: serving the canary to every request is what promoting it does.
 * Errors are client and server errors together: both versions see the same kind of traffic, so a
 * canary that refuses requests the live version answers is as wrong as one that fails them.
 */

import type { RolloutPlan } from '../manifest.js';
import type { VersionFigures } from './figures.js';

// Rates and ratios are quotients: a canary exactly at a limit must not fail on the last bit.
const EPSILON = 1e-9;

/** Failed canary requests that are enough evidence to abort before the step's minimum. */
export const CLEAR_ERRORS = 5;

export type RolloutAction = 'wait' | 'step' | 'promote' | 'abort';

export interface RolloutDecision {
  readonly action: RolloutAction;
  /** The new weight, for 'step'. */
  readonly weight?: number;
  readonly reason: string;
  /** The numbers behind it, as recorded in the alias history's `details`. */
  readonly details: Readonly<Record<string, unknown>>;
}

export interface DecideInput {
  readonly plan: Pick<
    RolloutPlan,
    'steps' | 'stepMinutes' | 'minRequests' | 'maxErrorRateIncrease' | 'maxP99Ratio'
  >;
  readonly canary: { readonly version: number; readonly weight: number; readonly since: string };
  /** The live version's figures since the step began (undefined: none counted). */
  readonly live: VersionFigures | undefined;
  /** The canary's figures since the step began (undefined: none counted). */
  readonly canaryFigures: VersionFigures | undefined;
  readonly now: Date;
}

interface Tally {
  readonly requests: number;
  readonly errors: number;
  readonly errorRate: number;
  readonly p50Ms: number | null;
  readonly p99Ms: number | null;
}

const round = (n: number) => Math.round(n * 1e4) / 1e4;
const pct = (rate: number) => `${(rate * 100).toFixed(1)} %`;
const count = (n: unknown) => (typeof n === 'number' && Number.isFinite(n) && n > 0 ? n : 0);
const ms = (n: unknown) => (typeof n === 'number' && Number.isFinite(n) && n >= 0 ? n : null);

/** Figures read from a source (untrusted): counts made sane, errors never more than requests. */
function tally(figures: VersionFigures | undefined): Tally {
  const errors = count(figures?.clientErrors) + count(figures?.serverErrors);
  const requests = Math.max(count(figures?.requests), errors);
  return {
    requests,
    errors,
    errorRate: requests > 0 ? errors / requests : 0,
    p50Ms: ms(figures?.p50Ms),
    p99Ms: ms(figures?.p99Ms),
  };
}

/** Decides one rollout tick (see the module comment for the rule). */
export function decideRollout(input: DecideInput): RolloutDecision {
  const { plan, canary, now } = input;
  const live = tally(input.live);
  const can = tally(input.canaryFigures);
  const since = Date.parse(canary.since);
  const elapsedMinutes = Number.isFinite(since) ? (now.getTime() - since) / 60_000 : 0;
  const next = plan.steps.find((step) => step > canary.weight);
  const details: Record<string, unknown> = {
    step: canary.weight,
    window: { since: canary.since, until: now.toISOString(), minutes: round(elapsedMinutes) },
    canary: { version: canary.version, ...roundTally(can) },
    live: { version: input.live?.version ?? null, ...roundTally(live) },
    limits: {
      steps: plan.steps,
      stepMinutes: plan.stepMinutes,
      minRequests: plan.minRequests,
      maxErrorRateIncrease: plan.maxErrorRateIncrease,
      maxP99Ratio: plan.maxP99Ratio,
    },
  };
  const v = `canary v${canary.version}`;
  const errorsSaid = `${can.errors} of ${can.requests} requests failed (${pct(can.errorRate)}) against live's ${pct(live.errorRate)}`;

  // 1. Clear evidence: over the limit whatever the rest of the step's minimum does.
  const floorRate = can.errors / Math.max(can.requests, plan.minRequests);
  if (can.errors >= CLEAR_ERRORS && floorRate - live.errorRate > plan.maxErrorRateIncrease + EPSILON) {
    return {
      action: 'abort',
      reason:
        `${v} aborted at ${canary.weight} %: ${errorsSaid}; even if the rest of the step's ${plan.minRequests} ` +
        `requests succeeded, its error rate would exceed live's by more than ${pct(plan.maxErrorRateIncrease)}`,
      details: { ...details, errorRateIncrease: round(can.errorRate - live.errorRate) },
    };
  }
  // 2. Not enough time or evidence yet.
  if (elapsedMinutes < plan.stepMinutes) {
    return {
      action: 'wait',
      reason: `${v} at ${canary.weight} % for ${elapsedMinutes.toFixed(1)} of ${plan.stepMinutes} minutes`,
      details,
    };
  }
  if (can.requests < plan.minRequests) {
    return {
      action: 'wait',
      reason: `${v} at ${canary.weight} %: too few requests to judge (${can.requests} of ${plan.minRequests})`,
      details,
    };
  }
  // 3. The limits, on the full step.
  const increase = can.errorRate - live.errorRate;
  if (increase > plan.maxErrorRateIncrease + EPSILON) {
    return {
      action: 'abort',
      reason: `${v} aborted at ${canary.weight} %: ${errorsSaid}, more than ${pct(plan.maxErrorRateIncrease)} above`,
      details: { ...details, errorRateIncrease: round(increase) },
    };
  }
  const ratio = can.p99Ms !== null && live.p99Ms !== null && live.p99Ms > 0 ? can.p99Ms / live.p99Ms : null;
  const judged = {
    ...details,
    errorRateIncrease: round(increase),
    p99Ratio: ratio === null ? null : round(ratio),
  };
  if (ratio !== null && ratio > plan.maxP99Ratio + EPSILON) {
    return {
      action: 'abort',
      reason:
        `${v} aborted at ${canary.weight} %: p99 ${can.p99Ms!.toFixed(1)} ms against live's ` +
        `${live.p99Ms!.toFixed(1)} ms (${ratio.toFixed(2)}×, limit ${plan.maxP99Ratio}×)`,
      details: judged,
    };
  }
  // 4. Passed: the next step, or promotion.
  const passed =
    `${can.requests} requests, ${pct(can.errorRate)} errors against live's ${pct(live.errorRate)}` +
    (ratio === null ? ', p99 not compared (no live p99)' : `, p99 ${ratio.toFixed(2)}× live's`);
  if (next === undefined || next >= 100) {
    return {
      action: 'promote',
      reason: `${v} promoted after its ${canary.weight} % step: ${passed}`,
      details: judged,
    };
  }
  return {
    action: 'step',
    weight: next,
    reason: `${v} stepped ${canary.weight} → ${next} %: ${passed}`,
    details: { ...judged, next },
  };
}

function roundTally(t: Tally) {
  return {
    requests: t.requests,
    errors: t.errors,
    errorRate: round(t.errorRate),
    p50Ms: t.p50Ms === null ? null : round(t.p50Ms),
    p99Ms: t.p99Ms === null ? null : round(t.p99Ms),
  };
}
