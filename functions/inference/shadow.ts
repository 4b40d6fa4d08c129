/**
 * A shadow version: run on a sample of predict requests after the answer is computed, its outputs
 * compared with the answer's and never returned. Lambda freezes the environment once the handler
 * returns, so the shadow runs inside the invocation, synchronously, after the answer is computed and
 * before it is sent; its cost is bounded by a budget (`ShadowRunner.run`). A shadow that throws or
 * cannot be compared is counted and logged (one line a minute at most), never surfaced.
 *
 * Comparison (`compareOutputs`), output by output in signature order:
 * - the largest |answer − shadow| over every value (a NaN against a number counts as Infinity,
 *   two NaNs as equal);
 * - for classifier-shaped outputs, per row, whether the top class agrees: an output whose last
 *   dimension is 2 or more is a row of class scores (top class: the first largest, NaN ignored);
 *   an output with one value per row is a sigmoid when, in this request, every value of both
 *   versions lies in [0, 1] (class: value ≥ 0.5); any other output has no top class.
 */
import type { OutputTensor } from './answers.js';
import type { Executor } from './executor.js';
import type { Log } from './log.js';
import { type Limits, type PredictRequest, parsePredictRequest } from './predict-request.js';

/** How two versions' outputs on the same request differ. */
export interface Comparison {
  readonly maxAbsDiff: number;
  /** Rows of classifier-shaped outputs compared, and those whose top class differs. */
  readonly topClassRows: number;
  readonly topClassDisagreements: number;
}

/** What a shadow did on one sampled request. `ms`: its run time (parse, predict, compare). */
export type ShadowOutcome =
  | ({ readonly kind: 'compared'; readonly version: number; readonly ms: number } & Comparison)
  | { readonly kind: 'failed'; readonly version: number; readonly ms: number }
  | { readonly kind: 'slow'; readonly version: number };

/** The shadow's budget per sampled request: this, or twice the answer's own compute time if more. */
export const SHADOW_BUDGET_FLOOR_MS = 5;
/** Runs over budget in a row after which the shadow is skipped (one stall is not slowness). */
export const SHADOW_SLOW_AFTER = 3;
/** While skipped as slow, one sampled request in this many still runs it, to see it recover. */
export const SHADOW_PROBE_EVERY = 16;
/** At most one log line per shadow in this long, with a count of the failures since the last. */
const LOG_EVERY_MS = 60_000;

/** The outputs compared (see the module comment), or why they cannot be. Pure. */
export function compareOutputs(
  answer: readonly OutputTensor[],
  shadow: readonly OutputTensor[],
): Comparison | string {
  if (answer.length !== shadow.length) {
    return `the shadow has ${shadow.length} outputs, the answer ${answer.length}`;
  }
  let maxAbsDiff = 0;
  let topClassRows = 0;
  let topClassDisagreements = 0;
  for (let k = 0; k < answer.length; k++) {
    const a = answer[k]!;
    const b = shadow[k]!;
    if (a.shape.length !== b.shape.length || a.shape.some((d, i) => d !== b.shape[i])) {
      return `output ${k} has shape [${b.shape.join(', ')}] in the shadow, [${a.shape.join(', ')}] in the answer`;
    }
    const x = a.values;
    const y = b.values;
    if (x.length !== y.length)
      return `output ${k} has ${y.length} values in the shadow, ${x.length} in the answer`;
    for (let i = 0; i < x.length; i++) {
      const d = absDiff(x[i]!, y[i]!);
      if (d > maxAbsDiff) maxAbsDiff = d;
    }
    const rank = a.shape.length;
    if (rank === 0) continue;
    const last = rank === 1 ? 1 : a.shape[rank - 1]!;
    if (last >= 2) {
      const rows = x.length / last;
      for (let r = 0; r < rows; r++) {
        if (argMax(x, r * last, last) !== argMax(y, r * last, last)) topClassDisagreements++;
      }
      topClassRows += rows;
    } else if (last === 1 && inUnitRange(x) && inUnitRange(y)) {
      for (let i = 0; i < x.length; i++) if (x[i]! >= 0.5 !== y[i]! >= 0.5) topClassDisagreements++;
      topClassRows += x.length;
    }
  }
  return { maxAbsDiff, topClassRows, topClassDisagreements };
}

function absDiff(x: number, y: number): number {
  if (Number.isNaN(x) || Number.isNaN(y))
    return Number.isNaN(x) && Number.isNaN(y) ? 0 : Number.POSITIVE_INFINITY;
  if (x === y) return 0; // equal infinities
  return Math.abs(x - y);
}

/** The index of the first largest of `n` values from `offset`, NaN ignored; -1 when all are NaN. */
function argMax(values: ArrayLike<number>, offset: number, n: number): number {
  let best = -1;
  let top = Number.NEGATIVE_INFINITY;
  for (let j = 0; j < n; j++) {
    const v = values[offset + j]!;
    if (v > top || (best < 0 && v === top)) {
      top = v;
      best = j;
    }
  }
  return best;
}

function inUnitRange(values: ArrayLike<number>): boolean {
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (!(v >= 0 && v <= 1)) return false;
  }
  return true;
}

/** A loaded version, as the shadow needs it. */
export interface ShadowVersion {
  readonly version: number;
  readonly executor: Executor;
}

/** A loaded shadow version and what it remembers between runs: its recent timings, its log budget. */
export class ShadowRunner<S extends ShadowVersion = ShadowVersion> {
  /** Runs over budget in a row. */
  private overBudget = 0;
  /** Sampled requests skipped since the shadow was found slow. */
  private skipped = 0;
  private lastLogAt = Number.NEGATIVE_INFINITY;
  private unlogged = 0;

  constructor(
    readonly served: S,
    private readonly log: Log,
    private readonly now: () => number,
  ) {}

  get version(): number {
    return this.served.version;
  }

  /**
   * Runs the shadow on a sampled request that `answering` answered with `outputs` in `answerMs`
   * (parse and predict). Never throws. Skipped (outcome `slow`) once its last SHADOW_SLOW_AFTER
   * runs each took longer than max(SHADOW_BUDGET_FLOOR_MS, 2 × that request's answer time), except
   * on every SHADOW_PROBE_EVERY-th sampled request, whose run may show it fast again.
   */
  run(
    request: PredictRequest,
    body: string,
    answering: Executor,
    outputs: readonly OutputTensor[],
    answerMs: number,
    limits: Limits,
  ): ShadowOutcome {
    const { version } = this.served;
    if (this.overBudget >= SHADOW_SLOW_AFTER && ++this.skipped % SHADOW_PROBE_EVERY !== 0) {
      return { kind: 'slow', version };
    }
    const started = this.now();
    let compared: Comparison | string;
    try {
      const executor = this.served.executor;
      const inputs = sameInputs(answering, executor)
        ? request.inputs
        : parsePredictRequest(body, executor.signature, limits).inputs;
      compared = compareOutputs(outputs, executor.predict(inputs));
    } catch (error) {
      compared = `the shadow failed: ${(error as Error)?.message ?? String(error)}`;
    }
    const ms = this.now() - started;
    if (ms > Math.max(SHADOW_BUDGET_FLOOR_MS, 2 * answerMs)) this.overBudget++;
    else {
      this.overBudget = 0;
      this.skipped = 0;
    }
    if (typeof compared === 'string') {
      this.logFailure(compared);
      return { kind: 'failed', version, ms };
    }
    return { kind: 'compared', version, ms, ...compared };
  }

  private logFailure(reason: string): void {
    const at = this.now();
    if (at - this.lastLogAt < LOG_EVERY_MS) {
      this.unlogged++;
      return;
    }
    this.log.warn('shadow version failed on a request; the answer was not affected', {
      shadow: this.served.version,
      reason,
      ...(this.unlogged > 0 ? { failuresSinceLastLine: this.unlogged } : {}),
    });
    this.lastLogAt = at;
    this.unlogged = 0;
  }
}

/** Whether two versions take the same inputs (names, dtypes, shapes), so one parse serves both. */
function sameInputs(a: Executor, b: Executor): boolean {
  if (a.signature === b.signature) return true;
  const x = a.signature.inputs;
  const y = b.signature.inputs;
  return (
    x.length === y.length &&
    x.every((s, i) => {
      const t = y[i]!;
      return (
        s.name === t.name &&
        s.dtype === t.dtype &&
        s.vocabularySize === t.vocabularySize &&
        s.shape.length === t.shape.length &&
        s.shape.every((d, j) => d === t.shape[j])
      );
    })
  );
}
