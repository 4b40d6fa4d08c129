/**
 * What a model's scheduled functions (RetrainingFunction, RolloutFunction) share: their common
 * props, the function on a role and log group of its own (never retried by Lambda: the next
 * scheduled run is the retry), the role EventBridge Scheduler invokes it with (only schedules of
 * this account's default group may assume it), the dead-letter queue the schedule puts the runs it
 * could not start in, and the alarms (failed runs, undelivered runs).
 * Helpers rather than a construct, so each resource keeps its id in the caller's scope (and with
 * it its logical id and path).
 */
import { Aws, Duration, Stack } from 'aws-cdk-lib';
import { Alarm, ComparisonOperator, type IAlarmAction, TreatMissingData } from 'aws-cdk-lib/aws-cloudwatch';
import { PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import {
  Architecture,
  type IFunction,
  type ILayerVersion,
  LoggingFormat,
  Runtime,
  SystemLogLevel,
} from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction } from 'aws-cdk-lib/aws-lambda-nodejs';
import type { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { IBucket } from 'aws-cdk-lib/aws-s3';
import { type IQueue, Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import type { Construct } from 'constructs';
import { AIAAS_BUCKET, AIAAS_MODEL } from '../../functions/shared/env.js';
import { acknowledge } from '../nag.js';
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

/** Props every scheduled function of a model takes. */
export interface ScheduledFunctionProps {
  /** The model's name in the registry (`models/<name>/`). */
  readonly modelName: string;
  /**
   * The registry bucket. When it belongs to another stack, import it by name in this one
   * (`Bucket.fromBucketName`), as ModelStack does, so no cross-stack export ties the two stacks.
   */
  readonly registryBucket: IBucket;
  /** The model's manifest entry, passed to the function as AIAAS_MODEL_SPEC (JSON). */
  readonly modelSpec: unknown;
  /** When the function runs: an EventBridge Scheduler `rate(...)`, `cron(...)` or `at(...)` expression. */
  readonly schedule: string;
  /**
   * Time zone of a cron schedule.
   *
   * @default 'UTC'
   */
  readonly scheduleTimezone?: string;
  /**
   * Where the schedule puts the runs it could not start (the function missing, its invocation
   * refused or throttled beyond the retry policy). An alarm fires when a run lands there.
   *
   * @default - a queue of this construct: SQS-managed encryption, TLS only, messages kept 14 days
   */
  readonly deadLetterQueue?: IQueue;
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
   * Where the alarms are sent.
   *
   * @default - no actions
   */
  readonly alarmActions?: readonly IAlarmAction[];
}

/** Which scheduled function: names its scheduler role's policy, its alarms and its errors. */
export type ScheduledFunctionKind = 'retraining' | 'rollout';

/** What differs between the scheduled functions' Lambda functions. */
export interface ScheduledFunctionOptions {
  readonly kind: ScheduledFunctionKind;
  /** The function's description. */
  readonly description: string;
  /** The description of the function's role. */
  readonly roleDescription: string;
  /** The handler's source file (exporting `handler`). */
  readonly entry: string;
  readonly memorySize: number;
  readonly timeout: Duration;
  /** How long Lambda keeps trying to start a run it was handed. */
  readonly maxEventAge: Duration;
  /** Powertools' service name (POWERTOOLS_SERVICE_NAME). */
  readonly serviceName: string;
  /** CloudWatch namespace of its metrics (POWERTOOLS_METRICS_NAMESPACE). */
  readonly metricsNamespace: string;
  /**
   * The function's own environment variables, AIAAS_MODEL_SPEC among them, set after AIAAS_BUCKET
   * and AIAAS_MODEL.
   */
  readonly environment: Readonly<Record<string, string>>;
  /**
   * Layers of the function.
   *
   * @default - none
   */
  readonly layers?: ILayerVersion[];
  /**
   * Concurrency reserved for (and capping) the function.
   *
   * @default - unreserved
   */
  readonly reservedConcurrency?: number;
}

/** A scheduled function and the role and log group it alone uses. */
export interface ScheduledFunctionParts {
  /** The function's role: it may write its logs and nothing else until granted more. */
  readonly role: Role;
  readonly logGroup: LogGroup;
  readonly function: NodejsFunction;
}

/**
 * The function (`Function`), its role (`Role`) and log group (`Logs`) in `scope`. Lambda does not
 * retry a failed run: the next scheduled run is the retry. Throws when the environment would be
 * larger than Lambda allows.
 */
export function scheduledFunction(
  scope: Construct,
  props: ScheduledFunctionProps,
  options: ScheduledFunctionOptions,
): ScheduledFunctionParts {
  const logLevel = props.logLevel ?? 'INFO';
  const role = functionRole(scope, 'Role', options.roleDescription);
  const logGroup = functionLogGroup(scope, 'Logs', props.logRetention ?? DEFAULT_LOG_RETENTION, role);
  const environment: Record<string, string> = {
    [AIAAS_BUCKET]: props.registryBucket.bucketName,
    [AIAAS_MODEL]: props.modelName,
    ...options.environment,
    POWERTOOLS_SERVICE_NAME: options.serviceName,
    POWERTOOLS_METRICS_NAMESPACE: options.metricsNamespace,
    POWERTOOLS_LOG_LEVEL: logLevel,
    NODE_OPTIONS: '--enable-source-maps',
  };
  assertEnvironmentFits(environment, options.kind, props.modelName);
  const fn = new NodejsFunction(scope, 'Function', {
    description: options.description,
    entry: options.entry,
    handler: 'handler',
    runtime: Runtime.NODEJS_24_X,
    architecture: Architecture.ARM_64,
    memorySize: options.memorySize,
    timeout: options.timeout,
    role,
    logGroup,
    loggingFormat: LoggingFormat.JSON,
    applicationLogLevelV2: APPLICATION_LOG_LEVEL[logLevel],
    systemLogLevelV2: SystemLogLevel.INFO,
    environment,
    reservedConcurrentExecutions: options.reservedConcurrency,
    layers: options.layers,
    retryAttempts: 0,
    maxEventAge: options.maxEventAge,
    projectRoot: paths.root,
    depsLockFilePath: paths.lockFile,
    bundling: FUNCTION_BUNDLING,
  });
  return { role, logGroup, function: fn };
}

/** The group of every aiaas schedule: EventBridge Scheduler's own, which every account has. */
export const SCHEDULE_GROUP = 'default';

export interface SchedulerRoleOptions {
  readonly kind: ScheduledFunctionKind;
  readonly modelName: string;
  /** The function the schedule invokes. */
  readonly target: IFunction;
  /** Where the schedule sends the runs it could not start (undeliveredRunsQueue); the role may send to it. */
  readonly deadLetterQueue: IQueue;
  /**
   * Only schedules of this schedule group of this account may assume the role (aws:SourceArn with
   * aws:SourceAccount, Scheduler's confused-deputy guard).
   *
   * @default SCHEDULE_GROUP ('default'), where a schedule that names no group is
   */
  readonly scheduleGroup?: string;
}

/**
 * The role (`SchedulerRole` in `scope`) a schedule invokes the target with: assumed by EventBridge
 * Scheduler for schedules of this account's schedule group only; it may invoke that function (its
 * unqualified ARN, which the schedule targets) and send to the dead-letter queue, nothing more.
 * aws-scheduler-targets' LambdaInvoke would also grant `<function ARN>:*` (every version and
 * alias), a wildcard a schedule of the unqualified function never uses. The schedule should depend
 * on the role, so that the role exists with its policy before the schedule first fires.
 */
export function schedulerRole(scope: Construct, options: SchedulerRoleOptions): Role {
  const conditions: Record<string, string> = {
    'aws:SourceAccount': Aws.ACCOUNT_ID,
    'aws:SourceArn': Stack.of(scope).formatArn({
      service: 'scheduler',
      resource: 'schedule-group',
      resourceName: options.scheduleGroup ?? SCHEDULE_GROUP,
    }),
  };
  const role = new Role(scope, 'SchedulerRole', {
    description: `EventBridge Scheduler: invoke the aiaas ${options.kind} function of model ${options.modelName}`,
    assumedBy: new ServicePrincipal('scheduler.amazonaws.com', { conditions: { StringEquals: conditions } }),
  });
  role.addToPrincipalPolicy(
    new PolicyStatement({
      sid: options.kind === 'rollout' ? 'InvokeRolloutFunction' : 'InvokeRetrainingFunction',
      actions: ['lambda:InvokeFunction'],
      resources: [options.target.functionArn],
    }),
  );
  role.addToPrincipalPolicy(
    new PolicyStatement({
      sid: 'SendUndeliveredRuns',
      actions: ['sqs:SendMessage'],
      resources: [options.deadLetterQueue.queueArn],
    }),
  );
  return role;
}

/**
 * The dead-letter queue of the schedule: `props.deadLetterQueue`, else a queue of its own
 * (`UndeliveredRuns` in `scope`) with SQS-managed encryption, TLS only, messages kept 14 days.
 */
export function undeliveredRunsQueue(scope: Construct, props: ScheduledFunctionProps): IQueue {
  if (props.deadLetterQueue) return props.deadLetterQueue;
  const queue = new Queue(scope, 'UndeliveredRuns', {
    encryption: QueueEncryption.SQS_MANAGED,
    enforceSSL: true,
    retentionPeriod: Duration.days(14),
  });
  acknowledge(
    queue,
    'AwsSolutions-SQS3',
    'This queue is itself a dead-letter queue: the EventBridge Scheduler schedule of this construct sends it the runs it could not deliver (cdk-nag recognises only SQS redrive policies as DLQ use).',
  );
  return queue;
}

/**
 * The alarm (`UndeliveredRunsAlarm` in `scope`) on runs the schedule could not start: a message in
 * its dead-letter queue. Sent to `props.alarmActions`, as the function's alarms are.
 */
export function undeliveredRunsAlarm(
  scope: Construct,
  kind: ScheduledFunctionKind,
  queue: IQueue,
  props: ScheduledFunctionProps,
): Alarm {
  const alarm = new Alarm(scope, 'UndeliveredRunsAlarm', {
    metric: queue.metricApproximateNumberOfMessagesVisible({
      period: Duration.minutes(5),
      statistic: 'Maximum',
    }),
    threshold: 1,
    evaluationPeriods: 1,
    comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
    treatMissingData: TreatMissingData.NOT_BREACHING,
    alarmDescription: `aiaas model "${props.modelName}" ${kind}: the schedule could not start a run (see its dead-letter queue)`,
  });
  for (const action of props.alarmActions ?? []) {
    alarm.addAlarmAction(action);
    alarm.addOkAction(action);
  }
  return alarm;
}

/**
 * The function's alarms (`Alarms` in `scope`): its errors (a failed run). No throttle alarm: a
 * throttled run is one skipped (another still going, or the account at its concurrency limit), and
 * the next scheduled run comes anyway.
 */
export function scheduledFunctionAlarms(
  scope: Construct,
  kind: ScheduledFunctionKind,
  fn: IFunction,
  props: ScheduledFunctionProps,
): FunctionAlarms {
  return new FunctionAlarms(scope, 'Alarms', {
    fn,
    subject: `aiaas model "${props.modelName}" ${kind}`,
    throttles: false,
    ...(props.alarmActions ? { actions: props.alarmActions } : {}),
  });
}
