import { Duration } from 'aws-cdk-lib';
import type { Alarm } from 'aws-cdk-lib/aws-cloudwatch';
import type { Grant, Role } from 'aws-cdk-lib/aws-iam';
import type { NodejsFunction } from 'aws-cdk-lib/aws-lambda-nodejs';
import type { LogGroup } from 'aws-cdk-lib/aws-logs';
import { CfnSchedule } from 'aws-cdk-lib/aws-scheduler';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { AIAAS_MODEL_SPEC, AIAAS_RUNTIME_MODULE } from '../../functions/shared/env.js';
import { paths } from '../paths.js';
import type { FunctionAlarms } from './function-alarms.js';
import { RegistryGrants } from './registry-grants.js';
import {
  type ScheduledFunctionProps,
  scheduledFunction,
  scheduledFunctionAlarms,
  schedulerRole,
  undeliveredRunsAlarm,
  undeliveredRunsQueue,
} from './scheduled-function.js';
import { TfjsRuntimeLayer } from './tfjs-runtime-layer.js';

export interface RetrainingFunctionProps extends ScheduledFunctionProps {
  /** The tfjs runtime layer the function trains with (training always runs on tfjs). */
  readonly runtimeLayer: TfjsRuntimeLayer;
  /**
   * Prefix of the training data, read-only.
   *
   * @default `datasets/<modelName>/`
   */
  readonly datasetPrefix?: string;
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
   * CloudWatch namespace of the EMF metrics.
   *
   * @default 'aiaas'
   */
  readonly metricsNamespace?: string;
}

/**
 * A model's retraining function, its schedule and its alarms. The function may read the model's
 * dataset prefix and read/write only `models/<name>/`; it runs one at a time only if asked to
 * (`reservedConcurrency: 1`), and is not retried by Lambda (a failed run waits for the next
 * schedule, and the error alarm fires). The schedule's role may invoke this function (and send to
 * its dead-letter queue) only; a run the schedule could not start lands in that queue, and its
 * alarm fires.
 */
export class RetrainingFunction extends Construct {
  readonly function: NodejsFunction;
  readonly role: Role;
  readonly logGroup: LogGroup;
  readonly schedule: CfnSchedule;
  readonly schedulerRole: Role;
  readonly deadLetterQueue: IQueue;
  /** The function's errors (a failed run). */
  readonly alarms: FunctionAlarms;
  /** Runs the schedule could not start (messages in the dead-letter queue). */
  readonly undeliveredAlarm: Alarm;
  /** The role's registry access: its dataset prefix and its model's root (RegistryGrants.retrain). */
  readonly registryGrant: Grant;

  /** Every alarm of the retraining: its errors and undelivered runs. */
  get allAlarms(): readonly Alarm[] {
    return [this.alarms.errors, this.undeliveredAlarm];
  }

  constructor(scope: Construct, id: string, props: RetrainingFunctionProps) {
    super(scope, id);
    const datasetPrefix = props.datasetPrefix ?? `datasets/${props.modelName}/`;

    ({
      role: this.role,
      logGroup: this.logGroup,
      function: this.function,
    } = scheduledFunction(this, props, {
      kind: 'retraining',
      description: `aiaas retraining: model ${props.modelName}`,
      roleDescription: `aiaas retraining for model ${props.modelName}`,
      entry: paths.retrainEntry,
      memorySize: props.memorySize ?? 2048,
      timeout: props.timeout ?? Duration.minutes(15),
      maxEventAge: Duration.hours(1),
      serviceName: `aiaas-retrain-${props.modelName}`,
      metricsNamespace: props.metricsNamespace ?? 'aiaas',
      environment: {
        [AIAAS_MODEL_SPEC]: JSON.stringify(props.modelSpec),
        [AIAAS_RUNTIME_MODULE]: TfjsRuntimeLayer.MODULE_PATH,
      },
      layers: [props.runtimeLayer.layer],
      reservedConcurrency: props.reservedConcurrency,
    }));
    this.registryGrant = RegistryGrants.fromBucket(props.registryBucket).retrain(
      this.role,
      props.modelName,
      datasetPrefix,
    );

    this.deadLetterQueue = undeliveredRunsQueue(this, props);
    this.schedulerRole = schedulerRole(this, {
      kind: 'retraining',
      modelName: props.modelName,
      target: this.function,
      deadLetterQueue: this.deadLetterQueue,
    });
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
        // Training is long and not worth repeating blindly: a failure waits for the next run; a run
        // Scheduler could not hand to Lambda goes to the dead-letter queue, and its alarm fires.
        retryPolicy: { maximumRetryAttempts: 0, maximumEventAgeInSeconds: 3600 },
        deadLetterConfig: { arn: this.deadLetterQueue.queueArn },
      },
    });
    // The role must exist with its policy before the schedule first fires.
    this.schedule.node.addDependency(this.schedulerRole);

    this.alarms = scheduledFunctionAlarms(this, 'retraining', this.function, props);
    this.undeliveredAlarm = undeliveredRunsAlarm(this, 'retraining', this.deadLetterQueue, props);
  }
}
