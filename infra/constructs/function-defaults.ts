import { RemovalPolicy } from 'aws-cdk-lib';
import { Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { ApplicationLogLevel } from 'aws-cdk-lib/aws-lambda';
import { type BundlingOptions, LogLevel, OutputFormat, SourceMapMode } from 'aws-cdk-lib/aws-lambda-nodejs';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';
import { AIAAS_BUCKET, AIAAS_MODEL_SPEC } from '../../functions/shared/env.js';
import {
  EXTERNAL_MODULES,
  FUNCTION_MAIN_FIELDS,
  FUNCTION_TARGET,
  INFERENCE_BUILD,
  REQUIRE_SHIM,
} from '../../scripts/build/options.js';

/** Log levels shared by Powertools (`POWERTOOLS_LOG_LEVEL`) and Lambda's application log filter. */
export type FunctionLogLevel = 'DEBUG' | 'INFO' | 'WARN' | 'ERROR';

export const APPLICATION_LOG_LEVEL: Record<FunctionLogLevel, ApplicationLogLevel> = {
  DEBUG: ApplicationLogLevel.DEBUG,
  INFO: ApplicationLogLevel.INFO,
  WARN: ApplicationLogLevel.WARN,
  ERROR: ApplicationLogLevel.ERROR,
};

export const DEFAULT_LOG_RETENTION = RetentionDays.ONE_MONTH;

/** Lambda's limit on the total size of a function's environment variables. */
export const ENVIRONMENT_LIMIT_BYTES = 4096;

/**
 * Refuses at synth what Lambda would refuse at deploy: a function environment over
 * ENVIRONMENT_LIMIT_BYTES, which a long manifest entry (AIAAS_MODEL_SPEC) makes. `role` names the
 * function ("rollout", "retraining"). The bucket name may be a token: it counts at its maximum
 * length (63).
 */
export function assertEnvironmentFits(
  environment: Readonly<Record<string, string>>,
  role: string,
  modelName: string,
): void {
  const size = Object.entries(environment).reduce(
    (total, [key, value]) => total + key.length + (key === AIAAS_BUCKET ? 63 : Buffer.byteLength(value)),
    0,
  );
  if (size > ENVIRONMENT_LIMIT_BYTES) {
    throw new Error(
      `Model "${modelName}": the ${role} function's environment would be ${size} bytes (Lambda allows ${ENVIRONMENT_LIMIT_BYTES}); shorten the manifest entry (${AIAAS_MODEL_SPEC} is ${(environment[AIAAS_MODEL_SPEC] ?? '').length} bytes)`,
    );
  }
}

/**
 * esbuild options of every function bundle, from `scripts/build/options.ts` as `npm run build`
 * uses them: ESM, minified, linked source maps, the createRequire banner for CommonJS
 * dependencies. The tfjs runtime is not bundled (it is the layer, loaded from /opt at run time),
 * nor is @tensorflow/tfjs-node (only in the native image). The AWS SDK is bundled, pinned by our
 * lock file rather than whatever the managed runtime ships. Local esbuild only, never Docker.
 */
export const FUNCTION_BUNDLING: BundlingOptions = {
  format: OutputFormat.ESM,
  target: FUNCTION_TARGET,
  minify: true,
  sourceMap: true,
  sourceMapMode: SourceMapMode.DEFAULT,
  sourcesContent: false,
  mainFields: [...FUNCTION_MAIN_FIELDS],
  banner: REQUIRE_SHIM,
  externalModules: [...EXTERNAL_MODULES],
  logLevel: LogLevel.ERROR,
  forceDockerBundling: false,
};

/** FUNCTION_BUNDLING plus what the inference bundle does for its cold start (`INFERENCE_BUILD`, as `npm run build` does). */
export const INFERENCE_BUNDLING: BundlingOptions = {
  ...FUNCTION_BUNDLING,
  define: { ...INFERENCE_BUILD.define },
  esbuildArgs: Object.fromEntries(
    Object.entries(INFERENCE_BUILD.alias).map(([from, to]): [string, string] => [`--alias:${from}`, to]),
  ),
};

/**
 * A function role with no managed policies: it may write to its own log group and nothing else
 * until granted more (see RegistryGrants).
 */
export function functionRole(scope: Construct, id: string, description: string): Role {
  return new Role(scope, id, { assumedBy: new ServicePrincipal('lambda.amazonaws.com'), description });
}

/** The function's log group, with retention; kept when the stack is deleted (the audit trail). */
export function functionLogGroup(
  scope: Construct,
  id: string,
  retention: RetentionDays,
  role: Role,
): LogGroup {
  const logGroup = new LogGroup(scope, id, { retention, removalPolicy: RemovalPolicy.RETAIN });
  logGroup.grantWrite(role);
  return logGroup;
}
