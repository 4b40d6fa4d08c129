/**
 * A model's rollout function, on an EventBridge Scheduler schedule: each run reads the figures of
 * the alias's live and canary versions (CloudWatch GetMetricData) and steps the canary's weight
 * up, promotes it or aborts it, each move an event in the alias history (functions/rollout/).
 * Its role reads metrics and moves that one alias only; the alarms watch its runs, the schedule's
 * deliveries and every version's server errors.
 */
import { Duration, TimeZone } from 'aws-cdk-lib';
import type { Alarm } from 'aws-cdk-lib/aws-cloudwatch';
import { type Grant, Grant as IamGrant, type Role } from 'aws-cdk-lib/aws-iam';
import type { NodejsFunction } from 'aws-cdk-lib/aws-lambda-nodejs';
import type { LogGroup } from 'aws-cdk-lib/aws-logs';
import {
  type IScheduleTarget,
  Schedule,
  ScheduleExpression,
  ScheduleTargetInput,
  TimeWindow,
} from 'aws-cdk-lib/aws-scheduler';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { AIAAS_ALIAS, AIAAS_MODEL_SPEC } from '../../functions/shared/env.js';
import { acknowledge } from '../nag.js';
import { paths } from '../paths.js';
import { type FunctionAlarms, VersionAlarms } from './function-alarms.js';
import { RegistryGrants } from './registry-grants.js';
import {
  type ScheduledFunctionProps,
  scheduledFunction,
  scheduledFunctionAlarms,
  schedulerRole,
  undeliveredRunsAlarm,
  undeliveredRunsQueue,
} from './scheduled-function.js';

export interface RolloutFunctionProps extends ScheduledFunctionProps {
  /**
   * The alias whose canary the function steps: the only alias it may move.
   *
   * @default 'live'
   */
  readonly aliasName?: string;
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
   * CloudWatch namespace of the inference function's metrics, which the function reads and the
   * version alarm watches.
   *
   * @default 'aiaas'
   */
  readonly metricsNamespace?: string;
}

/**
 * The rollout function of one model alias, its schedule and its alarms. The function's role may
 * read CloudWatch metrics, read the model's versions and that alias's pointer and history, create
 * or compare-and-swap that pointer and append to that history (RegistryGrants.rollout); nothing
 * else of the registry, and no deletes. Lambda does not retry a failed run (the next scheduled run
 * is the retry); the schedule's role may invoke this function (and send to its dead-letter queue)
 * only. `schedule` says when the function looks at the rollout: a run with no canary to step reads
 * the alias pointer and ends.
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
    const namespace = props.metricsNamespace ?? 'aiaas';

    ({
      role: this.role,
      logGroup: this.logGroup,
      function: this.function,
    } = scheduledFunction(this, props, {
      kind: 'rollout',
      description: `aiaas rollout: model ${props.modelName}, alias ${aliasName}`,
      roleDescription: `aiaas rollout of model ${props.modelName}, alias ${aliasName}`,
      entry: paths.rolloutEntry,
      memorySize: props.memorySize ?? 256,
      timeout: props.timeout ?? Duration.seconds(30),
      // A late run is not worth starting: the next scheduled run reads fresh figures.
      maxEventAge: Duration.minutes(1),
      serviceName: `aiaas-rollout-${props.modelName}`,
      metricsNamespace: namespace,
      environment: { [AIAAS_ALIAS]: aliasName, [AIAAS_MODEL_SPEC]: JSON.stringify(props.modelSpec) },
    }));
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

    this.deadLetterQueue = undeliveredRunsQueue(this, props);
    this.schedulerRole = schedulerRole(this, {
      kind: 'rollout',
      modelName: props.modelName,
      target: this.function,
      deadLetterQueue: this.deadLetterQueue,
    });
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

    this.alarms = scheduledFunctionAlarms(this, 'rollout', this.function, props);
    this.undeliveredAlarm = undeliveredRunsAlarm(this, 'rollout', this.deadLetterQueue, props);
    this.versionAlarms = new VersionAlarms(this, 'VersionAlarms', {
      modelName: props.modelName,
      subject: `aiaas model "${props.modelName}"`,
      namespace,
      ...(props.alarmActions ? { actions: props.alarmActions } : {}),
    });
  }
}
