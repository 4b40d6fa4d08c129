import { Duration, IgnoreMode } from 'aws-cdk-lib';
import type { IAlarmAction } from 'aws-cdk-lib/aws-cloudwatch';
import { Platform } from 'aws-cdk-lib/aws-ecr-assets';
import type { Role } from 'aws-cdk-lib/aws-iam';
import {
  Alias,
  Architecture,
  DockerImageCode,
  DockerImageFunction,
  type FunctionUrl,
  FunctionUrlAuthType,
  type FunctionUrlCorsOptions,
  type Function as LambdaFunction,
  LoggingFormat,
  Runtime,
  SystemLogLevel,
} from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction } from 'aws-cdk-lib/aws-lambda-nodejs';
import type { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { paths } from '../paths.js';
import { FunctionAlarms } from './function-alarms.js';
import {
  APPLICATION_LOG_LEVEL,
  DEFAULT_LOG_RETENTION,
  type FunctionLogLevel,
  functionLogGroup,
  functionRole,
  INFERENCE_BUNDLING,
} from './function-defaults.js';
import { assertFunctionUrlRegion } from './function-url-regions.js';
import { grantRegistryAccess } from './registry-access.js';
import { TfjsRuntimeLayer } from './tfjs-runtime-layer.js';

/** `wasm`: zip function + the tfjs runtime layer; `native`: container image with @tensorflow/tfjs-node. */
export type ModelRuntime = 'wasm' | 'native';

/**
 * Files of the repository the native image is built from (Docker build context = repository
 * root); everything else is excluded so unrelated changes do not change the image hash.
 */
export const NATIVE_IMAGE_CONTEXT_EXCLUDE = [
  '*',
  '!package.json',
  '!package-lock.json',
  '!tsconfig.json',
  '!functions',
  '!layers',
  '!scripts',
  'scripts/*',
  '!scripts/lib',
  '**/*.test.ts',
  '**/README.md',
];

export interface ModelFunctionProps {
  /** The model's name in the registry (`models/<name>/`). */
  readonly modelName: string;
  /** Registry bucket name (plain or from pseudo parameters; not a cross-stack reference). */
  readonly bucketName: string;
  /**
   * The tfjs runtime layer. Required for the `wasm` runtime, ignored for `native`.
   *
   * @default - none
   */
  readonly runtimeLayer?: TfjsRuntimeLayer;
  /**
   * @default 'wasm'
   */
  readonly runtime?: ModelRuntime;
  /**
   * Registry alias served, and name of the Lambda alias the function URL points to.
   *
   * @default 'live'
   */
  readonly aliasName?: string;
  /**
   * @default 1024
   */
  readonly memorySize?: number;
  /**
   * @default Duration.seconds(30)
   */
  readonly timeout?: Duration;
  /**
   * Concurrency reserved for (and capping) this function. Reserving guarantees the function that
   * many concurrent executions and caps it there, but takes them from the account's pool whether
   * used or not (Lambda keeps part of the quota unreserved: 100 of the default 1,000; an account
   * with a small quota may reserve nothing). Required with `authType: NONE`, where it bounds what
   * anyone on the internet can run at once.
   *
   * @default - unreserved: shares the account's unreserved concurrency
   */
  readonly reservedConcurrency?: number;
  /**
   * Provisioned concurrency on the alias (pre-initialized environments, billed while allocated).
   *
   * @default 0 - none
   */
  readonly provisionedConcurrency?: number;
  /**
   * Function URL auth. `NONE` makes the model callable by anyone on the internet; only use it
   * knowingly (e.g. for a browser demo), with `cors` naming its origins and `reservedConcurrency`.
   *
   * @default FunctionUrlAuthType.AWS_IAM
   */
  readonly authType?: FunctionUrlAuthType;
  /**
   * CORS of the function URL. Only with `authType: NONE` (IAM-signed calls come from servers).
   *
   * @default - no CORS headers
   */
  readonly cors?: FunctionUrlCorsOptions;
  /**
   * How often the function re-checks the registry alias for a new version.
   *
   * @default Duration.seconds(60)
   */
  readonly aliasCheckInterval?: Duration;
  /**
   * `auto`: a small dense model (up to 65,536 weights, dense layers and activations only) is served
   * by aiaas's fast path without loading tfjs; any other model runs on tfjs. `off`: always tfjs.
   *
   * @default 'auto'
   */
  readonly fastPath?: 'auto' | 'off';
  /**
   * @default RetentionDays.ONE_MONTH
   */
  readonly logRetention?: RetentionDays;
  /**
   * @default 'INFO'
   */
  readonly logLevel?: FunctionLogLevel;
  /**
   * Powertools service name (log field `service`, metric dimension `service`).
   *
   * @default `aiaas-<modelName>`
   */
  readonly serviceName?: string;
  /**
   * CloudWatch namespace of the EMF metrics.
   *
   * @default 'aiaas'
   */
  readonly metricsNamespace?: string;
  /**
   * p99 duration that raises the latency alarm.
   *
   * @default 80% of the timeout
   */
  readonly p99DurationAlarmThreshold?: Duration;
  /**
   * Where alarms are sent.
   *
   * @default - no actions
   */
  readonly alarmActions?: readonly IAlarmAction[];
}

/**
 * One model's inference function: ARM64 on Node.js 24 (zip + tfjs runtime layer, or a container
 * image with tfjs-node), its own role that may read only `models/<name>/`, a log group with
 * retention, a published version behind an alias, the function URL on that alias, and alarms.
 */
export class ModelFunction extends Construct {
  readonly function: LambdaFunction;
  readonly alias: Alias;
  readonly url: FunctionUrl;
  readonly role: Role;
  readonly logGroup: LogGroup;
  readonly alarms: FunctionAlarms;

  constructor(scope: Construct, id: string, props: ModelFunctionProps) {
    super(scope, id);
    const runtime = props.runtime ?? 'wasm';
    const aliasName = props.aliasName ?? 'live';
    const timeout = props.timeout ?? Duration.seconds(30);
    const authType = props.authType ?? FunctionUrlAuthType.AWS_IAM;
    const logLevel = props.logLevel ?? 'INFO';
    if (props.cors && authType !== FunctionUrlAuthType.NONE) {
      throw new Error(`Model "${props.modelName}": CORS is only for authType NONE`);
    }
    if (authType === FunctionUrlAuthType.NONE) {
      // A public URL: its browser origins and its concurrency are bounded explicitly, never by default.
      if (!props.cors?.allowedOrigins?.length || props.cors.allowedOrigins.some((o) => o.includes('*'))) {
        throw new Error(
          `Model "${props.modelName}": authType NONE needs cors.allowedOrigins listing its web origins (no "*")`,
        );
      }
      if (props.reservedConcurrency === undefined) {
        throw new Error(`Model "${props.modelName}": authType NONE needs reservedConcurrency (a cap)`);
      }
    }
    assertFunctionUrlRegion(this, `Model "${props.modelName}"`);
    if (runtime === 'wasm' && !props.runtimeLayer) {
      throw new Error(`Model "${props.modelName}": the wasm runtime needs runtimeLayer`);
    }

    this.role = functionRole(this, 'Role', `aiaas inference for model ${props.modelName}`);
    this.logGroup = functionLogGroup(this, 'Logs', props.logRetention ?? DEFAULT_LOG_RETENTION, this.role);
    // Serving reads the alias pointer and version files only (not other aliases, history or claims).
    grantRegistryAccess(this.role, {
      bucketName: props.bucketName,
      read: [`models/${props.modelName}/versions/`],
      readKeys: [`models/${props.modelName}/aliases/${aliasName}.json`],
    });

    const environment: Record<string, string> = {
      AIAAS_BUCKET: props.bucketName,
      AIAAS_MODEL: props.modelName,
      AIAAS_ALIAS: aliasName,
      AIAAS_ALIAS_CHECK_SECONDS: String((props.aliasCheckInterval ?? Duration.seconds(60)).toSeconds()),
      AIAAS_RUNTIME: runtime,
      AIAAS_FAST_PATH: props.fastPath ?? 'auto',
      // The native image puts the same module at the same path (functions/inference/native/Dockerfile).
      AIAAS_RUNTIME_MODULE: TfjsRuntimeLayer.MODULE_PATH,
      POWERTOOLS_SERVICE_NAME: props.serviceName ?? `aiaas-${props.modelName}`,
      POWERTOOLS_METRICS_NAMESPACE: props.metricsNamespace ?? 'aiaas',
      POWERTOOLS_LOG_LEVEL: logLevel,
      // No --enable-source-maps: Node would read and parse the 0.6 MB map at every cold start
      // (~3.5 ms, measured). The handler maps an unexpected error's stack itself, from the same
      // map, only when it logs one (functions/shared/stack.ts).
    };
    const common = {
      description: `aiaas inference: model ${props.modelName} (alias ${aliasName}, ${runtime})`,
      architecture: Architecture.ARM_64,
      memorySize: props.memorySize ?? 1024,
      timeout,
      role: this.role,
      logGroup: this.logGroup,
      loggingFormat: LoggingFormat.JSON,
      applicationLogLevelV2: APPLICATION_LOG_LEVEL[logLevel],
      systemLogLevelV2: SystemLogLevel.INFO,
      environment,
      ...(props.reservedConcurrency !== undefined
        ? { reservedConcurrentExecutions: props.reservedConcurrency }
        : {}),
    };

    this.function =
      runtime === 'native'
        ? new DockerImageFunction(this, 'Function', {
            ...common,
            // Built and pushed by `cdk deploy` only; synth just hashes the context (no Docker engine).
            code: DockerImageCode.fromImageAsset(paths.root, {
              file: paths.nativeDockerfile,
              platform: Platform.LINUX_ARM64,
              exclude: NATIVE_IMAGE_CONTEXT_EXCLUDE,
              ignoreMode: IgnoreMode.DOCKER,
            }),
          })
        : new NodejsFunction(this, 'Function', {
            ...common,
            entry: paths.inferenceEntry,
            handler: 'handler',
            runtime: Runtime.NODEJS_24_X,
            projectRoot: paths.root,
            depsLockFilePath: paths.lockFile,
            layers: [props.runtimeLayer!.layer],
            bundling: INFERENCE_BUNDLING,
          });

    const provisioned = props.provisionedConcurrency ?? 0;
    this.alias = new Alias(this, 'Alias', {
      aliasName,
      version: this.function.currentVersion,
      description: `Serves registry alias "${aliasName}" of model ${props.modelName}`,
      ...(provisioned > 0 ? { provisionedConcurrentExecutions: provisioned } : {}),
    });
    this.url = this.alias.addFunctionUrl({ authType, ...(props.cors ? { cors: props.cors } : {}) });

    this.alarms = new FunctionAlarms(this, 'Alarms', {
      fn: this.function,
      subject: `aiaas model "${props.modelName}" inference`,
      p99Duration:
        props.p99DurationAlarmThreshold ?? Duration.millis(Math.floor(timeout.toMilliseconds() * 0.8)),
      ...(props.alarmActions ? { actions: props.alarmActions } : {}),
    });
  }
}
