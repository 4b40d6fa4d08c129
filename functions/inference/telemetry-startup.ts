/**
 * The function's logs and metrics, with Powertools (telemetry.ts) loaded only when it has work:
 * loading it is a measurable part of a cold start (docs/benchmarks.md, "Round 6").
 *
 * - Import: as this module is evaluated (Lambda's init phase, as a static import would) when the
 *   environment says a cold start may log at INFO or publish metrics; otherwise on the first line
 *   that could be printed. Once per process.
 * - Start: once per `LazyTelemetry`, on the first such line, at the end of the first invocation
 *   that publishes metrics, or, when the cold start will need it anyway, while the first request
 *   waits on S3 (`startWhileWaiting`): it opens stdout and stderr as it starts, and nothing needs it
 *   before then. If it cannot load or start, console lines without metrics (telemetry-settings.ts).
 * - Lines logged before it is up are queued and written in order once it is; `finish` returns a
 *   promise until then, so they are written before the invocation that logged them answers.
 * - Metrics: an invocation is timed only when its metrics may be published (`begin`), and recorded
 *   by `finish` (per version and role, telemetry.ts). A given `log` or `metrics` (tests, the local stack) replaces Powertools' own.
 * - Once Powertools is up, or when it is not needed, `begin` and `finish` are synchronous: a warm
 *   invocation gets no promise and no microtask hop from telemetry. Nothing here throws.
 */
import type { Metrics } from '@aws-lambda-powertools/metrics';
import { monotonicMs } from '../shared/clock.js';
import type { VersionRole } from '../shared/rollout/figures.js';
import type { Log } from './log.js';
import type { ShadowOutcome } from './shadow.js';
import {
  fallbackTelemetry,
  type LineLevel,
  mayLog,
  mayPublishMetrics,
  type Telemetry,
} from './telemetry-settings.js';

/** Replacements for Powertools' logger and metrics. */
export interface TelemetryDeps {
  readonly log?: Log;
  readonly metrics?: Metrics;
}

let powertools: Promise<typeof import('./telemetry.js')> | undefined;

/** Imports (evaluates) Powertools, once per process. */
function importPowertools(): Promise<typeof import('./telemetry.js')> {
  powertools ??= import('./telemetry.js');
  return powertools;
}

// A failed import is met again, and handled, by the first line that needs Powertools.
if (mayPublishMetrics() || mayLog('info')) importPowertools().catch(() => undefined);

type QueuedLine = readonly [LineLevel, string, Record<string, unknown> | undefined];

/** One handler's logs and metrics: see the module comment. */
export class LazyTelemetry {
  /** The function's log: Powertools once up, else the given log, else a queue that starts Powertools. */
  readonly log: Log;
  private telemetry: Telemetry | undefined;
  private starting: Promise<Telemetry> | undefined;
  private readonly queued: QueuedLine[] = [];
  /** Metrics may be published (decided from the deps and the environment at construction). */
  private readonly publishing: boolean;
  /** The cold start will need Powertools: start it while the first request waits. */
  private readonly early: boolean;
  private coldStart = true;

  constructor(
    private readonly model: string,
    private readonly deps: TelemetryDeps = {},
  ) {
    this.publishing = deps.metrics !== undefined || mayPublishMetrics();
    this.early = this.publishing || (deps.log === undefined && mayLog('info'));
    this.log = { info: this.line('info'), warn: this.line('warn'), error: this.line('error') };
  }

  /**
   * An invocation starts: its start on the clock when its metrics may be published, else undefined
   * (Powertools' bookkeeping and the clock read are skipped when nothing is published).
   */
  begin(): number | undefined {
    const timed = this.telemetry ? this.telemetry.record !== undefined : this.publishing;
    return timed ? monotonicMs() : undefined;
  }

  /** The request is about to wait (on S3): a cold start that will need Powertools starts it meanwhile. */
  startWhileWaiting(): void {
    if (this.early && !this.starting) setImmediate(this.start);
  }

  /**
   * An invocation ends: records its metrics when `begin` timed it, with the version that answered a
   * prediction (or was chosen for a request that failed) and its role, the status of an error
   * answer, and what a shadow did. A promise only while Powertools is starting.
   */
  finish(
    started: number | undefined,
    version: number | undefined,
    failedStatus: number | undefined,
    role?: VersionRole,
    shadow?: ShadowOutcome,
  ): Promise<void> | undefined {
    if (started !== undefined) {
      const up = this.telemetry;
      if (up) return this.record(up, started, version, failedStatus, role, shadow);
      return this.start().then((telemetry) =>
        this.record(telemetry, started, version, failedStatus, role, shadow),
      );
    }
    if (this.starting && !this.telemetry) return this.starting.then(this.warm);
    this.coldStart = false;
    return undefined;
  }

  private record(
    telemetry: Telemetry,
    started: number,
    version: number | undefined,
    failedStatus: number | undefined,
    role: VersionRole | undefined,
    shadow: ShadowOutcome | undefined,
  ): undefined {
    // The version's own latency: a shadow's run (inside the invocation) is its own figure.
    const shadowMs = shadow !== undefined && shadow.kind !== 'slow' ? shadow.ms : 0;
    try {
      telemetry.record?.({
        version,
        failedStatus,
        role,
        shadow,
        coldStart: this.coldStart,
        latencyMs: monotonicMs() - started - shadowMs,
      });
    } catch {
      // Metrics must never fail an answer.
    }
    this.coldStart = false;
    return undefined;
  }

  private readonly warm = (): void => {
    this.coldStart = false;
  };

  private line(level: LineLevel) {
    return (message: string, extra?: Record<string, unknown>): void => {
      if (this.telemetry) this.telemetry.logger[level](message, extra);
      else if (this.deps.log) this.deps.log[level](message, extra);
      else if (mayLog(level)) {
        this.queued.push([level, message, extra]);
        void this.start();
      }
    };
  }

  /** Starts Powertools (once), then writes the queued lines in order. Never rejects. */
  private readonly start = (): Promise<Telemetry> => {
    this.starting ??= importPowertools()
      .then(
        (module) => module.createTelemetry(this.model, this.deps),
        (error: unknown) => fallbackTelemetry(this.model, this.deps, error),
      )
      .then((started) => {
        this.telemetry = started;
        for (const [level, message, extra] of this.queued.splice(0)) {
          try {
            started.logger[level](message, extra);
          } catch {
            // Nothing to tell it to; the answer must not fail for a log line.
          }
        }
        return started;
      });
    return this.starting;
  };
}
