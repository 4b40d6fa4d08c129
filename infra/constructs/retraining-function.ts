import { Aws, Duration } from 'aws-cdk-lib';
import type { IAlarmAction } from 'aws-cdk-lib/aws-cloudwatch';
import {
  type Grant,
  Role as IamRole,
  PolicyStatement,
  type Role,
  ServicePrincipal,
} from 'aws-cdk-lib/aws-iam';
import { Architecture, LoggingFormat, Runtime, SystemLogLevel } from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction } from 'aws-cdk-lib/aws-lambda-nodejs';
import type { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { IBucket } from 'aws-cdk-lib/aws-s3';
import { CfnSchedule } from 'aws-cdk-lib/aws-scheduler';
import { Construct } from 'constructs';
import {
  AIAAS_BUCKET,
  AIAAS_MODEL,
  AIAAS_MODEL_SPEC,
  AIAAS_RUNTIME_MODULE,
} from '../../functions/shared/env.js';
import { paths } from '../paths.js';
import { FunctionAlarms } from './function-alarms.js';
import {
  APPLICATION_LOG_LEVEL,
  assertEnvironmentFits,
  DEFAULT_LOG_RETENTION,
  FUNCTION_BUNDLING,
  type FunctionLogLevel,
  functionLogGroup,
  functionRole,
} from './function-defaults.js';
import { RegistryGrants } from './registry-grants.js';
import { TfjsRuntimeLayer } from './tfjs-runtime-layer.js';

export interface RetrainingFunctionProps {
  /** The model's name in the registry (`models/<name>/`). */
  readonly modelName: string;
  /**
   * The registry bucket. When it belongs to another stack, import it by name in this one
   * (`Bucket.fromBucketName`), as ModelStack does, so no cross-stack export ties the two stacks.
   */
  readonly registryBucket: IBucket;
  /** The tfjs runtime layer the function trains with (training always runs on tfjs). */
  readonly runtimeLayer: TfjsRuntimeLayer;
  /** EventBridge Scheduler expression: `rate(...)`, `cron(...)` or `at(...)`. */
  readonly schedule: string;
  /** The model's manifest entry, passed to the function as AIAAS_MODEL_SPEC (JSON). */
  readonly modelSpec: unknown;
  /**
   * Prefix of the training data, read-only.
   *
   * @default `datasets/<modelName>/`
   */
  readonly datasetPrefix?: string;
  /**
   * Time zone of a cron schedule.
   *
   * @default 'UTC'
   */
  readonly scheduleTimezone?: string;
  /**
   * The schedule may fire up to this much later, so that many models on the same schedule do not
   * all train in the same minute. `Duration.minutes(0)` fires exactly on time.
   *
   * @default Duration.minutes(15)
   */
  readonly flexibleWindow?: Duration;
  /**
   * Memory of the function in MiB (Lambda allots CPU in proportion).
   *
   * @default 2048
   */
  readonly memorySize?: number;
  /**
   * How long one training run may take (Lambda's maximum is 15 minutes).
   *
   * @default Duration.minutes(15)
   */
  readonly timeout?: Duration;
  /**
   * Concurrency reserved for (and capping) the function: 1 makes runs never overlap, at the cost
   * of taking one unit from the account's pool (an account that can reserve nothing, such as a new
   * one with a quota of 10, then rejects the stack).
   *
   * @default - unreserved: runs may overlap, which is safe (each publishes its own intact version;
   * each promotion is a compare-and-swap)
   */
  readonly reservedConcurrency?: number;
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
   * CloudWatch namespace of the EMF metrics.
   *
   * @default 'aiaas'
   */
  readonly metricsNamespace?: string;
  /**
   * Where the error alarm is sent.
   *
   * @default - no actions
   */
  readonly alarmActions?: readonly IAlarmAction[];
}

/**
 * A model's retraining function and its schedule. The function may read the model's dataset
 * prefix and read/write only `models/<name>/`; it runs one at a time only if asked to
 * (`reservedConcurrency: 1`), and is not retried by Lambda (a failed run waits for the next schedule, and the error alarm fires).
 * The schedule's role may invoke this function and nothing else.
 */
export class RetrainingFunction extends Construct {
  readonly function: NodejsFunction;
  readonly role: Role;
  readonly logGroup: LogGroup;
  readonly schedule: CfnSchedule;
  readonly schedulerRole: Role;
  readonly alarms: FunctionAlarms;
  /** The role's registry access: its dataset prefix and its model's root (RegistryGrants.retrain). */
  readonly registryGrant: Grant;

  constructor(scope: Construct, id: string, props: RetrainingFunctionProps) {
    super(scope, id);
    const datasetPrefix = props.datasetPrefix ?? `datasets/${props.modelName}/`;
    const logLevel = props.logLevel ?? 'INFO';
    const spec = JSON.stringify(props.modelSpec);

    this.role = functionRole(this, 'Role', `aiaas retraining for model ${props.modelName}`);
    this.logGroup = functionLogGroup(this, 'Logs', props.logRetention ?? DEFAULT_LOG_RETENTION, this.role);
    this.registryGrant = RegistryGrants.fromBucket(props.registryBucket).retrain(
      this.role,
      props.modelName,
      datasetPrefix,
    );

    const environment: Record<string, string> = {
      [AIAAS_BUCKET]: props.registryBucket.bucketName,
      [AIAAS_MODEL]: props.modelName,
      [AIAAS_MODEL_SPEC]: spec,
      [AIAAS_RUNTIME_MODULE]: TfjsRuntimeLayer.MODULE_PATH,
      POWERTOOLS_SERVICE_NAME: `aiaas-retrain-${props.modelName}`,
      POWERTOOLS_METRICS_NAMESPACE: props.metricsNamespace ?? 'aiaas',
      POWERTOOLS_LOG_LEVEL: logLevel,
      NODE_OPTIONS: '--enable-source-maps',
    };
    assertEnvironmentFits(environment, 'retraining', props.modelName);

    this.function = new NodejsFunction(this, 'Function', {
      description: `aiaas retraining: model ${props.modelName}`,
      entry: paths.retrainEntry,
      handler: 'handler',
      runtime: Runtime.NODEJS_24_X,
      architecture: Architecture.ARM_64,
      memorySize: props.memorySize ?? 2048,
      timeout: props.timeout ?? Duration.minutes(15),
      role: this.role,
      logGroup: this.logGroup,
      loggingFormat: LoggingFormat.JSON,
      applicationLogLevelV2: APPLICATION_LOG_LEVEL[logLevel],
      systemLogLevelV2: SystemLogLevel.INFO,
      environment,
      reservedConcurrentExecutions: props.reservedConcurrency,
      retryAttempts: 0,
      maxEventAge: Duration.hours(1),
      layers: [props.runtimeLayer.layer],
      projectRoot: paths.root,
      depsLockFilePath: paths.lockFile,
      bundling: FUNCTION_BUNDLING,
    });

    this.schedulerRole = new IamRole(this, 'SchedulerRole', {
      description: `EventBridge Scheduler: invoke the aiaas retraining function of model ${props.modelName}`,
      assumedBy: new ServicePrincipal('scheduler.amazonaws.com', {
        conditions: { StringEquals: { 'aws:SourceAccount': Aws.ACCOUNT_ID } },
      }),
    });
    this.schedulerRole.addToPrincipalPolicy(
      new PolicyStatement({
        sid: 'InvokeRetrainingFunction',
        actions: ['lambda:InvokeFunction'],
        resources: [this.function.functionArn],
      }),
    );

    const window = props.flexibleWindow ?? Duration.minutes(15);
    this.schedule = new CfnSchedule(this, 'Schedule', {
      description: `Retrain aiaas model ${props.modelName}`,
      scheduleExpression: props.schedule,
      scheduleExpressionTimezone: props.scheduleTimezone ?? 'UTC',
      state: 'ENABLED',
      flexibleTimeWindow:
        window.toMinutes() > 0
          ? { mode: 'FLEXIBLE', maximumWindowInMinutes: window.toMinutes() }
          : { mode: 'OFF' },
      target: {
        arn: this.function.functionArn,
        roleArn: this.schedulerRole.roleArn,
        input: JSON.stringify({ source: 'aiaas.schedule', model: props.modelName }),
        // Training is long and not worth repeating blindly: a failure waits for the next run.
        retryPolicy: { maximumRetryAttempts: 0, maximumEventAgeInSeconds: 3600 },
      },
    });
    // The role must exist with its policy before the schedule first fires.
    this.schedule.node.addDependency(this.schedulerRole);

    this.alarms = new FunctionAlarms(this, 'Alarms', {
      fn: this.function,
      subject: `aiaas model "${props.modelName}" retraining`,
      // A throttle is a run skipped because another one is still going (reserved concurrency) or the
      // account is at its limit: the error alarm and the next schedule cover it.
      throttles: false,
      ...(props.alarmActions ? { actions: props.alarmActions } : {}),
    });
  }
}
