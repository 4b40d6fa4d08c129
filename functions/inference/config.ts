/**
 * The inference function's configuration, read once from its environment (functions/shared/env.ts
 * names every variable): which model and alias it serves, the registry, the per-request limits and
 * the S3 client's timeouts. A missing or unusable value is a ConfigurationError naming it.
 */
import {
  AIAAS_ALIAS,
  AIAAS_ALIAS_CHECK_SECONDS,
  AIAAS_BUCKET,
  AIAAS_FAST_PATH,
  AIAAS_MAX_ELEMENTS,
  AIAAS_MAX_INSTANCES,
  AIAAS_MODEL,
  AIAAS_S3_ENDPOINT,
  AIAAS_S3_TIMEOUT_MS,
  AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
  DEFAULT_ALIAS_CHECK_SECONDS,
  DEFAULT_S3_TIMEOUT_MS,
  type Environment,
  readChoice,
  readPositiveNumber,
  readString,
  requireString,
} from '../shared/env.js';
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
  /**
   * The function's memory (Lambda sets AWS_LAMBDA_FUNCTION_MEMORY_SIZE): a canary or shadow version
   * that would not fit beside the live one is not loaded. @default no limit (the local stack)
   */
  readonly memoryMiB?: number;
}

/** The function's S3 client: timeouts per attempt, and attempts per request (S3ObjectReader's settings). */
export function s3ClientSettings(config: InferenceConfig): {
  readonly connectionTimeoutMs: number;
  readonly requestTimeoutMs: number;
  readonly maxAttempts: number;
} {
  return {
    connectionTimeoutMs: 2_000,
    requestTimeoutMs: config.s3TimeoutMs ?? DEFAULT_S3_TIMEOUT_MS,
    maxAttempts: 2,
  };
}

/**
 * The longest a failing alias re-check can take while the function runs: every attempt's
 * timeouts, end to end. One that failed later was frozen by Lambda (InferenceOptions.recheckLimitMs).
 */
export function recheckLimitMs(config: InferenceConfig): number {
  const s3 = s3ClientSettings(config);
  return s3.maxAttempts * (s3.connectionTimeoutMs + s3.requestTimeoutMs);
}

/**
 * The inference function's variables (see shared/env.ts for each one's meaning and default); a
 * missing or unusable one is a ConfigurationError naming it.
 */
export function configFromEnv(env: Environment = process.env): InferenceConfig {
  const bucket = requireString(env, AIAAS_BUCKET);
  const model = requireString(env, AIAAS_MODEL);
  const fastPath = readChoice(env, AIAAS_FAST_PATH, ['auto', 'off'], 'auto');
  const endpoint = readString(env, AIAAS_S3_ENDPOINT);
  const memory = readString(env, AWS_LAMBDA_FUNCTION_MEMORY_SIZE);
  return {
    bucket,
    model: assertModelName(model),
    alias: assertAliasName(readString(env, AIAAS_ALIAS) ?? DEFAULT_ALIAS),
    ...(endpoint ? { endpoint } : {}),
    aliasCheckSeconds: readPositiveNumber(env, AIAAS_ALIAS_CHECK_SECONDS, DEFAULT_ALIAS_CHECK_SECONDS),
    s3TimeoutMs: readPositiveNumber(env, AIAAS_S3_TIMEOUT_MS, DEFAULT_S3_TIMEOUT_MS),
    fastPath,
    limits: {
      maxInstances: readPositiveNumber(env, AIAAS_MAX_INSTANCES, DEFAULT_LIMITS.maxInstances),
      maxElements: readPositiveNumber(env, AIAAS_MAX_ELEMENTS, DEFAULT_LIMITS.maxElements),
      maxBodyBytes: DEFAULT_LIMITS.maxBodyBytes,
    },
    ...(memory !== undefined
      ? { memoryMiB: readPositiveNumber(env, AWS_LAMBDA_FUNCTION_MEMORY_SIZE, 0) }
      : {}),
  };
}
