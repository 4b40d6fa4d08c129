/**
 * Per-version counters kept in memory, for the local stack: what the EMF metrics say when
 * deployed, counted here so `aiaas rollout status` and the local rollout function can read them
 * back as `VersionFigures` (figures.ts) over any window of the last two hours.
 *
 * Invocations land in 10-second buckets (by wall-clock time), kept for two hours; each bucket holds,
 * per version and role, the counts and a fixed log-scale latency histogram (bins growing by 10 %
 * from 1 µs), from which p50 and p99 are read to within ±5 %. A window covers every bucket that
 * overlaps it. Memory is bounded: at most 720 buckets, each with only the versions it saw.
 */
import type { ShadowFigures, VersionFigures, VersionRole } from '../shared/rollout/figures.js';
import type { ShadowOutcome } from './shadow.js';

/** One invocation as counted: the version that answered (or was chosen when it failed). */
export interface CountedInvocation {
  readonly version: number;
  readonly role: VersionRole;
  /** The answer's status. */
  readonly status: number;
  readonly latencyMs: number;
  readonly shadow?: ShadowOutcome | undefined;
}

/** What the handler records into (HandlerDeps.counters). */
export interface InvocationCounters {
  record(invocation: CountedInvocation): void;
}

export const BUCKET_MS = 10_000;
export const KEEP_MS = 2 * 60 * 60 * 1000;
/** Histogram bins: bin i holds latencies in [MIN_MS × GROWTH^i, MIN_MS × GROWTH^(i+1)). */
const MIN_MS = 0.001;
const GROWTH = 1.1;
/** Up to 1e-3 × 1.1^290 ≈ 1e9 ms; longer ones land in the last bin. */
const BINS = 290;
const LOG_GROWTH = Math.log(GROWTH);

/** The histogram bin of a latency (exported for tests). */
export function binOf(ms: number): number {
  if (!(ms > MIN_MS)) return 0;
  return Math.min(BINS - 1, Math.floor(Math.log(ms / MIN_MS) / LOG_GROWTH));
}

/** A bin's representative value: the geometric middle of its range, within ±5 % of anything in it. */
export function binValue(bin: number): number {
  return MIN_MS * GROWTH ** (bin + 0.5);
}

/** Counts of one version in one role over one bucket (or, summed, over a window). */
class Tally {
  requests = 0;
  clientErrors = 0;
  serverErrors = 0;
  readonly latency = new Uint32Array(BINS);
  latencies = 0;
  // Shadow only.
  compared = 0;
  slow = 0;
  maxAbsDiff = 0;
  sumMaxAbsDiff = 0;
  topClassRows = 0;
  topClassDisagreements = 0;

  addLatency(ms: number): void {
    this.latency[binOf(ms)]!++;
    this.latencies++;
  }

  add(other: Tally): void {
    this.requests += other.requests;
    this.clientErrors += other.clientErrors;
    this.serverErrors += other.serverErrors;
    for (let i = 0; i < BINS; i++) this.latency[i]! += other.latency[i]!;
    this.latencies += other.latencies;
    this.compared += other.compared;
    this.slow += other.slow;
    this.maxAbsDiff = Math.max(this.maxAbsDiff, other.maxAbsDiff);
    this.sumMaxAbsDiff += other.sumMaxAbsDiff;
    this.topClassRows += other.topClassRows;
    this.topClassDisagreements += other.topClassDisagreements;
  }

  /** The latency at quantile q (nearest rank: the smallest with at least q of them at or below). */
  quantile(q: number): number | undefined {
    if (this.latencies === 0) return undefined;
    const rank = Math.max(1, Math.ceil(q * this.latencies));
    let seen = 0;
    for (let i = 0; i < BINS; i++) {
      seen += this.latency[i]!;
      if (seen >= rank) return binValue(i);
    }
    return binValue(BINS - 1);
  }
}

interface Bucket {
  readonly start: number;
  /** `${role}:${version}` → its tally. */
  readonly tallies: Map<string, Tally>;
}

/** See the module comment. `now`: wall-clock milliseconds. */
export class VersionCounters implements InvocationCounters {
  private readonly buckets: Bucket[] = [];

  constructor(private readonly now: () => number = Date.now) {}

  record(invocation: CountedInvocation): void {
    const bucket = this.bucketAt(this.now());
    const own = tallyOf(bucket, invocation.role, invocation.version);
    own.requests++;
    if (invocation.status >= 500) own.serverErrors++;
    else if (invocation.status >= 400) own.clientErrors++;
    own.addLatency(invocation.latencyMs);
    const shadow = invocation.shadow;
    if (!shadow) return;
    const tally = tallyOf(bucket, 'shadow', shadow.version);
    if (shadow.kind === 'slow') {
      tally.slow++;
      return;
    }
    tally.requests++;
    tally.addLatency(shadow.ms);
    if (shadow.kind === 'failed') {
      tally.serverErrors++;
      return;
    }
    tally.compared++;
    tally.maxAbsDiff = Math.max(tally.maxAbsDiff, shadow.maxAbsDiff);
    tally.sumMaxAbsDiff += shadow.maxAbsDiff;
    tally.topClassRows += shadow.topClassRows;
    tally.topClassDisagreements += shadow.topClassDisagreements;
  }

  /** Each version's figures over [since, until): every bucket that overlaps it. Live first, then canary, shadow. */
  figures(since: Date, until: Date): VersionFigures[] {
    const from = since.getTime();
    const to = until.getTime();
    const sums = new Map<string, { role: VersionRole; version: number; tally: Tally }>();
    for (const bucket of this.buckets) {
      if (!(bucket.start < to && bucket.start + BUCKET_MS > from)) continue;
      for (const [key, tally] of bucket.tallies) {
        let sum = sums.get(key);
        if (!sum) {
          const [role, version] = key.split(':') as [VersionRole, string];
          sum = { role, version: Number(version), tally: new Tally() };
          sums.set(key, sum);
        }
        sum.tally.add(tally);
      }
    }
    const order: Record<VersionRole, number> = { live: 0, canary: 1, shadow: 2 };
    return [...sums.values()]
      .sort((a, b) => order[a.role] - order[b.role] || a.version - b.version)
      .map(({ role, version, tally }) => figuresOf(role, version, tally));
  }

  private bucketAt(at: number): Bucket {
    const start = Math.floor(at / BUCKET_MS) * BUCKET_MS;
    const last = this.buckets[this.buckets.length - 1];
    if (last && last.start === start) return last;
    if (last && start < last.start) {
      // The clock stepped back: count into the bucket it names, if kept.
      const kept = this.buckets.find((b) => b.start === start);
      if (kept) return kept;
    }
    const bucket: Bucket = { start, tallies: new Map() };
    this.buckets.push(bucket);
    this.buckets.sort((a, b) => a.start - b.start);
    while (this.buckets.length > 0 && this.buckets[0]!.start + BUCKET_MS <= at - KEEP_MS)
      this.buckets.shift();
    return bucket;
  }
}

function tallyOf(bucket: Bucket, role: VersionRole, version: number): Tally {
  const key = `${role}:${version}`;
  let tally = bucket.tallies.get(key);
  if (!tally) {
    tally = new Tally();
    bucket.tallies.set(key, tally);
  }
  return tally;
}

function figuresOf(role: VersionRole, version: number, tally: Tally): VersionFigures {
  const p50 = tally.quantile(0.5);
  const p99 = tally.quantile(0.99);
  const shadow: ShadowFigures | undefined =
    role === 'shadow'
      ? {
          compared: tally.compared,
          slow: tally.slow,
          maxAbsDiff: tally.maxAbsDiff,
          meanMaxAbsDiff: tally.compared > 0 ? tally.sumMaxAbsDiff / tally.compared : 0,
          ...(tally.topClassRows > 0
            ? { topClassRows: tally.topClassRows, topClassDisagreements: tally.topClassDisagreements }
            : {}),
        }
      : undefined;
  return {
    version,
    role,
    requests: tally.requests,
    clientErrors: tally.clientErrors,
    serverErrors: tally.serverErrors,
    ...(p50 !== undefined ? { p50Ms: p50 } : {}),
    ...(p99 !== undefined ? { p99Ms: p99 } : {}),
    ...(shadow ? { shadow } : {}),
  };
}
