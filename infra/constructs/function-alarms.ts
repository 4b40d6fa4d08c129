import { Duration } from 'aws-cdk-lib';
import {
  Alarm,
  ComparisonOperator,
  type IAlarmAction,
  type IMetric,
  TreatMissingData,
} from 'aws-cdk-lib/aws-cloudwatch';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import { Construct } from 'constructs';

export interface FunctionAlarmsProps {
  /** The function watched. */
  readonly fn: IFunction;
  /** Used in alarm descriptions, e.g. `model "diabetes" inference`. */
  readonly subject: string;
  /**
   * p99 duration above which the latency alarm fires; omit for no latency alarm.
   *
   * @default - no duration alarm
   */
  readonly p99Duration?: Duration;
  /**
   * Alarm if there are at least this many errors (unhandled exceptions, timeouts) in 5 minutes.
   *
   * @default 1
   */
  readonly errorThreshold?: number;
  /**
   * Also alarm on throttles (requests rejected for lack of concurrency).
   *
   * @default true
   */
  readonly throttles?: boolean;
  /**
   * Where alarms (and their return to OK) are sent.
   *
   * @default - no actions; the alarms are visible in CloudWatch only
   */
  readonly actions?: readonly IAlarmAction[];
}

/** CloudWatch alarms on a function: errors, throttles and p99 duration (5-minute periods). */
export class FunctionAlarms extends Construct {
  readonly errors: Alarm;
  readonly throttles?: Alarm;
  readonly p99Duration?: Alarm;

  constructor(scope: Construct, id: string, props: FunctionAlarmsProps) {
    super(scope, id);
    const period = Duration.minutes(5);
    const alarm = (
      alarmId: string,
      metric: IMetric,
      threshold: number,
      description: string,
      evaluationPeriods = 1,
    ) => {
      const created = new Alarm(this, alarmId, {
        metric,
        threshold,
        evaluationPeriods,
        comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: TreatMissingData.NOT_BREACHING,
        alarmDescription: description,
      });
      for (const action of props.actions ?? []) {
        created.addAlarmAction(action);
        created.addOkAction(action);
      }
      return created;
    };

    const errorThreshold = props.errorThreshold ?? 1;
    this.errors = alarm(
      'Errors',
      props.fn.metricErrors({ period, statistic: 'Sum' }),
      errorThreshold,
      `${props.subject}: ${errorThreshold}+ invocation errors (unhandled exceptions or timeouts) in 5 minutes`,
    );
    if (props.throttles ?? true) {
      this.throttles = alarm(
        'Throttles',
        props.fn.metricThrottles({ period, statistic: 'Sum' }),
        1,
        `${props.subject}: requests throttled (reserved concurrency exhausted) in the last 5 minutes`,
      );
    }
    if (props.p99Duration) {
      const ms = props.p99Duration.toMilliseconds();
      this.p99Duration = alarm(
        'P99Duration',
        props.fn.metricDuration({ period, statistic: 'p99' }),
        ms,
        `${props.subject}: p99 duration at or above ${ms} ms for 15 minutes`,
        3,
      );
    }
  }
}
