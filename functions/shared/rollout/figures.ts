/**
 * What a rollout decides on: per version of one model's alias, the figures of its predict
 * requests over a window (and, for a shadow, how its answers differed from the served ones). The
 * inference function counts them (EMF metrics when deployed, the local stack's counters locally);
 * a `FiguresSource` reads them back: CloudWatch GetMetricData, or the local stack.
 */

/** How a version is routed in its alias. */
export type VersionRole = 'live' | 'canary' | 'shadow';

/** One version's figures over a window. Latencies in milliseconds; absent when nothing was measured. */
export interface VersionFigures {
  readonly version: number;
  readonly role: VersionRole;
  /** Predict requests this version answered (for a shadow: requests it was run on). */
  readonly requests: number;
  /** 4xx answers it gave. */
  readonly clientErrors: number;
  /** 5xx answers it gave (for a shadow: runs that failed). */
  readonly serverErrors: number;
  readonly p50Ms?: number;
  readonly p99Ms?: number;
  /** Shadows only: how its outputs compared with the served version's on the same requests. */
  readonly shadow?: ShadowFigures;
}

export interface ShadowFigures {
  /** Requests on which both ran and were compared. */
  readonly compared: number;
  /** Shadow runs skipped or cut because they were too slow. */
  readonly slow: number;
  /** Largest |served - shadow| over every output value compared. */
  readonly maxAbsDiff: number;
  /** Mean over compared requests of the largest |difference| in that request. */
  readonly meanMaxAbsDiff: number;
  /** Classifier-shaped outputs only: rows whose top class differed, and rows compared. */
  readonly topClassDisagreements?: number;
  readonly topClassRows?: number;
}

/** Reads the figures of a model's versions over [since, until). */
export interface FiguresSource {
  figures(model: string, since: Date, until: Date): Promise<readonly VersionFigures[]>;
}
