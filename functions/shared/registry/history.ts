/**
 * Alias history, read side: `models/<model>/aliases/<alias>/history/<seq>/<id>.json`. Each move of
 * an alias is a claim (claim.ts) of the next sequence slot, and names the move it was made on top
 * of (`prev`). The history is the chain of those links that ends at the move the pointer names:
 * exactly the moves the alias made. Around that chain:
 *
 * - unfinished: a slot above the head with one unmarked claim built on the head is a move that won
 *   (or may have) whose pointer is not written yet; the next mover finishes it (moves.ts);
 * - undecided: a slot above the head with several unmarked claims cannot be told apart; movers
 *   wait, then skip it;
 * - damaged or absent pointer, or one naming no recorded move: the head is the newest decided move
 *   (a slot's only unmarked claim), and the next mover repairs the pointer;
 * - entries written before `prev` existed link to the only claim of the slot below.
 *
 * Each entry also carries the canary and shadow the alias has after it (routes.ts), so the chain's
 * head alone says everything a pointer holds. Everything here only reads; moves.ts writes.
 */

import { isChained, type PointerRead, readPointer } from './aliases.js';
import { type SlotClaim, slotClaims } from './claim.js';
import { parseJson } from './integrity.js';
import { DEFAULT_ALIAS, keys } from './layout.js';
import type { ListedObject, ObjectReader } from './store.js';
import type { AliasEvent, AliasPointer } from './types.js';

/** The history's claims by slot. */
export type Slots = ReadonlyMap<number, readonly SlotClaim[]>;

/** A history slot's state as a mover sees it (see `moveState`). */
export type MoveState =
  | {
      readonly kind: 'settled';
      /** The move the alias is at: the pointer's event, or the one being repaired. */
      readonly head?: AliasEvent;
      readonly nextSeq: number;
    }
  /** A won (or possibly won) slot above the head whose pointer is not written: finish it. */
  | {
      readonly kind: 'unfinished';
      readonly event: AliasEvent;
      readonly claim: SlotClaim;
      /** The pointer is damaged or names no recorded move: repaired at once. */
      readonly repair?: boolean;
    }
  /** A slot above the head with several unmarked claims: wait, then skip it. */
  | { readonly kind: 'undecided'; readonly seq: number; readonly claims: readonly SlotClaim[] };

/**
 * The alias history, oldest first: exactly the moves the alias made. A move whose mover died
 * before writing the pointer is not in it until the next move finishes it (see
 * `unfinishedMoves`). With a damaged pointer, the chain ends at the newest decided move.
 */
export async function history(
  store: ObjectReader,
  model: string,
  alias: string = DEFAULT_ALIAS,
): Promise<AliasEvent[]> {
  const { slots, head, pointer } = await chainHead(store, model, alias);
  const events = await chainTo(store, slots, head);
  // No pointer: the newest recorded move never reached it (the alias was never set by it).
  return pointer.state === 'absent' ? events.slice(0, -1) : events;
}

/** Moves recorded above the pointer's and not finished yet: the next move finishes or drops them. */
export async function unfinishedMoves(
  store: ObjectReader,
  model: string,
  alias: string = DEFAULT_ALIAS,
): Promise<AliasEvent[]> {
  const state = await moveState(store, model, alias, new Set());
  return state.kind === 'unfinished' && !state.repair ? [state.event] : [];
}

/**
 * Where the next move goes. The head is the move the pointer names (repaired when the pointer is
 * absent or damaged: the newest decided move). Above it, a slot with exactly one unmarked claim
 * built on the head is a move that won (or may have) and whose pointer is not written: the mover
 * must finish it first. Finishing it is always safe: while that claim is unmarked no other claim
 * of its slot can win. A slot with several unmarked claims cannot be told apart (one may have
 * won): the mover waits, then skips it (`skip`). Claims built on another move are void.
 */
export async function moveState(
  store: ObjectReader,
  model: string,
  alias: string,
  skip: ReadonlySet<number>,
): Promise<MoveState> {
  const { slots, head, pointer } = await chainHead(store, model, alias);
  const confirmed = pointer.state === 'ok' && head !== undefined && pointer.pointer.eventId === head.id;
  if (head && !confirmed) {
    // No usable pointer: the newest decided move is the head, and is finished (its pointer written) first.
    const claim = slots.get(head.seq)!.find((c) => c.id === head.id)!;
    return { kind: 'unfinished', event: head, claim, repair: pointer.state !== 'absent' };
  }
  const above = [...slots.keys()].filter((seq) => seq > (head?.seq ?? 0)).sort((a, b) => b - a);
  for (const seq of above) {
    if (skip.has(seq)) continue;
    const open = slots.get(seq)!.filter((c) => !c.lost);
    if (open.length === 1) {
      const event = await readEvent(store, slots, seq, open[0]!.id);
      if (event && event.prev === (head?.id ?? null) && event.from === (head?.to ?? null)) {
        return { kind: 'unfinished', event, claim: open[0]! };
      }
    } else if (open.length > 1) {
      return { kind: 'undecided', seq, claims: open };
    }
  }
  const top = above[0];
  const free = top !== undefined && !skip.has(top) && slots.get(top)!.every((c) => c.lost);
  const highest = Math.max(head?.seq ?? 0, ...slots.keys());
  return { kind: 'settled', head, nextSeq: free ? top : highest + 1 };
}

/**
 * Whether `event` is in the chain that ends at the pointer `at` (walks `prev` back to its slot),
 * or 'unrecorded' when the pointer names a move the history does not hold.
 */
export async function inChain(
  store: ObjectReader,
  event: AliasEvent,
  at: AliasPointer,
): Promise<'in' | 'out' | 'unrecorded'> {
  const slots = await listHistory(store, event.model, event.alias);
  let id: string | null = at.eventId;
  let seq = at.seq;
  for (let steps = 0; id !== null && seq >= event.seq && steps < 10_000; steps++) {
    if (id === event.id && seq === event.seq) return 'in';
    const current = await readEvent(store, slots, seq, id);
    if (!current) return steps === 0 ? 'unrecorded' : 'out';
    ({ id, seq } = prevOf(slots, current) ?? { id: null, seq: 0 });
  }
  return 'out';
}

/**
 * The history's slots and the move the alias is at: the one the pointer names, or, when the
 * pointer is absent, damaged or names no recorded move, the newest slot's only unmarked claim.
 */
async function chainHead(
  store: ObjectReader,
  model: string,
  alias: string,
): Promise<{ slots: Slots; head?: AliasEvent; pointer: PointerRead }> {
  const [slots, pointer] = await Promise.all([
    listHistory(store, model, alias),
    readPointer(store, model, alias),
  ]);
  if (pointer.state === 'ok' && isChained(pointer.pointer)) {
    const head = await readEvent(store, slots, pointer.pointer.seq, pointer.pointer.eventId);
    if (head) return { slots, head, pointer };
  }
  if (pointer.state === 'absent' && slots.size === 0) return { slots, pointer };
  for (const seq of [...slots.keys()].sort((a, b) => b - a)) {
    const open = slots.get(seq)!.filter((c) => !c.lost);
    if (open.length !== 1) continue;
    const head = await readEvent(store, slots, seq, open[0]!.id);
    if (head) return { slots, head, pointer };
  }
  return { slots, pointer };
}

/** The history's claims by slot. */
async function listHistory(store: ObjectReader, model: string, alias: string): Promise<Slots> {
  const root = keys.history(model, alias);
  const objects = await store.list(root);
  const bySlot = new Map<number, ListedObject[]>();
  for (const object of objects) {
    const part = object.key.slice(root.length).split('/')[0] ?? '';
    if (!/^\d+$/.test(part)) continue;
    const seq = Number(part);
    bySlot.set(seq, [...(bySlot.get(seq) ?? []), object]);
  }
  const slots = new Map<number, SlotClaim[]>();
  for (const [seq, listed] of bySlot) slots.set(seq, slotClaims(listed, keys.historySlot(model, alias, seq)));
  return slots;
}

/** One history entry, by slot and id; undefined when it is not there. */
async function readEvent(
  store: ObjectReader,
  slots: Slots,
  seq: number,
  id: string,
): Promise<AliasEvent | undefined> {
  const claim = slots.get(seq)?.find((c) => c.id === id);
  if (!claim) return undefined;
  const object = await store.get(claim.key);
  if (!object) return undefined;
  const event = parseJson<AliasEvent>(object, `alias history entry ${claim.key}`);
  return event?.id === id && event.seq === seq ? event : undefined;
}

/**
 * The move before `event`: the one its `prev` names, or, for entries written before `prev`
 * existed, the only claim of the nearest slot below.
 */
function prevOf(slots: Slots, event: AliasEvent): { id: string; seq: number } | undefined {
  if (event.prev === null) return undefined;
  if (typeof event.prev === 'string') {
    const seq = slotOf(slots).get(event.prev);
    return seq !== undefined && seq < event.seq ? { id: event.prev, seq } : undefined;
  }
  const below = [...slots.keys()].filter((seq) => seq < event.seq).sort((a, b) => b - a)[0];
  const claims = below === undefined ? [] : slots.get(below)!;
  return below !== undefined && claims.length === 1 ? { id: claims[0]!.id, seq: below } : undefined;
}

/** The chain of moves ending at `head`, oldest first. */
async function chainTo(
  store: ObjectReader,
  slots: Slots,
  head: AliasEvent | undefined,
): Promise<AliasEvent[]> {
  if (!head) return [];
  // Read together rather than one round trip per move: every claim that may be in the chain.
  const read = new Map<string, AliasEvent>();
  await Promise.all(
    [...slots]
      .filter(([seq]) => seq < head.seq)
      .flatMap(([seq, claims]) => claims.filter((c) => !c.lost).map((c) => [seq, c.id] as const))
      .map(async ([seq, id]) => {
        const event = await readEvent(store, slots, seq, id);
        if (event) read.set(`${seq}/${id}`, event);
      }),
  );
  const events: AliasEvent[] = [];
  let current: AliasEvent | undefined = head;
  while (current && events.length <= slots.size) {
    events.unshift(current);
    const prev = prevOf(slots, current);
    current = prev
      ? (read.get(`${prev.seq}/${prev.id}`) ?? (await readEvent(store, slots, prev.seq, prev.id)))
      : undefined;
  }
  return events;
}

const slotIndex = new WeakMap<Slots, Map<string, number>>();

/** Claim id → its slot, built once per listing. */
function slotOf(slots: Slots): Map<string, number> {
  let index = slotIndex.get(slots);
  if (!index) {
    index = new Map();
    for (const [seq, claims] of slots) for (const claim of claims) index.set(claim.id, seq);
    slotIndex.set(slots, index);
  }
  return index;
}
