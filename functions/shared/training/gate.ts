import type { ModelDefinition } from '../manifest.js';

/** The manifest's promotion gate settings. */
export type GateSettings = ModelDefinition['gate'];

export interface GateThresholds {
  readonly metric: string;
  readonly minImprovement: number;
  readonly maxRegression: number;
  /** The smallest improvement that passes: minImprovement, or -maxRegression when that is lower and > 0. */
  readonly required: number;
  readonly lowerIsBetter: boolean;
}

/** A promotion decision and the numbers behind it, as recorded in the alias history. */
export interface GateDecision {
  readonly pass: boolean;
  readonly reason: string;
  /** The candidate's value of the gate metric (NaN when it lacks it). */
  readonly candidate: number;
  /** The baseline's value, or null when there is no baseline. */
  readonly baseline: number | null;
  /** candidate - baseline, raw (null without a baseline). */
  readonly delta: number | null;
  /** How much better the candidate is, whichever direction the metric improves in (null without a baseline). */
  readonly improvement: number | null;
  readonly thresholds: GateThresholds;
}

// Metrics are float32 averages; a tie must not fail on the last bit.
const EPSILON = 1e-9;

/** Whether smaller values of a metric are better (losses and errors). */
export function lowerIsBetter(metric: string): boolean {
  return /loss|error/i.test(metric);
}

const fmt = (n: number) => (Number.isFinite(n) ? n.toFixed(4) : String(n));
const signed = (n: number) => (n >= 0 ? `+${fmt(n)}` : fmt(n));

/**
 * Decides whether a candidate may replace the baseline. The candidate passes when it improves the
 * metric by at least `minImprovement`, or, when `maxRegression` (> 0) tolerates it, loses by at
 * most that much.
 * Metrics whose name contains 'loss' (or 'error') improve downwards. No baseline: pass. A
 * candidate without a finite value of the metric never passes. Pure: no I/O.
 */
export function evaluateGate(
  settings: GateSettings,
  candidate: Readonly<Record<string, number>>,
  baseline?: Readonly<Record<string, number>>,
): GateDecision {
  const { metric, minImprovement, maxRegression } = settings;
  const lower = lowerIsBetter(metric);
  // maxRegression 0 means no regression is tolerated, not "a tie is enough": minImprovement rules.
  const required = maxRegression > 0 ? Math.min(minImprovement, -maxRegression) : minImprovement;
  const thresholds: GateThresholds = {
    metric,
    minImprovement,
    maxRegression,
    required,
    lowerIsBetter: lower,
  };
  const value = candidate[metric];
  const base = (value: number, rest: Omit<GateDecision, 'candidate' | 'thresholds'>): GateDecision => ({
    candidate: value,
    thresholds,
    ...rest,
  });

  if (value === undefined || !Number.isFinite(value)) {
    return base(value ?? Number.NaN, {
      pass: false,
      reason: `the candidate has no finite ${metric} (it has ${Object.keys(candidate).join(', ') || 'no metrics'})`,
      baseline: baseline?.[metric] ?? null,
      delta: null,
      improvement: null,
    });
  }
  if (!baseline) {
    return base(value, {
      pass: true,
      reason: `no baseline to compare with; ${metric} ${fmt(value)}`,
      baseline: null,
      delta: null,
      improvement: null,
    });
  }
  const old = baseline[metric];
  if (old === undefined || !Number.isFinite(old)) {
    return base(value, {
      pass: true,
      reason: `the baseline has no finite ${metric}; candidate ${metric} ${fmt(value)}`,
      baseline: old ?? null,
      delta: null,
      improvement: null,
    });
  }
  const delta = value - old;
  const improvement = lower ? -delta : delta;
  const pass = improvement >= required - EPSILON;
  const direction = lower ? 'lower is better' : 'higher is better';
  const reason =
    `${metric} ${fmt(value)} vs ${fmt(old)} (${direction}): improvement ${signed(improvement)} ` +
    `${pass ? '≥' : '<'} required ${signed(required)}`;
  return base(value, { pass, reason, baseline: old, delta, improvement });
}
