/**
 * Moving the alias to a retrained version: only when the gate passed (or the run says always),
 * and compare-and-swap against the version the gate compared with, so a run that lost a race
 * publishes its version but leaves the alias to the winner and says so.
 *
 * With the gate's `onPass: 'rollout'`, a passing version is not promoted: it becomes the alias's
 * canary at the rollout plan's first step (a 'retrain' event that leaves the served version), and
 * the rollout function takes it from there. With no live version yet there is nothing to compare
 * a canary with, so it is promoted directly; `always` promotes directly too (it skips the gate).
 */
import { ConflictError, ValidationError } from '../errors.js';
import type { ModelRegistry } from '../registry/registry.js';
import type { BaselineScore } from './baseline.js';
import type { GateDecision } from './gate.js';

/** What was decided about the alias, and why. */
export interface PromotionDecision {
  readonly alias: string;
  readonly mode: 'gate' | 'always' | 'never';
  readonly gate: GateDecision;
  readonly promoted: boolean;
  readonly reason: string;
  /** The alias's version before the run (null: unset). */
  readonly from: number | null;
  /** The alias's version after the run. */
  readonly to: number | null;
  /** True when another writer moved the alias while this run trained. */
  readonly conflict?: boolean;
  /** Set when the version became the canary (gate `onPass: 'rollout'`) instead of being promoted. */
  readonly canary?: { readonly version: number; readonly weight: number };
}

export interface PromotionRequest {
  readonly registry: ModelRegistry;
  readonly model: string;
  readonly alias: string;
  readonly mode: 'gate' | 'always' | 'never';
  /** The published version. */
  readonly version: number;
  /** The alias's version the gate compared with (null: unset). */
  readonly from: number | null;
  readonly gate: GateDecision;
  readonly who: string;
  readonly metrics: Readonly<Record<string, number>>;
  readonly baseline: BaselineScore | undefined;
  readonly dataFingerprint: string;
  readonly reportKey: string;
  /**
   * Start a rollout instead of promoting (the gate's `onPass: 'rollout'`): the canary's first
   * weight, and the function's memory the canary must fit in beside the live version.
   */
  readonly rollout?: { readonly weight: number; readonly memoryMiB: number };
}

const round = (n: number) => Math.round(n * 1e4) / 1e4;

/** Decides and, when it should, moves the alias; a lost race is a decision, not an error. */
export async function promoteVersion(request: PromotionRequest): Promise<PromotionDecision> {
  const { registry, model, alias, mode: promote, version, from, gate, who, metrics, baseline } = request;
  const move = promote === 'always' || (promote === 'gate' && gate.pass);
  if (!move) {
    const reason = promote === 'never' ? 'promotion disabled for this run' : `gate refused: ${gate.reason}`;
    return { alias, mode: promote, gate, promoted: false, reason, from, to: from };
  }
  const rollout = promote === 'gate' && from !== null ? request.rollout : undefined;
  const why =
    promote === 'always'
      ? `retrained v${version}, promoted without gate (${gate.reason})`
      : rollout
        ? `retrained v${version}: ${gate.reason}; rollout started: canary at ${rollout.weight} %`
        : `retrained v${version}: ${gate.reason}`;
  const details = {
    gate: {
      metric: gate.thresholds.metric,
      candidate: round(gate.candidate),
      baseline: gate.baseline === null ? null : round(gate.baseline),
      delta: gate.delta === null ? null : round(gate.delta),
      improvement: gate.improvement === null ? null : round(gate.improvement),
      pass: gate.pass,
      thresholds: gate.thresholds,
    },
    mode: promote,
    metrics,
    baseline: baseline ?? null,
    dataFingerprint: request.dataFingerprint,
    report: request.reportKey,
    ...(rollout ? { onPass: 'rollout', rollout } : {}),
  };
  try {
    if (rollout) {
      await registry.changeRoutes(
        model,
        alias,
        { op: 'set-canary', version, weight: rollout.weight },
        { who, why, kind: 'retrain', expectedVersion: from, details, memoryMiB: rollout.memoryMiB },
      );
      const canary = { version, weight: rollout.weight };
      return { alias, mode: promote, gate, promoted: false, reason: why, from, to: from, canary };
    }
    await registry.setAlias(model, alias, version, {
      who,
      why,
      kind: 'retrain',
      expectedVersion: from,
      details,
    });
    return { alias, mode: promote, gate, promoted: true, reason: why, from, to: version };
  } catch (error) {
    if (error instanceof ValidationError && rollout) {
      // The canary does not fit beside the live version (memory): published, the alias left alone.
      return {
        alias,
        mode: promote,
        gate,
        promoted: false,
        reason: `gate passed, but ${error.message}`,
        from,
        to: from,
      };
    }
    if (!(error instanceof ConflictError)) throw error;
    // Only to say where the alias went meanwhile; the refused move is reported either way.
    const now = await registry.getAlias(model, alias).catch(() => undefined);
    const reason =
      `${model}@${alias} moved from v${from ?? 'none'} to v${now?.version ?? '?'} while this run trained; ` +
      `v${version} is published but not promoted (compare it and promote it by hand if wanted)`;
    return {
      alias,
      mode: promote,
      gate,
      promoted: false,
      reason,
      from,
      to: now?.version ?? null,
      conflict: true,
    };
  }
}
