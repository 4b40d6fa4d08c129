/**
 * What Powertools would do with the function's logs and metrics, read from the environment without
 * loading it (loading it is a measurable part of a cold start: docs/benchmarks.md, "Round 6"), the
 * console fallback used when it cannot start, and the shape both give the handler (`Telemetry`).
 * This module never loads Powertools: telemetry-startup.ts imports it, and telemetry.ts starts it.
 *
 * These rules mirror Powertools 2.x (Logger's `setOptions`/`setInitialLogLevel`, Metrics'
 * `setDisabled`). They only ever answer "certainly not" when Powertools would not print or publish
 * either; in any doubt they answer "maybe", and Powertools, once loaded, decides. A property test
 * (`test/property/telemetry-settings.property.test.ts`) checks them against Powertools itself.
 */
import type { VersionRole } from '../shared/rollout/figures.js';
import type { Log } from './log.js';
import type { ShadowOutcome } from './shadow.js';

/** The function's logger, and how it publishes an invocation's metrics (when it publishes any). */
export interface Telemetry {
  readonly logger: Log;
  readonly record: ((invocation: Invocation) => void) | undefined;
}

/** What one invocation did, for its metrics. */
export interface Invocation {
  /**
   * The version that answered a prediction, or that was chosen for a predict request that then
   * failed (absent when the request failed before a version was chosen, or was not a prediction).
   */
  readonly version?: number | undefined;
  /** Its role in the alias. @default 'live' */
  readonly role?: VersionRole | undefined;
  /** The status of an error answer. */
  readonly failedStatus?: number | undefined;
  /** What the shadow did, on a sampled request. */
  readonly shadow?: ShadowOutcome | undefined;
  readonly coldStart: boolean;
  /** The answer's latency, the shadow's run left out. */
  readonly latencyMs: number;
}

/** Powertools Logger's thresholds (its `LogLevelThreshold`). */
const THRESHOLDS: Readonly<Record<string, number>> = {
  TRACE: 6,
  DEBUG: 8,
  INFO: 12,
  WARN: 16,
  ERROR: 20,
  CRITICAL: 24,
  SILENT: 28,
};

/** The levels the function logs at. */
export type LineLevel = 'info' | 'warn' | 'error';

const LINE_THRESHOLD: Readonly<Record<LineLevel, number>> = { info: 12, warn: 16, error: 20 };

const TRUTHY = new Set(['1', 'y', 'yes', 't', 'true', 'on']);

const trimmed = (value: string | undefined): string => (value === undefined ? '' : value.trim());

/**
 * Powertools Logger's threshold under `env`, or undefined when it cannot be known up front (debug
 * sampling may lower it per invocation).
 */
function loggerThreshold(env: NodeJS.ProcessEnv): number | undefined {
  const sampleRate = trimmed(env.POWERTOOLS_LOGGER_SAMPLE_RATE);
  if (sampleRate !== '' && Number(sampleRate) !== 0) return undefined;
  // Lambda's advanced logging controls win, exactly as spelled (FATAL is Powertools' CRITICAL).
  const lambda = trimmed(env.AWS_LAMBDA_LOG_LEVEL);
  const fromLambda = THRESHOLDS[lambda === 'FATAL' ? 'CRITICAL' : lambda];
  if (fromLambda !== undefined) return fromLambda;
  const configured = trimmed(env.POWERTOOLS_LOG_LEVEL) || trimmed(env.LOG_LEVEL);
  return THRESHOLDS[configured] ?? THRESHOLDS.INFO;
}

/** False only when Powertools Logger, started under `env`, would certainly not print a line at `level`. */
export function mayLog(level: LineLevel, env: NodeJS.ProcessEnv = process.env): boolean {
  const threshold = loggerThreshold(env);
  return threshold === undefined || LINE_THRESHOLD[level] >= threshold;
}

/** False only when Powertools Metrics, started under `env`, would certainly not publish. */
export function mayPublishMetrics(env: NodeJS.ProcessEnv = process.env): boolean {
  // POWERTOOLS_METRICS_DISABLED wins over POWERTOOLS_DEV when set at all. A value Powertools cannot
  // parse is left to Powertools (it refuses to start, and the handler falls back to no metrics).
  const disabled = env.POWERTOOLS_METRICS_DISABLED;
  if (disabled !== undefined) return !TRUTHY.has(disabled.trim().toLowerCase());
  return !TRUTHY.has(trimmed(env.POWERTOOLS_DEV).toLowerCase());
}

/**
 * JSON lines on the console, by the same rule as `mayLog`: the fallback when Powertools cannot
 * start.
 */
function consoleLog(model: string, env: NodeJS.ProcessEnv = process.env): Log {
  const write =
    (level: LineLevel, print: (line: string) => void) =>
    (message: string, extra?: Record<string, unknown>): void => {
      if (mayLog(level, env)) print(JSON.stringify({ level: level.toUpperCase(), message, model, ...extra }));
    };
  return {
    info: write('info', console.info),
    warn: write('warn', console.warn),
    error: write('error', console.error),
  };
}

/** Console logs without metrics, and one line that says why: when Powertools cannot start. */
export function fallbackTelemetry(model: string, deps: { readonly log?: Log }, error: unknown): Telemetry {
  const logger = deps.log ?? consoleLog(model);
  logger.error('logging or metrics could not start; using console logs without metrics', {
    error: error instanceof Error ? error.message : String(error),
  });
  return { logger, record: undefined };
}
