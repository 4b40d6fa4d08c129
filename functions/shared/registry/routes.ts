/**
 * An alias's routes beside its served version: a canary (another version answering `weight`
 * percent of the requests) and a shadow (another version run on `sample` percent of them, its
 * answers only compared). Each history event carries the routes after it (AliasEvent.canary /
 * .shadow), so the history stays the truth and a pointer is written from its event alone.
 *
 * This module is pure: it checks routes read from untrusted objects (`canaryRoute`,
 * `shadowRoute`: undefined for anything not well formed) and computes what a change makes of the
 * routes of the move it is made on (`applyChange`), refusing a change that makes no sense there
 * with a message naming the alias, the versions and the problem. moves.ts records the result.
 *
 * Rules (README, "Rollouts"):
 * - a canary or shadow needs a served version, must differ from it and from each other;
 * - promoting the canary makes it the served version and ends the canary; the shadow goes on;
 * - a plain move (promote, rollback, retrain) ends both routes: it sets exactly what is served;
 * - `since` is when the route's version or weight/sample was last set (a rollout step starts then).
 */

import { ConflictError, ValidationError } from '../errors.js';
import type { AliasEvent } from './types.js';

export interface Canary {
  readonly version: number;
  readonly weight: number;
  readonly since: string;
}

export interface Shadow {
  readonly version: number;
  readonly sample: number;
  readonly since: string;
}

/** What the alias serves after a move: the version, and the routes beside it. */
export interface RouteState {
  readonly to: number;
  readonly canary?: Canary;
  readonly shadow?: Shadow;
}

/** A change of the routes, made on top of the alias's current move. */
export type RouteChange =
  | { readonly op: 'set-canary'; readonly version: number; readonly weight: number }
  | { readonly op: 'canary-weight'; readonly weight: number }
  | { readonly op: 'promote-canary' }
  | { readonly op: 'abort-canary' }
  | { readonly op: 'set-shadow'; readonly version: number; readonly sample: number }
  | { readonly op: 'stop-shadow' };

const isVersion = (value: unknown): value is number =>
  typeof value === 'number' && Number.isSafeInteger(value) && value >= 1;

/** A percentage: a finite number from 0 to 100. */
export const isPercent = (value: unknown): value is number =>
  typeof value === 'number' && Number.isFinite(value) && value >= 0 && value <= 100;

const isTime = (value: unknown): value is string =>
  typeof value === 'string' && value.length <= 64 && Number.isFinite(Date.parse(value));

/**
 * A canary read from a stored object (a pointer or a history event), or undefined when it is not
 * well formed: version a positive integer other than `served`, weight 0-100, `since` a time.
 */
export function canaryRoute(value: unknown, served: number): Canary | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const { version, weight, since } = value as Record<string, unknown>;
  if (!isVersion(version) || version === served || !isPercent(weight) || !isTime(since)) return undefined;
  return { version, weight, since };
}

/** A shadow read from a stored object, or undefined when it is not well formed (as canaryRoute). */
export function shadowRoute(value: unknown, served: number): Shadow | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const { version, sample, since } = value as Record<string, unknown>;
  if (!isVersion(version) || version === served || !isPercent(sample) || !isTime(since)) return undefined;
  return { version, sample, since };
}

/** The routes an event left (only the well-formed ones: a damaged route is no route). */
export function routesOf(event: AliasEvent | undefined): RouteState | undefined {
  if (!event) return undefined;
  const canary = canaryRoute(event.canary, event.to);
  const shadow = shadowRoute(event.shadow, event.to);
  return {
    to: event.to,
    ...(canary ? { canary } : {}),
    ...(shadow && shadow.version !== canary?.version ? { shadow } : {}),
  };
}

/** A percentage given by a person or a plan: refused clearly when not one. */
export function assertPercent(value: number, what: string): void {
  if (!isPercent(value))
    throw new ValidationError(`${what} must be a percentage from 0 to 100, got ${value}`);
}

/**
 * The routes after `change`, made on `head` (the alias's current move) at `at`. Throws
 * ConflictError when the alias's state does not allow it (no served version, no canary to change),
 * ValidationError when the change itself is wrong (a route onto the served version, a bad weight).
 */
export function applyChange(
  head: AliasEvent | undefined,
  change: RouteChange,
  at: string,
  name: string,
): RouteState {
  const current = routesOf(head);
  if (!current)
    throw new ConflictError(`${name} serves no version yet: promote one before a canary or shadow`);
  const { to, canary, shadow } = current;
  const keep = { ...(canary ? { canary } : {}), ...(shadow ? { shadow } : {}) };
  switch (change.op) {
    case 'set-canary': {
      assertPercent(change.weight, 'the canary weight');
      if (change.version === to)
        throw new ValidationError(`${name} already serves v${to}: a canary must be another version`);
      if (change.version === shadow?.version)
        throw new ValidationError(
          `v${change.version} is ${name}'s shadow: stop the shadow before making it the canary`,
        );
      // The same version again only changes the weight: its step restarts.
      return { to, ...keep, canary: { version: change.version, weight: change.weight, since: at } };
    }
    case 'canary-weight': {
      assertPercent(change.weight, 'the canary weight');
      if (!canary) throw new ConflictError(`${name} has no canary: start one with a version and a weight`);
      return { to, ...keep, canary: { version: canary.version, weight: change.weight, since: at } };
    }
    case 'promote-canary': {
      if (!canary) throw new ConflictError(`${name} has no canary to promote`);
      return { to: canary.version, ...(shadow ? { shadow } : {}) };
    }
    case 'abort-canary': {
      if (!canary) throw new ConflictError(`${name} has no canary to abort`);
      return { to, ...(shadow ? { shadow } : {}) };
    }
    case 'set-shadow': {
      assertPercent(change.sample, 'the shadow sample');
      if (change.version === to)
        throw new ValidationError(`${name} already serves v${to}: a shadow must be another version`);
      if (change.version === canary?.version)
        throw new ValidationError(
          `v${change.version} is ${name}'s canary: it is already compared with the live version`,
        );
      return { to, ...keep, shadow: { version: change.version, sample: change.sample, since: at } };
    }
    case 'stop-shadow': {
      if (!shadow) throw new ConflictError(`${name} has no shadow to stop`);
      return { to, ...(canary ? { canary } : {}) };
    }
  }
}

/** The versions a state holds loaded at once: served, canary, shadow. */
export function versionsOf(state: RouteState): number[] {
  return [state.to, state.canary?.version, state.shadow?.version].filter((v): v is number => v !== undefined);
}

/** `v3 (canary v4 10%, shadow v5 5%)`: what an event left, for people. */
export function describeRoutes(event: Pick<AliasEvent, 'to' | 'canary' | 'shadow'>): string {
  const canary = canaryRoute(event.canary, event.to);
  const shadow = shadowRoute(event.shadow, event.to);
  const beside = [
    canary ? `canary v${canary.version} ${canary.weight}%` : undefined,
    shadow ? `shadow v${shadow.version} ${shadow.sample}%` : undefined,
  ].filter(Boolean);
  return `v${event.to}${beside.length ? ` (${beside.join(', ')})` : ''}`;
}

/**
 * One history line's MOVE: `v2 → v3` for a move of the served version, `v3 (canary v4 10%)` for
 * a route change, and what a move ended (`v3, canary v4 ended`), given the move before it.
 */
export function describeMove(
  event: Pick<AliasEvent, 'from' | 'to' | 'canary' | 'shadow'>,
  before: Pick<AliasEvent, 'to' | 'canary' | 'shadow'> | undefined,
): string {
  const now = describeRoutes(event);
  const served =
    event.to !== event.from ? `${event.from === null ? 'none' : `v${event.from}`} → ${now}` : now;
  const had = before ? routesOf(before as AliasEvent) : undefined;
  const ended = [
    had?.canary && !canaryRoute(event.canary, event.to) && had.canary.version !== event.to
      ? `canary v${had.canary.version} ended`
      : undefined,
    had?.shadow && !shadowRoute(event.shadow, event.to) ? `shadow v${had.shadow.version} ended` : undefined,
  ].filter(Boolean);
  return ended.length ? `${served}, ${ended.join(', ')}` : served;
}
