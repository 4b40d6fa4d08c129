import { Duration, IgnoreMode } from 'aws-cdk-lib';
import type { IAlarmAction } from 'aws-cdk-lib/aws-cloudwatch';
import { Platform } from 'aws-cdk-lib/aws-ecr-assets';
import type { Grant, Role } from 'aws-cdk-lib/aws-iam';
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
import type { IBucket } from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import {
  AIAAS_ALIAS,
  AIAAS_ALIAS_CHECK_SECONDS,
  AIAAS_BUCKET,
  AIAAS_FAST_PATH,
  AIAAS_MODEL,
  AIAAS_RUNTIME,
  AIAAS_RUNTIME_MODULE,
  DEFAULT_ALIAS_CHECK_SECONDS,
} from '../../functions/shared/env.js';
import { NATIVE_IMAGE } from '../../scripts/build/options.js';
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
import { RegistryGrants } from './registry-grants.js';
import { TfjsRuntimeLayer } from './tfjs-runtime-layer.js';

/**
 * How the inference code is packaged. `wasm`: a zip function (esbuild bundle) running tfjs from the
 * runtime layer on the WebAssembly backend. `native`: a container image with @tensorflow/tfjs-node,
 * built from `functions/inference/native/Dockerfile` at deploy time (it needs no layer).
 */
export type InferenceRuntime =
  | { readonly kind: 'wasm'; readonly layer: TfjsRuntimeLayer }
  | { readonly kind: 'native' };

/** The manifest's `runtime`: `wasm` or `native`. */
export type ModelRuntime = InferenceRuntime['kind'];

/**
 * IAM-authenticated function URL: every request is signed with SigV4 by a caller holding
 * `lambda:InvokeFunctionUrl` and `lambda:InvokeFunction` on the alias.
 */
export interface IamAccess {
  readonly authType: FunctionUrlAuthType.AWS_IAM;
  /**
   * Concurrency reserved for (and capping) this function. Reserving guarantees the function that
   * many concurrent executions and caps it there, but takes them from the account's pool whether
   * used or not (Lambda keeps part of the quota unreserved: 100 of the default 1,000; an account
   * with a small quota may reserve nothing).
   *
   * @default - unreserved: the function shares the account's unreserved concurrency
   */
  readonly reservedConcurrency?: number;
}

/**
 * A public function URL (auth `NONE`): anyone on the internet may call the model, so use it
 * knowingly (a browser demo, say). Its web origins and its concurrency are bounded explicitly,
 * never by default.
 */
export interface PublicAccess {
  readonly authType: FunctionUrlAuthType.NONE;
  /** CORS of the function URL; `allowedOrigins` lists its web origins (no `*`). */
  readonly cors: FunctionUrlCorsOptions;
  /**
   * Concurrency reserved for and capping this function: what anyone on the internet can run at
   * once (taken from the account's pool whether used or not).
   */
  readonly reservedConcurrency: number;
}

/** Who may call the function URL, and (for a public URL, necessarily) how many at once. */
export type ModelAccess = IamAccess | PublicAccess;

export interface ModelFunctionProps {
  /** The model's name in the registry (`models/<name>/`). */
  readonly modelName: string;
  /**
   * The registry bucket. When it belongs to another stack, import it by name in this one
   * (`Bucket.fromBucketName`), as ModelStack does, so no cross-stack export ties the two stacks.
   */
  readonly registryBucket: IBucket;
  /** How the inference code is packaged: `{ kind: 'wasm', layer }` or `{ kind: 'native' }`. */
  readonly runtime: InferenceRuntime;
  /**
   * Registry alias served, and name of the Lambda alias the function URL points to.
   *
   * @default 'live'
   */
  readonly aliasName?: string;
  /**
   * Memory of the function in MiB (Lambda allots CPU in proportion).
   *
   * @default 1024
   */
  readonly memorySize?: number;
  /**
   * How long one invocation may run.
   *
   * @default Duration.seconds(30)
   */
  readonly timeout?: Duration;
  /**
   * Provisioned concurrency on the alias (pre-initialized environments, billed while allocated).
   *
   * @default - none: environments start on demand
   */
  readonly provisionedConcurrency?: number;
  /**
   * Who may call the function URL: IAM-signed callers (`IamAccess`, optionally with reserved
   * concurrency), or anyone from the listed web origins with a concurrency cap (`PublicAccess`).
   *
   * @default - IAM-signed callers only, no CORS headers, concurrency unreserved
   */
  readonly access?: ModelAccess;
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
   * How long the function's logs are kept.
   *
   * @default RetentionDays.ONE_MONTH
   */
  readonly logRetention?: RetentionDays;
  /**
   * Lowest level logged, by Powertools and by Lambda's application log filter.
   *
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
   * @default - 80% of the timeout
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
  /** The role's registry access: the served alias's pointer and the model's versions (RegistryGrants.serve). */
  readonly registryGrant: Grant;

  constructor(scope: Construct, id: string, props: ModelFunctionProps) {
    super(scope, id);
    const runtime = props.runtime;
    const aliasName = props.aliasName ?? 'live';
    const timeout = props.timeout ?? Duration.seconds(30);
    const access: ModelAccess = props.access ?? { authType: FunctionUrlAuthType.AWS_IAM };
    const logLevel = props.logLevel ?? 'INFO';
    // The types already say this; checked again for JavaScript callers and casts.
    checkAccess(props.modelName, access);
    assertFunctionUrlRegion(this, `Model "${props.modelName}"`);
    if (runtime.kind === 'wasm' && !runtime.layer) {
      throw new Error(`Model "${props.modelName}": the wasm runtime needs its layer`);
    }

    this.role = functionRole(this, 'Role', `aiaas inference for model ${props.modelName}`);
    this.logGroup = functionLogGroup(this, 'Logs', props.logRetention ?? DEFAULT_LOG_RETENTION, this.role);
    this.registryGrant = RegistryGrants.fromBucket(props.registryBucket).serve(
      this.role,
      props.modelName,
      aliasName,
    );

    const environment: Record<string, string> = {
      [AIAAS_BUCKET]: props.registryBucket.bucketName,
      [AIAAS_MODEL]: props.modelName,
      [AIAAS_ALIAS]: aliasName,
      [AIAAS_ALIAS_CHECK_SECONDS]: String(
        (props.aliasCheckInterval ?? Duration.seconds(DEFAULT_ALIAS_CHECK_SECONDS)).toSeconds(),
      ),
      [AIAAS_RUNTIME]: runtime.kind,
      [AIAAS_FAST_PATH]: props.fastPath ?? 'auto',
      // The native image puts the same module at the same path (functions/inference/native/Dockerfile).
      [AIAAS_RUNTIME_MODULE]: TfjsRuntimeLayer.MODULE_PATH,
      POWERTOOLS_SERVICE_NAME: props.serviceName ?? `aiaas-${props.modelName}`,
      POWERTOOLS_METRICS_NAMESPACE: props.metricsNamespace ?? 'aiaas',
      POWERTOOLS_LOG_LEVEL: logLevel,
      // No --enable-source-maps: Node would read and parse the 0.6 MB map at every cold start
      // (~3.5 ms, measured). The handler maps an unexpected error's stack itself, from the same
      // map, only when it logs one (functions/shared/stack.ts).
    };
    const common = {
      description: `aiaas inference: model ${props.modelName} (alias ${aliasName}, ${runtime.kind})`,
      architecture: Architecture.ARM_64,
      memorySize: props.memorySize ?? 1024,
      timeout,
      role: this.role,
      logGroup: this.logGroup,
      loggingFormat: LoggingFormat.JSON,
      applicationLogLevelV2: APPLICATION_LOG_LEVEL[logLevel],
      systemLogLevelV2: SystemLogLevel.INFO,
      environment,
      ...(access.reservedConcurrency !== undefined
        ? { reservedConcurrentExecutions: access.reservedConcurrency }
        : {}),
    };

    this.function =
      runtime.kind === 'native'
        ? new DockerImageFunction(this, 'Function', {
            ...common,
            // Built and pushed by `cdk deploy` only; synth just hashes the context (no Docker engine).
            code: DockerImageCode.fromImageAsset(paths.root, {
              file: paths.nativeDockerfile,
              platform: Platform.LINUX_ARM64,
              exclude: [...NATIVE_IMAGE.contextExclude],
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
            layers: [runtime.layer.layer],
            bundling: INFERENCE_BUNDLING,
          });

    const provisioned = props.provisionedConcurrency ?? 0;
    this.alias = new Alias(this, 'Alias', {
      aliasName,
      version: this.function.currentVersion,
      description: `Serves registry alias "${aliasName}" of model ${props.modelName}`,
      ...(provisioned > 0 ? { provisionedConcurrentExecutions: provisioned } : {}),
    });
    this.url = this.alias.addFunctionUrl(
      access.authType === FunctionUrlAuthType.NONE
        ? { authType: access.authType, cors: access.cors }
        : { authType: access.authType },
    );

    this.alarms = new FunctionAlarms(this, 'Alarms', {
      fn: this.function,
      subject: `aiaas model "${props.modelName}" inference`,
      p99Duration:
        props.p99DurationAlarmThreshold ?? Duration.millis(Math.floor(timeout.toMilliseconds() * 0.8)),
      ...(props.alarmActions ? { actions: props.alarmActions } : {}),
    });
  }
}

/** A public URL's browser origins and concurrency are bounded explicitly; CORS is for public URLs only. */
function checkAccess(modelName: string, access: ModelAccess): void {
  if (access.authType !== FunctionUrlAuthType.NONE) {
    if ('cors' in access) throw new Error(`Model "${modelName}": CORS is only for authType NONE`);
    return;
  }
  const origins = access.cors?.allowedOrigins;
  if (!origins?.length || origins.some((origin) => origin.includes('*'))) {
    throw new Error(
      `Model "${modelName}": authType NONE needs cors.allowedOrigins listing its web origins (no "*")`,
    );
  }
  if (access.reservedConcurrency === undefined) {
    throw new Error(`Model "${modelName}": authType NONE needs reservedConcurrency (a cap)`);
  }
}
