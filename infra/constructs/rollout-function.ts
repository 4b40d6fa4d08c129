/**
 * A model's rollout function, on an EventBridge Scheduler schedule: each run reads the figures of
 * the alias's live and canary versions (CloudWatch GetMetricData) and steps the canary's weight
 * up, promotes it or aborts it, each move an event in the alias history (functions/rollout/).
 * Its role reads metrics and moves that one alias only; the alarms watch its runs, the schedule's
 * deliveries and every version's server errors.
 */
import { Aws, Duration, Stack, TimeZone } from 'aws-cdk-lib';
import { Alarm, ComparisonOperator, type IAlarmAction, TreatMissingData } from 'aws-cdk-lib/aws-cloudwatch';
import { type Grant, Grant as IamGrant, PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Architecture, LoggingFormat, Runtime, SystemLogLevel } from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction } from 'aws-cdk-lib/aws-lambda-nodejs';
import type { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { IBucket } from 'aws-cdk-lib/aws-s3';
import {
  type IScheduleTarget,
  Schedule,
  ScheduleExpression,
  ScheduleTargetInput,
  TimeWindow,
} from 'aws-cdk-lib/aws-scheduler';
import { type IQueue, Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { AIAAS_ALIAS, AIAAS_BUCKET, AIAAS_MODEL, AIAAS_MODEL_SPEC } from '../../functions/shared/env.js';
import { acknowledge } from '../nag.js';
import { paths } from '../paths.js';
import { FunctionAlarms, VersionAlarms } from './function-alarms.js';
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

export interface RolloutFunctionProps {
  /** The model's name in the registry (`models/<name>/`). */
  readonly modelName: string;
  /**
   * The alias whose canary the function steps: the only alias it may move.
   *
   * @default 'live'
   */
  readonly aliasName?: string;
  /**
   * The registry bucket. When it belongs to another stack, import it by name in this one
   * (`Bucket.fromBucketName`), as ModelStack does, so no cross-stack export ties the two stacks.
   */
  readonly registryBucket: IBucket;
  /**
   * The model's manifest entry with its rollout plan, passed to the function as AIAAS_MODEL_SPEC
   * (JSON).
   */
  readonly modelSpec: unknown;
  /**
   * When the function looks at the rollout: an EventBridge Scheduler `rate(...)` or `cron(...)`
   * expression. A run with no canary to step reads the alias pointer and ends.
   */
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
   * Memory of the function in MiB.
   *
   * @default 256
   */
  readonly memorySize?: number;
  /**
   * How long one run may take; keep it under the schedule's interval so runs seldom overlap (they
   * may: every move is a compare-and-swap).
   *
   * @default Duration.seconds(30)
   */
  readonly timeout?: Duration;
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
   * CloudWatch namespace of the inference function's metrics, which the function reads and the
   * version alarm watches.
   *
   * @default 'aiaas'
   */
  readonly metricsNamespace?: string;
  /**
   * Where the alarms are sent.
   *
   * @default - no actions
   */
  readonly alarmActions?: readonly IAlarmAction[];
}

/**
 * The rollout function of one model alias, its schedule and its alarms. The function's role may
 * read CloudWatch metrics, read the model's versions and that alias's pointer and history, create
 * or compare-and-swap that pointer and append to that history (RegistryGrants.rollout); nothing
 * else of the registry, and no deletes. Lambda does not retry a failed run (the next scheduled run
 * is the retry); the schedule's role may invoke this function (and send to its dead-letter queue)
 * only.
 */
export class RolloutFunction extends Construct {
  readonly function: NodejsFunction;
  readonly role: Role;
  readonly logGroup: LogGroup;
  readonly schedule: Schedule;
  readonly schedulerRole: Role;
  readonly deadLetterQueue: IQueue;
  /** The function's errors (a failed run). */
  readonly alarms: FunctionAlarms;
  /** Runs the schedule could not start (messages in the dead-letter queue). */
  readonly undeliveredAlarm: Alarm;
  /** Server errors per version of the model (live and canary alike). */
  readonly versionAlarms: VersionAlarms;
  /** The role's registry access: the model's versions, and the alias's pointer and history (RegistryGrants.rollout). */
  readonly registryGrant: Grant;
  /** cloudwatch:GetMetricData, which IAM cannot scope to a namespace or metric. */
  readonly metricsGrant: Grant;

  /** Every alarm of the rollout: its errors, undelivered runs and the faults per version. */
  get allAlarms(): readonly Alarm[] {
    return [this.alarms.errors, this.undeliveredAlarm, this.versionAlarms.faults];
  }

  constructor(scope: Construct, id: string, props: RolloutFunctionProps) {
    super(scope, id);
    const aliasName = props.aliasName ?? 'live';
    const logLevel = props.logLevel ?? 'INFO';
    const namespace = props.metricsNamespace ?? 'aiaas';
    const spec = JSON.stringify(props.modelSpec);

    this.role = functionRole(this, 'Role', `aiaas rollout of model ${props.modelName}, alias ${aliasName}`);
    this.logGroup = functionLogGroup(this, 'Logs', props.logRetention ?? DEFAULT_LOG_RETENTION, this.role);
    this.registryGrant = RegistryGrants.fromBucket(props.registryBucket).rollout(
      this.role,
      props.modelName,
      aliasName,
    );
    this.metricsGrant = IamGrant.addToPrincipal({
      grantee: this.role,
      actions: ['cloudwatch:GetMetricData'],
      resourceArns: ['*'],
    });
    for (const statement of this.metricsGrant.principalStatements) statement.sid = 'ReadMetrics';
    acknowledge(
      this.role,
      'AwsSolutions-IAM5[Resource::*]',
      'cloudwatch:GetMetricData supports no resource-level permissions or condition keys (the Service Authorization Reference lists none), so its Resource must be "*"; the statement allows that one read-only action and nothing else.',
    );

    const environment: Record<string, string> = {
      [AIAAS_BUCKET]: props.registryBucket.bucketName,
      [AIAAS_MODEL]: props.modelName,
      [AIAAS_ALIAS]: aliasName,
      [AIAAS_MODEL_SPEC]: spec,
      POWERTOOLS_SERVICE_NAME: `aiaas-rollout-${props.modelName}`,
      POWERTOOLS_METRICS_NAMESPACE: namespace,
      POWERTOOLS_LOG_LEVEL: logLevel,
      NODE_OPTIONS: '--enable-source-maps',
    };
    assertEnvironmentFits(environment, 'rollout', props.modelName);

    this.function = new NodejsFunction(this, 'Function', {
      description: `aiaas rollout: model ${props.modelName}, alias ${aliasName}`,
      entry: paths.rolloutEntry,
      handler: 'handler',
      runtime: Runtime.NODEJS_24_X,
      architecture: Architecture.ARM_64,
      memorySize: props.memorySize ?? 256,
      timeout: props.timeout ?? Duration.seconds(30),
      role: this.role,
      logGroup: this.logGroup,
      loggingFormat: LoggingFormat.JSON,
      applicationLogLevelV2: APPLICATION_LOG_LEVEL[logLevel],
      systemLogLevelV2: SystemLogLevel.INFO,
      environment,
      // A failed or late run is not worth repeating: the next scheduled run reads fresh figures.
      retryAttempts: 0,
      maxEventAge: Duration.minutes(1),
      projectRoot: paths.root,
      depsLockFilePath: paths.lockFile,
      bundling: FUNCTION_BUNDLING,
    });

    this.deadLetterQueue =
      props.deadLetterQueue ??
      new Queue(this, 'UndeliveredRuns', {
        encryption: QueueEncryption.SQS_MANAGED,
        enforceSSL: true,
        retentionPeriod: Duration.days(14),
      });
    if (!props.deadLetterQueue) {
      acknowledge(
        this.deadLetterQueue,
        'AwsSolutions-SQS3',
        'This queue is itself a dead-letter queue: the EventBridge Scheduler schedule of this construct sends it the runs it could not deliver (cdk-nag recognises only SQS redrive policies as DLQ use).',
      );
    }

    // Scheduler's confused-deputy guard: only schedules of this account's default group may assume it.
    const stack = Stack.of(this);
    this.schedulerRole = new Role(this, 'SchedulerRole', {
      description: `EventBridge Scheduler: invoke the aiaas rollout function of model ${props.modelName}`,
      assumedBy: new ServicePrincipal('scheduler.amazonaws.com', {
        conditions: {
          StringEquals: {
            'aws:SourceAccount': Aws.ACCOUNT_ID,
            'aws:SourceArn': stack.formatArn({
              service: 'scheduler',
              resource: 'schedule-group',
              resourceName: 'default',
            }),
          },
        },
      }),
    });
    // The role may invoke this function (its unqualified ARN, which the schedule targets) and send
    // to the dead-letter queue, nothing more. aws-scheduler-targets' LambdaInvoke would also grant
    // `<function ARN>:*` (every version and alias), a wildcard this schedule never uses.
    this.schedulerRole.addToPrincipalPolicy(
      new PolicyStatement({
        sid: 'InvokeRolloutFunction',
        actions: ['lambda:InvokeFunction'],
        resources: [this.function.functionArn],
      }),
    );
    this.schedulerRole.addToPrincipalPolicy(
      new PolicyStatement({
        sid: 'SendUndeliveredRuns',
        actions: ['sqs:SendMessage'],
        resources: [this.deadLetterQueue.queueArn],
      }),
    );
    const target: IScheduleTarget = {
      bind: () => ({
        arn: this.function.functionArn,
        role: this.schedulerRole,
        input: ScheduleTargetInput.fromObject({
          source: 'aiaas.schedule',
          model: props.modelName,
          alias: aliasName,
        }),
        deadLetterConfig: { arn: this.deadLetterQueue.queueArn },
        // Delivery only (a throttled or refused invoke), never the run itself: retried for a
        // minute, then the run goes to the queue; the next run is due by then anyway.
        retryPolicy: { maximumRetryAttempts: 3, maximumEventAgeInSeconds: 60 },
      }),
    };
    this.schedule = new Schedule(this, 'Schedule', {
      description: `Step the canary of aiaas model ${props.modelName} (alias ${aliasName})`,
      schedule: ScheduleExpression.expression(props.schedule, TimeZone.of(props.scheduleTimezone ?? 'UTC')),
      target,
      timeWindow: TimeWindow.off(),
    });
    // The role must exist with its policy before the schedule first fires.
    this.schedule.node.addDependency(this.schedulerRole);

    this.alarms = new FunctionAlarms(this, 'Alarms', {
      fn: this.function,
      subject: `aiaas model "${props.modelName}" rollout`,
      // A throttled run is a skipped look: the next one is due within the schedule's interval.
      throttles: false,
      ...(props.alarmActions ? { actions: props.alarmActions } : {}),
    });
    this.undeliveredAlarm = new Alarm(this, 'UndeliveredRunsAlarm', {
      metric: this.deadLetterQueue.metricApproximateNumberOfMessagesVisible({
        period: Duration.minutes(5),
        statistic: 'Maximum',
      }),
      threshold: 1,
      evaluationPeriods: 1,
      comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: TreatMissingData.NOT_BREACHING,
      alarmDescription: `aiaas model "${props.modelName}" rollout: the schedule could not start a run (see its dead-letter queue)`,
    });
    for (const action of props.alarmActions ?? []) {
      this.undeliveredAlarm.addAlarmAction(action);
      this.undeliveredAlarm.addOkAction(action);
    }
    this.versionAlarms = new VersionAlarms(this, 'VersionAlarms', {
      modelName: props.modelName,
      subject: `aiaas model "${props.modelName}"`,
      namespace,
      ...(props.alarmActions ? { actions: props.alarmActions } : {}),
    });
  }
}
