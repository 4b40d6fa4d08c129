/**
 * Moving an alias: record the move in the history first (claim the next slot, history.ts), then
 * write the pointer. The history is the truth; the pointer is what functions poll, written from
 * its event alone (served version, canary and shadow routes: routes.ts). Concurrent
 * moves are serialized, each in its own slot, none lost. Before moving, a mover finishes what it
 * finds left over: a move whose mover died before writing the pointer (after `settleMs`, so it
 * never blocks the alias for longer), or a damaged pointer (at once). Finishing a move twice
 * writes the same pointer. Pointer writes are conditional on the pointer read (If-Match, or
 * If-None-Match when there is none), so where S3 enforces them a stale write never lands.
 *
 * Two kinds of move: `setAlias`/`rollback` set the served version (and end any canary and shadow:
 * they set exactly what is served), `changeRoutes` changes the canary or shadow beside it (and
 * promoting the canary makes it the served version). Both compute the new state from the move they
 * are made on, inside the slot claim, so concurrent changes serialize and none is lost.
 * One module, read better whole although long: both kinds share the claim, the finishing of left-over moves and the
 * pointer write (`move`), and apart they would hide that a route change is a move like any other.
 */

import { setTimeout as sleep } from 'node:timers/promises';
import { monotonicMs } from '../clock.js';
import { randomId } from '../digest.js';
import {
  ConflictError,
  IntegrityError,
  NotFoundError,
  RegistryUnavailableError,
  ValidationError,
} from '../errors.js';
import { filesBytes, fitsInMemory, formatMiB, MEMORY_RULE } from '../rollout/memory.js';
import { isChained, readPointer } from './aliases.js';
import { type Claimant, claimSlot, withClaimRetries } from './claim.js';
import { history, inChain, moveState } from './history.js';
import { readInlineCopy } from './inline.js';
import { assertAliasName, assertModelName, DEFAULT_ALIAS, keys, parseVersion } from './layout.js';
import { JSON_TYPE } from './publish.js';
import { applyChange, type RouteChange, type RouteState, versionsOf } from './routes.js';
import type { ObjectReader } from './store.js';
import type { AliasEvent, AliasPointer, FileDigest, InlineVersion, VersionMetadata } from './types.js';
import { getMetadata } from './versions.js';

/**
 * How long a mover lets an unfinished move (a won history slot whose pointer is not written yet)
 * finish before finishing it itself, and how long it waits on a slot it cannot decide before
 * skipping it. Correctness does not depend on it: finishing a move twice writes the same pointer.
 */
export const DEFAULT_SETTLE_MS = 2_000;

/** Who moves aliases. */
export interface Mover extends Claimant {
  /** See DEFAULT_SETTLE_MS. @default DEFAULT_SETTLE_MS */
  readonly settleMs?: number;
}

export interface MoveAliasOptions {
  readonly who?: string;
  readonly why?: string;
  readonly kind?: AliasEvent['kind'];
  /** Compare-and-swap: fail with ConflictError unless the alias still points here (null: unset). */
  readonly expectedVersion?: number | null;
  readonly details?: Record<string, unknown>;
  /**
   * Compare-and-swap on the whole move: fail with ConflictError unless the alias is still at this
   * move (the `eventId` of the pointer the caller read), i.e. nothing changed it meanwhile.
   */
  readonly expectedEventId?: string;
}

export interface RouteChangeOptions extends MoveAliasOptions {
  /**
   * The function's memory (the manifest's `memoryMiB`): a canary or shadow whose versions do not
   * fit beside the others by the memory rule (rollout/memory.ts) is refused. @default not checked
   */
  readonly memoryMiB?: number;
}

/**
 * Moves an alias to a committed version; answers the recorded move. Any canary and shadow end:
 * a plain move sets exactly what is served (an emergency rollback must not leave a canary on).
 */
export async function setAlias(
  mover: Mover,
  model: string,
  alias: string,
  version: number,
  options: MoveAliasOptions = {},
): Promise<AliasEvent> {
  assertModelName(model);
  assertAliasName(alias);
  parseVersion(version);
  const target = await getMetadata(mover.store, model, version); // the target must be a committed version
  return move(mover, model, alias, options, async () => ({ to: version }), target);
}

/**
 * Changes the canary or shadow of an alias (routes.ts says which changes make sense where), as a
 * move recorded in its history: kind 'canary' or 'shadow' unless `options.kind` says otherwise
 * (the rollout function's 'rollout'). A new route's version must be committed and, with
 * `memoryMiB`, fit beside the others.
 */
export async function changeRoutes(
  mover: Mover,
  model: string,
  alias: string,
  change: RouteChange,
  options: RouteChangeOptions = {},
): Promise<AliasEvent> {
  assertModelName(model);
  assertAliasName(alias);
  const name = `${model}@${alias}`;
  const sizes = new Map<number, Promise<number>>();
  const sizeOf = (version: number) => {
    let size = sizes.get(version);
    if (!size) {
      size = getMetadata(mover.store, model, version).then((metadata) => filesBytes(metadata.files));
      sizes.set(version, size);
    }
    return size;
  };
  if (change.op === 'set-canary' || change.op === 'set-shadow') {
    parseVersion(change.version);
    await sizeOf(change.version); // the route's version must be a committed version
  }
  const kind =
    options.kind ?? (change.op === 'set-shadow' || change.op === 'stop-shadow' ? 'shadow' : 'canary');
  return move(mover, model, alias, { ...options, kind }, async (head, at) => {
    const state = applyChange(head, change, at, name);
    if (options.memoryMiB !== undefined && (change.op === 'set-canary' || change.op === 'set-shadow')) {
      await assertFits(
        state,
        change.op === 'set-canary' ? 'canary' : 'shadow',
        sizeOf,
        options.memoryMiB,
        name,
      );
    }
    return state;
  });
}

/** Refuses a state whose versions do not fit in the function's memory together, naming them all. */
async function assertFits(
  state: RouteState,
  added: 'canary' | 'shadow',
  sizeOf: (version: number) => Promise<number>,
  memoryMiB: number,
  name: string,
): Promise<void> {
  const versions = versionsOf(state);
  const bytes = await Promise.all(versions.map(sizeOf));
  const fit = fitsInMemory(bytes, memoryMiB);
  if (fit.fits) return;
  const roles = ['live', state.canary ? 'canary' : undefined, state.shadow ? 'shadow' : undefined].filter(
    (r): r is string => r !== undefined,
  );
  const listed = versions.map((v, i) => `${roles[i]} v${v} (${formatMiB(bytes[i]!)})`).join(', ');
  throw new ValidationError(
    `${name}: refusing the ${added}: ${listed} need ${fit.needMiB} MiB together ` +
      `(${MEMORY_RULE.baseMiB} MiB for the runtime + ${MEMORY_RULE.weightMultiplier} × their files), ` +
      `more than the function's ${memoryMiB} MiB; raise the model's memoryMiB in the manifest` +
      (state.canary && state.shadow ? `, or end the ${added === 'canary' ? 'shadow' : 'canary'} first` : ''),
  );
}

/**
 * Records a move computed by `next` from the move it is made on (undefined: the alias was never
 * set) and writes its pointer; answers the recorded move.
 */
async function move(
  mover: Mover,
  model: string,
  alias: string,
  options: MoveAliasOptions,
  next: (head: AliasEvent | undefined, at: string) => Promise<RouteState>,
  target?: VersionMetadata,
): Promise<AliasEvent> {
  const { store } = mover;
  const mine = new Set<string>(); // ids of this call's claims: one finished by another mover is ours
  const skip = new Set<number>();
  const waiting = new Map<string, number>();
  for (let round = 0; round < 10; round++) {
    const event = await withClaimRetries(
      `moving ${model}@${alias}`,
      async () => {
        const state = await moveState(store, model, alias, skip);
        if (state.kind === 'unfinished') {
          if (state.repair || settled(mover, state.claim.key, state.claim.lastModified, waiting)) {
            await writePointer(mover, state.event);
          } else await sleep(25 + Math.random() * 75);
          return undefined;
        }
        if (state.kind === 'undecided') {
          const key = `slot ${state.seq}`;
          const newest = Math.max(...state.claims.map((c) => c.lastModified?.getTime() ?? Date.now()));
          if (settled(mover, key, new Date(newest), waiting)) skip.add(state.seq);
          else await sleep(25 + Math.random() * 75);
          return undefined;
        }
        const { head, nextSeq } = state;
        if (head && mine.has(head.id)) return head;
        const from = head?.to ?? null;
        if (options.expectedVersion !== undefined && options.expectedVersion !== from) {
          throw new ConflictError(
            `${model}@${alias} points to ${from ?? 'nothing'}, not ${options.expectedVersion}: it was moved meanwhile`,
          );
        }
        if (options.expectedEventId !== undefined && options.expectedEventId !== head?.id) {
          throw new ConflictError(
            `${model}@${alias} was changed meanwhile (it is at move ${head?.seq ?? 'none'})`,
          );
        }
        const at = new Date().toISOString();
        const routes = await next(head, at);
        // A fresh id each attempt: a claim once marked lost must never be taken for a new one.
        const id = randomId();
        mine.add(id);
        // `details` only when given: the event is stored and returned as it is.
        const candidate: AliasEvent = {
          id,
          seq: nextSeq,
          model,
          alias,
          kind: options.kind ?? 'promote',
          from,
          to: routes.to,
          at,
          who: options.who ?? mover.actor,
          why: options.why ?? '',
          ...(options.details ? { details: options.details } : {}),
          prev: head?.id ?? null,
          ...(routes.canary ? { canary: routes.canary } : {}),
          ...(routes.shadow ? { shadow: routes.shadow } : {}),
        };
        const claim = await claimSlot(
          store,
          keys.historySlot(model, alias, nextSeq),
          JSON.stringify(candidate),
          id,
        );
        return claim.won ? candidate : undefined;
      },
      mover.retry,
    );
    if (await writePointer(mover, event, target)) return event;
    // Another mover finished a different move in this slot first (it waited out ours): this
    // move was not made. Made again on top of it, unless the caller asked for a compare-and-swap.
    if (options.expectedVersion !== undefined || options.expectedEventId !== undefined) {
      throw new ConflictError(`${model}@${alias} was moved meanwhile; this ${event.kind} was not made`);
    }
  }
  throw new ConflictError(`Gave up on moving ${model}@${alias}: it kept being moved meanwhile; try again`);
}

/**
 * Moves the alias back to the version it served before its current one (undo; repeated
 * rollbacks walk further back). Only moves that changed the served version are steps back: a
 * canary or shadow change that left it (a weight, an abort) is not one. Like every plain move, it
 * ends any canary and shadow.
 */
export async function rollback(
  mover: Mover,
  model: string,
  alias: string = DEFAULT_ALIAS,
  options: Omit<MoveAliasOptions, 'kind'> = {},
): Promise<AliasEvent> {
  const events = await history(mover.store, model, alias);
  const stack = servedVersions(events);
  const current = stack[stack.length - 1];
  const previous = stack[stack.length - 2];
  if (current === undefined || previous === undefined) {
    throw new ConflictError(`${model}@${alias} has no earlier version to roll back to`);
  }
  return setAlias(mover, model, alias, previous, {
    ...options,
    kind: 'rollback',
    expectedVersion: options.expectedVersion ?? current,
  });
}

/** The versions the alias served, oldest first, rollbacks undone: what a rollback walks back through. */
export function servedVersions(events: readonly AliasEvent[]): number[] {
  const stack: number[] = [];
  for (const e of events) {
    if (e.kind === 'rollback') stack.pop();
    else if (e.to !== e.from) stack.push(e.to); // a move that left the served version is no step
  }
  return stack;
}

/** Whether a wait on `key` is over: it is older than settleMs, or this mover has waited that long. */
function settled(
  mover: Mover,
  key: string,
  lastModified: Date | undefined,
  waiting: Map<string, number>,
): boolean {
  const settleMs = mover.settleMs ?? DEFAULT_SETTLE_MS;
  if (lastModified && Date.now() - lastModified.getTime() >= settleMs) return true;
  const now = monotonicMs();
  const since = waiting.get(key) ?? now;
  waiting.set(key, since);
  return now - since >= settleMs;
}

/**
 * Writes the alias pointer for `event` unless the pointer already names it or a later move.
 * Returns whether `event` is one of the alias's moves: false when another move of the same slot
 * (or one not built on `event`) got the pointer first.
 */
async function writePointer(mover: Mover, event: AliasEvent, known?: VersionMetadata): Promise<boolean> {
  const { store } = mover;
  let metadata = known?.version === event.to ? known : undefined;
  let inline: InlineVersion | null | undefined; // null: read, and not carried
  let routes: Pick<AliasPointer, 'canary' | 'shadow'> | undefined;
  for (let attempt = 0; attempt < 10; attempt++) {
    const read = await readPointer(store, event.model, event.alias);
    const at = read.state === 'ok' && isChained(read.pointer) ? read.pointer : undefined;
    if (at && at.seq === event.seq && at.eventId === event.id) return true;
    if (at && at.seq >= event.seq) {
      // A pointer naming a move the history does not hold is damaged: it is replaced.
      const verdict = await inChain(store, event, at);
      if (verdict !== 'unrecorded') return verdict === 'in';
    }
    metadata ??= await getMetadata(store, event.model, event.to).catch(withoutShortcut);
    if (metadata && inline === undefined) inline = await inlineCopyOrNone(store, metadata);
    routes ??= await routeShortcuts(store, event);
    // Written as JSON: a shortcut left undefined is left out.
    const pointer: AliasPointer = {
      model: event.model,
      alias: event.alias,
      version: event.to,
      seq: event.seq,
      eventId: event.id,
      updatedAt: event.at,
      files: metadata?.files,
      inline: inline ?? undefined,
      ...routes,
    };
    try {
      await store.put(keys.alias(event.model, event.alias), JSON.stringify(pointer), {
        contentType: JSON_TYPE,
        ...(read.state === 'absent'
          ? { ifNoneMatch: '*' as const }
          : { ifMatch: read.state === 'ok' ? read.pointer.etag : read.etag }),
      });
    } catch (error) {
      // Another writer changed the pointer since it was read: read it again and decide again.
      if (!(error instanceof ConflictError)) throw error;
    }
  }
  throw new ConflictError(
    `${event.model}@${event.alias}: the move was recorded, but the alias pointer kept changing; run the command again`,
  );
}

/** The event's canary and shadow as the pointer carries them: each with its version's shortcuts. */
async function routeShortcuts(
  store: ObjectReader,
  event: AliasEvent,
): Promise<Pick<AliasPointer, 'canary' | 'shadow'>> {
  const shortcuts = async (version: number) => {
    const metadata = await getMetadata(store, event.model, version).catch(withoutShortcut);
    const inline = metadata ? await inlineCopyOrNone(store, metadata) : null;
    return {
      ...(metadata ? { files: metadata.files as Readonly<Record<string, FileDigest>> } : {}),
      ...(inline ? { inline } : {}),
    };
  };
  const { canary, shadow } = event;
  return {
    ...(canary
      ? {
          canary: {
            version: canary.version,
            weight: canary.weight,
            since: canary.since,
            ...(await shortcuts(canary.version)),
          },
        }
      : {}),
    ...(shadow
      ? {
          shadow: {
            version: shadow.version,
            sample: shadow.sample,
            since: shadow.since,
            ...(await shortcuts(shadow.version)),
          },
        }
      : {}),
  };
}

/**
 * The copy a pointer about to be written carries, or null. A store fault is tried once more; after
 * that the pointer goes without a copy (see withoutShortcut), and stays without one until the alias
 * moves again.
 */
async function inlineCopyOrNone(
  store: ObjectReader,
  metadata: VersionMetadata,
): Promise<InlineVersion | null> {
  for (let attempt = 1; ; attempt++) {
    try {
      return (await readInlineCopy(store, metadata)) ?? null;
    } catch (error) {
      if (attempt < 2 && error instanceof RegistryUnavailableError) continue;
      return withoutShortcut(error) ?? null;
    }
  }
}

/**
 * The pointer's shortcuts (the file list, the inline copy) are copies of what readers re-derive
 * from the version itself. When they cannot be had now (the store fails, or the version's
 * metadata is damaged or gone), the pointer goes without them rather than the recorded move going
 * without a pointer; readers then read the version from its own objects and meet any real problem
 * there. Anything else (a bug) still throws.
 */
function withoutShortcut(error: unknown): undefined {
  if (
    error instanceof RegistryUnavailableError ||
    error instanceof IntegrityError ||
    error instanceof NotFoundError
  ) {
    return undefined;
  }
  throw error;
}
