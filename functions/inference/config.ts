import { ConfigurationError } from '../shared/errors.js';
import { assertAliasName, assertModelName, DEFAULT_ALIAS } from '../shared/registry/layout.js';
import { DEFAULT_LIMITS, type Limits } from './api.js';

/** What one inference function needs to know; read from the environment in Lambda. */
export interface InferenceConfig {
  readonly bucket: string;
  readonly model: string;
  readonly alias: string;
  /** An S3-compatible endpoint for local use; AWS S3 when unset. */
  readonly endpoint?: string;
  /**
   * Re-read the alias this often (the request that starts a re-check waits for it briefly, the
   * others not at all: InferenceOptions.recheckWaitMs); while re-checks fail, the wait doubles, up
   * to eight intervals or five minutes (whichever is less, never below one interval), and is back
   * to this after a success.
   */
  readonly aliasCheckSeconds: number;
  /**
   * Give up on an S3 request that has not answered in this long (per attempt, two attempts), so a
   * cold start with S3 unreachable answers 503 quickly instead of hanging until the Lambda timeout.
   */
  readonly s3TimeoutMs?: number;
  /** `auto`: small dense models run without tfjs (see fast-path.ts); `off`: every model on tfjs. */
  readonly fastPath?: 'auto' | 'off';
  readonly limits: Limits;
}

/** The function's S3 client: timeouts per attempt, and attempts per request (S3ObjectReader's settings). */
export function s3ClientSettings(config: InferenceConfig): {
  readonly connectionTimeoutMs: number;
  readonly requestTimeoutMs: number;
  readonly maxAttempts: number;
} {
  return { connectionTimeoutMs: 2_000, requestTimeoutMs: config.s3TimeoutMs ?? 3_000, maxAttempts: 2 };
}

/**
 * The longest a failing alias re-check can take while the function runs: every attempt's
 * timeouts, end to end. One that failed later was frozen by Lambda (InferenceOptions.recheckLimitMs).
 */
export function recheckLimitMs(config: InferenceConfig): number {
  const s3 = s3ClientSettings(config);
  return s3.maxAttempts * (s3.connectionTimeoutMs + s3.requestTimeoutMs);
}

function positiveInt(env: NodeJS.ProcessEnv, key: string, fallback: number): number {
  const raw = env[key];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0)
    throw new ConfigurationError(`${key} must be a positive number, got "${raw}"`);
  return value;
}

/**
 * Reads AIAAS_BUCKET, AIAAS_MODEL, AIAAS_ALIAS (default live), AIAAS_ALIAS_CHECK_SECONDS (default 60),
 * AIAAS_S3_ENDPOINT, AIAAS_S3_TIMEOUT_MS (default 3000), AIAAS_FAST_PATH (auto or off, default auto),
 * AIAAS_MAX_INSTANCES, AIAAS_MAX_ELEMENTS.
 */
export function configFromEnv(env: NodeJS.ProcessEnv = process.env): InferenceConfig {
  const bucket = env.AIAAS_BUCKET;
  if (!bucket) throw new ConfigurationError('AIAAS_BUCKET is not set');
  if (!env.AIAAS_MODEL) throw new ConfigurationError('AIAAS_MODEL is not set');
  const fastPath = env.AIAAS_FAST_PATH || 'auto';
  if (fastPath !== 'auto' && fastPath !== 'off')
    throw new ConfigurationError(`AIAAS_FAST_PATH must be auto or off, got "${fastPath}"`);
  return {
    bucket,
    model: assertModelName(env.AIAAS_MODEL),
    alias: assertAliasName(env.AIAAS_ALIAS || DEFAULT_ALIAS),
    ...(env.AIAAS_S3_ENDPOINT ? { endpoint: env.AIAAS_S3_ENDPOINT } : {}),
    aliasCheckSeconds: positiveInt(env, 'AIAAS_ALIAS_CHECK_SECONDS', 60),
    s3TimeoutMs: positiveInt(env, 'AIAAS_S3_TIMEOUT_MS', 3_000),
    fastPath,
    limits: {
      maxInstances: positiveInt(env, 'AIAAS_MAX_INSTANCES', DEFAULT_LIMITS.maxInstances),
      maxElements: positiveInt(env, 'AIAAS_MAX_ELEMENTS', DEFAULT_LIMITS.maxElements),
      maxBodyBytes: DEFAULT_LIMITS.maxBodyBytes,
    },
  };
}
