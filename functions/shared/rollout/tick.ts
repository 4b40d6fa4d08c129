/**
 * One look at a model's rollout (what the rollout function does each time its schedule fires, and
 * `npm start` on a timer): read the alias pointer; with no canary, do nothing; else read the live
 * and canary figures since the canary's step began, decide (decide.ts), and make the move: step
 * the weight, promote or abort, a 'rollout' event in the alias history whose `details` hold the
 * numbers that decided it.
 *
 * Race-safe: the move is a compare-and-swap on the move the pointer named when it was read
 * (`expectedEventId`), so a person changing the canary meanwhile wins and this tick only reports
 * the conflict; the next tick decides again on what is there. It writes nothing but that alias's
 * history slot and pointer.
 */

import { ConflictError } from '../errors.js';
import type { RolloutPlan } from '../manifest.js';
import type { ModelRegistry } from '../registry/registry.js';
import type { RouteChange } from '../registry/routes.js';
import type { AliasEvent, AliasPointer } from '../registry/types.js';
import type { RoutedVersion } from './cloudwatch.js';
import { decideRollout, type RolloutDecision } from './decide.js';
import type { FiguresSource, VersionFigures } from './figures.js';

/** Who the rollout's moves are recorded as. */
export const ROLLOUT_ACTOR = 'aiaas-rollout';

export interface RolloutTickOptions {
  readonly registry: ModelRegistry;
  readonly model: string;
  readonly alias: string;
  readonly plan: RolloutPlan;
  readonly figures: FiguresSource;
  /** @default () => new Date() */
  readonly now?: () => Date;
  /** @default ROLLOUT_ACTOR */
  readonly who?: string;
}

export type RolloutTick =
  | { readonly action: 'idle'; readonly model: string; readonly alias: string; readonly reason: string }
  | {
      readonly action: RolloutDecision['action'] | 'conflict';
      readonly model: string;
      readonly alias: string;
      readonly reason: string;
      readonly details: Readonly<Record<string, unknown>>;
      /** The move made ('step', 'promote', 'abort'). */
      readonly event?: AliasEvent;
    };

/** The versions a pointer routes to, for a FiguresSource that must be told (CloudWatch). */
export function routedVersions(pointer: AliasPointer | undefined): RoutedVersion[] {
  if (!pointer) return [];
  return [
    { version: pointer.version, role: 'live' as const },
    ...(pointer.canary ? [{ version: pointer.canary.version, role: 'canary' as const }] : []),
    ...(pointer.shadow ? [{ version: pointer.shadow.version, role: 'shadow' as const }] : []),
  ];
}

/** Looks at the rollout once and makes the move it decides (see the module comment). */
export async function rolloutTick(options: RolloutTickOptions): Promise<RolloutTick> {
  const { registry, model, alias, plan } = options;
  const now = (options.now ?? (() => new Date()))();
  const read = await registry.readPointer(model, alias);
  if (read.state !== 'ok') {
    const reason =
      read.state === 'absent' ? 'the alias is not set' : `the alias pointer is damaged: ${read.reason}`;
    return { action: 'idle', model, alias, reason };
  }
  const pointer = read.pointer;
  const canary = pointer.canary;
  if (!canary) return { action: 'idle', model, alias, reason: `no canary beside v${pointer.version}` };

  const since = new Date(canary.since);
  const figures = now > since ? await options.figures.figures(model, since, now) : [];
  const pick = (version: number, role: VersionFigures['role']) =>
    figures.find((f) => f.version === version && f.role === role);
  const decision = decideRollout({
    plan,
    canary,
    live: pick(pointer.version, 'live'),
    canaryFigures: pick(canary.version, 'canary'),
    now,
  });
  const said = { model, alias, reason: decision.reason, details: decision.details };
  if (decision.action === 'wait') return { action: 'wait', ...said };

  const change: RouteChange =
    decision.action === 'step'
      ? { op: 'canary-weight', weight: decision.weight! }
      : decision.action === 'promote'
        ? { op: 'promote-canary' }
        : { op: 'abort-canary' };
  try {
    const event = await registry.changeRoutes(model, alias, change, {
      kind: 'rollout',
      who: options.who ?? ROLLOUT_ACTOR,
      why: decision.reason,
      details: { decision: decision.action, ...decision.details },
      expectedEventId: pointer.eventId,
    });
    return { action: decision.action, ...said, event };
  } catch (error) {
    if (!(error instanceof ConflictError)) throw error;
    return {
      action: 'conflict',
      ...said,
      reason: `${decision.reason}; not made: ${error.message} (the next look decides again)`,
    };
  }
}
