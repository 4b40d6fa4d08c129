/**
 * The rollout decision (functions/shared/rollout/decide.ts): a table of situations and what the
 * rollout function must do in each, with the numbers it records.
 */
import { describe, expect, it } from 'vitest';
import { CLEAR_ERRORS, decideRollout } from '../../functions/shared/rollout/decide.js';
import type { VersionFigures } from '../../functions/shared/rollout/figures.js';

const plan = {
  steps: [10, 50, 100],
  stepMinutes: 10,
  minRequests: 100,
  maxErrorRateIncrease: 0.01,
  maxP99Ratio: 1.5,
};
const since = '2026-01-01T00:00:00.000Z';
const at = (minutes: number) => new Date(Date.parse(since) + minutes * 60_000);

function figures(
  version: number,
  role: 'live' | 'canary',
  requests: number,
  errors = 0,
  p99Ms?: number,
): VersionFigures {
  return {
    version,
    role,
    requests,
    clientErrors: 0,
    serverErrors: errors,
    ...(p99Ms ? { p50Ms: p99Ms / 2, p99Ms } : {}),
  };
}

interface Case {
  readonly name: string;
  readonly weight: number;
  readonly minutes: number;
  readonly live?: VersionFigures;
  readonly canary?: VersionFigures;
  readonly action: 'wait' | 'step' | 'promote' | 'abort';
  readonly weightAfter?: number;
  readonly reason: RegExp;
}

const CASES: Case[] = [
  {
    name: 'a young step waits, even with plenty of healthy requests',
    weight: 10,
    minutes: 3,
    live: figures(1, 'live', 900, 0, 10),
    canary: figures(2, 'canary', 300, 0, 10),
    action: 'wait',
    reason: /3\.0 of 10 minutes/,
  },
  {
    name: 'too few requests wait, never promote, however long the step ran',
    weight: 50,
    minutes: 600,
    live: figures(1, 'live', 99, 0, 10),
    canary: figures(2, 'canary', 99, 0, 10),
    action: 'wait',
    reason: /too few requests to judge \(99 of 100\)/,
  },
  {
    name: 'no figures at all wait',
    weight: 10,
    minutes: 60,
    action: 'wait',
    reason: /0 of 100/,
  },
  {
    name: 'a healthy step passes to the next weight',
    weight: 10,
    minutes: 10,
    live: figures(1, 'live', 900, 1, 10),
    canary: figures(2, 'canary', 100, 0, 12),
    action: 'step',
    weightAfter: 50,
    reason: /stepped 10 → 50 %/,
  },
  {
    name: 'a healthy step before 100 promotes',
    weight: 50,
    minutes: 11,
    live: figures(1, 'live', 500, 0, 10),
    canary: figures(2, 'canary', 500, 0, 10),
    action: 'promote',
    reason: /promoted after its 50 % step/,
  },
  {
    name: 'a weight set by hand between steps goes to the next step above it',
    weight: 30,
    minutes: 10,
    live: figures(1, 'live', 700, 0, 10),
    canary: figures(2, 'canary', 300, 0, 10),
    action: 'step',
    weightAfter: 50,
    reason: /30 → 50/,
  },
  {
    name: 'a canary already at 100 % promotes once its step passes',
    weight: 100,
    minutes: 10,
    canary: figures(2, 'canary', 300, 0, 10),
    action: 'promote',
    reason: /p99 not compared/,
  },
  {
    name: 'clear evidence aborts before the step is old or big enough',
    weight: 10,
    minutes: 1,
    live: figures(1, 'live', 400, 0, 10),
    canary: figures(2, 'canary', 20, 10, 10),
    action: 'abort',
    reason: /10 of 20 requests failed \(50\.0 %\).*even if the rest/,
  },
  {
    name: `fewer than ${CLEAR_ERRORS} errors are no clear evidence: wait`,
    weight: 10,
    minutes: 1,
    live: figures(1, 'live', 400, 0, 10),
    canary: figures(2, 'canary', 4, CLEAR_ERRORS - 1, 10),
    action: 'wait',
    reason: /for 1\.0 of 10 minutes/,
  },
  {
    name: 'errors that the rest of the minimum could still dilute below the limit wait',
    weight: 10,
    minutes: 1,
    live: figures(1, 'live', 100, 4, 10), // 4 %
    canary: figures(2, 'canary', 40, 5, 10), // 12.5 % so far, but 5 of the 100 would be 5 %: +1 point
    action: 'wait',
    reason: /for 1\.0 of 10 minutes/,
  },
  {
    name: 'an error rate over live by more than the limit on a full step aborts',
    weight: 50,
    minutes: 10,
    live: figures(1, 'live', 1000, 10, 10), // 1 %
    canary: figures(2, 'canary', 1000, 25, 10), // 2.5 %
    action: 'abort',
    reason: /25 of 1000 requests failed \(2\.5 %\) against live's 1\.0 %/,
  },
  {
    name: 'an error rate within the limit of live passes',
    weight: 10,
    minutes: 10,
    live: figures(1, 'live', 1000, 10, 10), // 1 %
    canary: figures(2, 'canary', 1000, 19, 10), // 1.9 %
    action: 'step',
    weightAfter: 50,
    reason: /1\.9 % errors/,
  },
  {
    name: 'a p99 over the ratio aborts',
    weight: 10,
    minutes: 10,
    live: figures(1, 'live', 1000, 0, 10),
    canary: figures(2, 'canary', 200, 0, 16),
    action: 'abort',
    reason: /p99 16\.0 ms against live's 10\.0 ms \(1\.60×, limit 1\.5×\)/,
  },
  {
    name: 'a p99 within the ratio passes',
    weight: 10,
    minutes: 10,
    live: figures(1, 'live', 1000, 0, 10),
    canary: figures(2, 'canary', 200, 0, 15),
    action: 'step',
    weightAfter: 50,
    reason: /p99 1\.50× live's/,
  },
];

describe('the rollout decision', () => {
  for (const c of CASES) {
    it(c.name, () => {
      const decision = decideRollout({
        plan,
        canary: { version: 2, weight: c.weight, since },
        live: c.live,
        canaryFigures: c.canary,
        now: at(c.minutes),
      });
      expect(decision.action).toBe(c.action);
      expect(decision.reason).toMatch(c.reason);
      if (c.weightAfter !== undefined) expect(decision.weight).toBe(c.weightAfter);
    });
  }

  it('records the numbers that decided it', () => {
    const decision = decideRollout({
      plan,
      canary: { version: 2, weight: 50, since },
      live: figures(1, 'live', 1000, 10, 10),
      canaryFigures: figures(2, 'canary', 1000, 25, 12),
      now: at(10),
    });
    expect(decision.details).toMatchObject({
      step: 50,
      canary: { version: 2, requests: 1000, errors: 25, errorRate: 0.025, p99Ms: 12 },
      live: { version: 1, requests: 1000, errors: 10, errorRate: 0.01, p99Ms: 10 },
      limits: plan,
      errorRateIncrease: 0.015,
      window: { since, minutes: 10 },
    });
  });

  it('treats figures that make no sense (negative, NaN, more errors than requests) as what they can at most mean', () => {
    const decision = decideRollout({
      plan,
      canary: { version: 2, weight: 10, since },
      live: { version: 1, role: 'live', requests: -5, clientErrors: Number.NaN, serverErrors: 0 },
      canaryFigures: { version: 2, role: 'canary', requests: 0, clientErrors: 0, serverErrors: 50 },
      now: at(1),
    });
    // 50 errors with "0 requests" are 50 failed requests: clear evidence.
    expect(decision.action).toBe('abort');
    expect(decision.details).toMatchObject({ canary: { requests: 50, errors: 50 }, live: { requests: 0 } });
  });
});
