/**
 * The environment contract: every `AIAAS_*` variable, named here once, with what it holds, its
 * default, who writes it and who reads it. Infra writes these names into function environments;
 * the functions, the CLI, the local stack and the tools read them; all of them through the
 * constants below, so a name is spelt in this file only (tests may spell them, the README documents
 * them). Read a variable with the readers at the end: an empty value counts as unset, and a value
 * that cannot be used is a ConfigurationError naming the variable and what is wrong with it.
 *
 * Each constant is named as its variable, so a search for the name finds every writer and reader.
 */
import { ConfigurationError } from './errors.js';

// ---- Read by the functions (written by infra/constructs, the local stack and the tools) ----------

/**
 * Registry bucket. Required by both functions; the CLI talks to it when set (else to the local
 * stack). Written by ModelFunction, RetrainingFunction and the local stack (localFunctionEnv).
 */
export const AIAAS_BUCKET = 'AIAAS_BUCKET';
/** An S3-compatible endpoint instead of AWS S3 (functions, CLI). Written by the local stack. @default AWS S3 */
export const AIAAS_S3_ENDPOINT = 'AIAAS_S3_ENDPOINT';
/** The model a function serves or retrains (a registry model name). Required by both functions. */
export const AIAAS_MODEL = 'AIAAS_MODEL';
/** The registry alias the inference function serves. @default 'live' (DEFAULT_ALIAS) */
export const AIAAS_ALIAS = 'AIAAS_ALIAS';
/**
 * Seconds between the inference function's alias re-checks (a positive number), written by
 * ModelFunction from the manifest's `aliasCheckSeconds`; `npm start` reads it for its functions.
 * @default 60 deployed (DEFAULT_ALIAS_CHECK_SECONDS), 2 under `npm start` (LOCAL_ALIAS_CHECK_SECONDS)
 */
export const AIAAS_ALIAS_CHECK_SECONDS = 'AIAAS_ALIAS_CHECK_SECONDS';
/** Per-attempt timeout of the inference function's S3 requests, in ms (positive). @default 3000 */
export const AIAAS_S3_TIMEOUT_MS = 'AIAAS_S3_TIMEOUT_MS';
/** `auto`: small dense models are served without tfjs; `off`: every model on tfjs (inference). @default 'auto' */
export const AIAAS_FAST_PATH = 'AIAAS_FAST_PATH';
/** Instances per predict request (inference; positive). @default 10,000 (DEFAULT_LIMITS) */
export const AIAAS_MAX_INSTANCES = 'AIAAS_MAX_INSTANCES';
/** Numbers per predict request, all inputs (inference; positive). @default 1,000,000 (DEFAULT_LIMITS) */
export const AIAAS_MAX_ELEMENTS = 'AIAAS_MAX_ELEMENTS';
/** The model's manifest entry as JSON (retraining function; required). Written by RetrainingFunction. */
export const AIAAS_MODEL_SPEC = 'AIAAS_MODEL_SPEC';
/**
 * The tfjs backend a function asks for: `auto` (native, then wasm, then cpu), `native`, `wasm` or
 * `cpu` (both functions, runtime/load.ts). Written by ModelFunction and the native image.
 * @default 'auto'
 */
export const AIAAS_RUNTIME = 'AIAAS_RUNTIME';
/**
 * Path of the tfjs runtime module (runtime/load.ts). Written by both constructs and the native
 * image (TfjsRuntimeLayer.MODULE_PATH). @default the layer at /opt, else the local build in dist/
 */
export const AIAAS_RUNTIME_MODULE = 'AIAAS_RUNTIME_MODULE';
/** Folder of the wasm backend's .wasm files (runtime/load.ts, the runtime module). @default the runtime module's folder */
export const AIAAS_WASM_DIR = 'AIAAS_WASM_DIR';
/** Who acts, recorded in version metadata and alias history (the registry). @default $USER, else 'aiaas' */
export const AIAAS_ACTOR = 'AIAAS_ACTOR';

// ---- Read by the CLI, the CDK app and `npm start` --------------------------------------------

/** Largest Keras weights / .keras archive the CLI reads when publishing, in bytes. @default 2 GiB (DEFAULT_KERAS_LIMITS) */
export const AIAAS_KERAS_MAX_BYTES = 'AIAAS_KERAS_MAX_BYTES';
/** Another manifest (CDK app, CLI, `npm start`). @default models/manifest.json */
export const AIAAS_MANIFEST = 'AIAAS_MANIFEST';
/** CDK app (or `-c existingBucketName`): adopt this registry bucket instead of creating one. */
export const AIAAS_EXISTING_BUCKET = 'AIAAS_EXISTING_BUCKET';
/** CDK app (or `-c bucketName`): name of the registry bucket to create. @default <app>-registry-<account>-<region> */
export const AIAAS_BUCKET_NAME = 'AIAAS_BUCKET_NAME';
/** CDK app (or `-c alarmTopicArn`): SNS topic every alarm notifies. @default alarms without actions */
export const AIAAS_ALARM_TOPIC_ARN = 'AIAAS_ALARM_TOPIC_ARN';
/** `npm start`: port of the local S3-compatible registry (0: any free port). @default 4569 (DEFAULT_S3_PORT) */
export const AIAAS_S3_PORT = 'AIAAS_S3_PORT';
/** `npm start`: where the local registry keeps its objects. @default .local/s3 */
export const AIAAS_STATE_DIR = 'AIAAS_STATE_DIR';

// ---- Set by Lambda (not ours to write; read by the inference function) -------------------------

/** The function's configured memory in MiB: a canary or shadow that would not fit beside the live version is not loaded. */
export const AWS_LAMBDA_FUNCTION_MEMORY_SIZE = 'AWS_LAMBDA_FUNCTION_MEMORY_SIZE';

/** Every variable of the contract. */
export const AIAAS_VARIABLES = [
  AIAAS_BUCKET,
  AIAAS_S3_ENDPOINT,
  AIAAS_MODEL,
  AIAAS_ALIAS,
  AIAAS_ALIAS_CHECK_SECONDS,
  AIAAS_S3_TIMEOUT_MS,
  AIAAS_FAST_PATH,
  AIAAS_MAX_INSTANCES,
  AIAAS_MAX_ELEMENTS,
  AIAAS_MODEL_SPEC,
  AIAAS_RUNTIME,
  AIAAS_RUNTIME_MODULE,
  AIAAS_WASM_DIR,
  AIAAS_ACTOR,
  AIAAS_KERAS_MAX_BYTES,
  AIAAS_MANIFEST,
  AIAAS_EXISTING_BUCKET,
  AIAAS_BUCKET_NAME,
  AIAAS_ALARM_TOPIC_ARN,
  AIAAS_S3_PORT,
  AIAAS_STATE_DIR,
] as const;

// ---- Defaults that belong to the environment alone -------------------------------------------

export const DEFAULT_ALIAS_CHECK_SECONDS = 60;
/** `npm start` re-checks aliases often, so a promotion shows at once. */
export const LOCAL_ALIAS_CHECK_SECONDS = 2;
export const DEFAULT_S3_TIMEOUT_MS = 3_000;
export const DEFAULT_S3_PORT = 4569;

// ---- Readers ------------------------------------------------------------------------------------

/** process.env or any map like it (tests pass plain objects). */
export type Environment = Readonly<Record<string, string | undefined>>;

/** The variable's value; undefined when unset or empty. */
export function readString(env: Environment, name: string): string | undefined {
  const value = env[name];
  return value === undefined || value === '' ? undefined : value;
}

/** The variable's value; a ConfigurationError when unset or empty. */
export function requireString(env: Environment, name: string): string {
  const value = readString(env, name);
  if (value === undefined) throw new ConfigurationError(`${name} is not set`);
  return value;
}

/** A number above zero, or `fallback` when unset. */
export function readPositiveNumber(env: Environment, name: string, fallback: number): number {
  const raw = readString(env, name);
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0)
    throw new ConfigurationError(`${name} must be a positive number, got "${raw}"`);
  return value;
}

/** A TCP port (0 to 65535; 0 lets the system pick), or `fallback` when unset. */
export function readPort(env: Environment, name: string, fallback: number): number {
  const raw = readString(env, name);
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0 || value > 65_535)
    throw new ConfigurationError(`${name} must be a port number (0 to 65535), got "${raw}"`);
  return value;
}

/** One of `choices`, or `fallback` when unset: a misspelt value must not quietly mean another. */
export function readChoice<T extends string>(
  env: Environment,
  name: string,
  choices: readonly T[],
  fallback: T,
): T {
  const value = readString(env, name) ?? fallback;
  if (!(choices as readonly string[]).includes(value)) {
    const listed =
      choices.length > 1 ? `${choices.slice(0, -1).join(', ')} or ${choices.at(-1)}` : `${choices[0]}`;
    throw new ConfigurationError(`${name} must be ${listed}, got "${value}"`);
  }
  return value as T;
}
