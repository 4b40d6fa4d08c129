import { Duration } from 'aws-cdk-lib';
import {
  Alarm,
  ComparisonOperator,
  type IAlarmAction,
  type IMetric,
  MathExpression,
  TreatMissingData,
} from 'aws-cdk-lib/aws-cloudwatch';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import { Construct } from 'constructs';
import { METRIC_DIMENSIONS, METRICS } from '../../functions/shared/rollout/metric-names.js';

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

export interface VersionAlarmsProps {
  /** The model whose versions are watched (the `model` dimension of the inference function's metrics). */
  readonly modelName: string;
  /** Used in alarm descriptions, e.g. `model "diabetes"`. */
  readonly subject: string;
  /**
   * CloudWatch namespace of the inference function's metrics.
   *
   * @default 'aiaas'
   */
  readonly namespace?: string;
  /**
   * Alarm when one version (in one role) answers at least this many requests with a 5xx in 5 minutes.
   *
   * @default 1
   */
  readonly faultThreshold?: number;
  /**
   * Where the alarm (and its return to OK) is sent.
   *
   * @default - no actions; the alarm is visible in CloudWatch only
   */
  readonly actions?: readonly IAlarmAction[];
}

/**
 * Alarms per model version, on the inference function's own metrics (functions/shared/rollout/
 * metric-names.ts): one CloudWatch Metrics Insights alarm whose query groups a model's `Faults` by
 * version and role, so every version that serves (live, canary) is its own contributor, evaluated
 * on its own, and a version set after deployment is watched without a redeploy. A static alarm
 * could not do this: a metric's identity includes its `version` dimension, whose values come and
 * go with each rollout.
 *
 * Limits (CloudWatch's): 200 Metrics Insights alarms per account and region by default; alarms
 * evaluate the last 3 hours only; one query per alarm, so an error *rate* per version (faults over
 * predictions) is not an alarm but the rollout function's rule.
 */
export class VersionAlarms extends Construct {
  /** Faults per version and role (a multi time series alarm: each version is a contributor). */
  readonly faults: Alarm;
  /** The Metrics Insights query the alarm evaluates. */
  readonly faultsQuery: string;

  constructor(scope: Construct, id: string, props: VersionAlarmsProps) {
    super(scope, id);
    const threshold = props.faultThreshold ?? 1;
    this.faultsQuery = versionQuery(METRICS.faults, props.modelName, props.namespace ?? 'aiaas');
    this.faults = new Alarm(this, 'Faults', {
      metric: new MathExpression({
        expression: this.faultsQuery,
        period: Duration.minutes(5),
        label: `${METRICS.faults} by version`,
      }),
      threshold,
      evaluationPeriods: 1,
      comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: TreatMissingData.NOT_BREACHING,
      alarmDescription: `${props.subject}: a version answered ${threshold}+ requests with a server error (5xx) in 5 minutes; the contributor names the version and its role (live, canary)`,
    });
    for (const action of props.actions ?? []) {
      this.faults.addAlarmAction(action);
      this.faults.addOkAction(action);
    }
  }
}

/**
 * `SELECT SUM(<metric>)` over exactly the per-version metrics of one model (SCHEMA with all four
 * dimensions, so no aggregate without a version joins in as "Other"), one series per version and role.
 */
export function versionQuery(metric: string, modelName: string, namespace: string): string {
  if (!/^[a-z0-9][a-z0-9_-]{0,62}$/.test(modelName)) throw new Error(`Invalid model name "${modelName}"`);
  if (!/^[A-Za-z0-9._/#:-]+$/.test(namespace)) throw new Error(`Invalid metrics namespace "${namespace}"`);
  const { model, version, role, service } = METRIC_DIMENSIONS;
  const schema = [model, role, service, version].map((name) => `"${name}"`).join(', ');
  return `SELECT SUM("${metric}") FROM SCHEMA("${namespace}", ${schema}) WHERE "${model}" = '${modelName}' GROUP BY "${version}", "${role}" ORDER BY SUM() DESC`;
}
