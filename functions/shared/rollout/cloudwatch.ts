/**
 * Figures from CloudWatch (a deployed model): one GetMetricData call per window reads, for each
 * version the alias routes to, the sums of its counts and its p50/p99 latency, over one period
 * covering the whole window. The metrics are the inference function's EMF metrics (metric-names.ts)
 * in namespace POWERTOOLS_METRICS_NAMESPACE (default `aiaas`), dimensions service `aiaas-<model>`,
 * model, version and role. Which versions to ask for comes from `routes` (the alias pointer's):
 * CloudWatch answers only for the exact dimension values asked.
 *
 * The client is injected (tests pass a fake and assert the queries); it needs only
 * `cloudwatch:GetMetricData`.
 */

import {
  GetMetricDataCommand,
  type GetMetricDataCommandOutput,
  type MetricDataQuery,
} from '@aws-sdk/client-cloudwatch';
import { AiaasError } from '../errors.js';
import type { FiguresSource, VersionFigures, VersionRole } from './figures.js';
import { METRIC_DIMENSIONS, METRICS } from './metric-names.js';

/** A version and how the alias routes it. */
export interface RoutedVersion {
  readonly version: number;
  readonly role: VersionRole;
}

/** What the source needs of a CloudWatch client. */
export interface MetricDataClient {
  send(command: GetMetricDataCommand): Promise<GetMetricDataCommandOutput>;
}

export interface CloudWatchFiguresOptions {
  readonly client: MetricDataClient;
  /** @default process.env.POWERTOOLS_METRICS_NAMESPACE, else 'aiaas' */
  readonly namespace?: string;
  /** The versions to read (e.g. from the alias pointer: live, canary, shadow). */
  readonly routes: (model: string) => Promise<readonly RoutedVersion[]>;
}

/** Pages of GetMetricData answers read at most (each holds up to 100,800 data points). */
const MAX_PAGES = 10;

type Stat = 'Sum' | 'p50' | 'p99' | 'Maximum' | 'Average' | 'SampleCount';

/** The series read per role: [field, metric, statistic]. */
const SERIES: Record<VersionRole, readonly (readonly [string, string, Stat])[]> = {
  live: [
    ['requests', METRICS.predictions, 'Sum'],
    ['clientErrors', METRICS.clientErrors, 'Sum'],
    ['serverErrors', METRICS.faults, 'Sum'],
    ['p50', METRICS.predictLatency, 'p50'],
    ['p99', METRICS.predictLatency, 'p99'],
  ],
  canary: [],
  shadow: [
    ['requests', METRICS.shadowRuns, 'Sum'],
    ['serverErrors', METRICS.shadowFailures, 'Sum'],
    ['slow', METRICS.shadowSlow, 'Sum'],
    ['p50', METRICS.predictLatency, 'p50'],
    ['p99', METRICS.predictLatency, 'p99'],
    ['maxAbsDiff', METRICS.shadowMaxAbsDiff, 'Maximum'],
    ['meanMaxAbsDiff', METRICS.shadowMaxAbsDiff, 'Average'],
    ['compared', METRICS.shadowMaxAbsDiff, 'SampleCount'],
    ['topRows', METRICS.shadowTopRows, 'Sum'],
    ['topDisagreements', METRICS.shadowTopDisagreements, 'Sum'],
  ],
};
const seriesOf = (role: VersionRole) => (role === 'canary' ? SERIES.live : SERIES[role]);

export class CloudWatchFigures implements FiguresSource {
  private readonly namespace: string;

  constructor(private readonly options: CloudWatchFiguresOptions) {
    this.namespace = options.namespace ?? process.env.POWERTOOLS_METRICS_NAMESPACE ?? 'aiaas';
  }

  async figures(model: string, since: Date, until: Date): Promise<readonly VersionFigures[]> {
    const routes = await this.options.routes(model);
    if (routes.length === 0) return [];
    const queries = metricQueries(this.namespace, model, routes, since, until);
    const values = new Map<string, number[]>();
    let token: string | undefined;
    for (let page = 0; page < MAX_PAGES; page++) {
      let answer: GetMetricDataCommandOutput;
      try {
        answer = await this.options.client.send(
          new GetMetricDataCommand({
            MetricDataQueries: queries,
            StartTime: since,
            EndTime: until,
            ScanBy: 'TimestampAscending',
            ...(token ? { NextToken: token } : {}),
          }),
        );
      } catch (cause) {
        throw new AiaasError(`CloudWatch GetMetricData failed for ${model}: ${(cause as Error).message}`, {
          cause,
        });
      }
      for (const result of answer.MetricDataResults ?? []) {
        if (!result.Id) continue;
        const finite = (result.Values ?? []).filter((v) => typeof v === 'number' && Number.isFinite(v));
        values.set(result.Id, [...(values.get(result.Id) ?? []), ...finite]);
      }
      token = answer.NextToken;
      if (!token) break;
    }
    return routes.map((route, index) => figuresOf(route, index, values));
  }
}

/**
 * The GetMetricData queries for a window: one per series of each routed version, with ids
 * `v<index>_<field>` and one period spanning the window (whole minutes).
 */
export function metricQueries(
  namespace: string,
  model: string,
  routes: readonly RoutedVersion[],
  since: Date,
  until: Date,
): MetricDataQuery[] {
  const period = Math.max(60, Math.ceil((until.getTime() - since.getTime()) / 60_000) * 60);
  return routes.flatMap((route, index) =>
    seriesOf(route.role).map(([field, metric, stat]) => ({
      Id: `v${index}_${field}`,
      ReturnData: true,
      MetricStat: {
        Metric: {
          Namespace: namespace,
          MetricName: metric,
          Dimensions: [
            { Name: METRIC_DIMENSIONS.service, Value: `aiaas-${model}` },
            { Name: METRIC_DIMENSIONS.model, Value: model },
            { Name: METRIC_DIMENSIONS.version, Value: String(route.version) },
            { Name: METRIC_DIMENSIONS.role, Value: route.role },
          ],
        },
        Period: period,
        Stat: stat,
      },
    })),
  );
}

/** One version's figures from the series read (sums added over periods; the worst p50/p99 kept). */
function figuresOf(
  route: RoutedVersion,
  index: number,
  values: ReadonlyMap<string, number[]>,
): VersionFigures {
  const series = (field: string) => values.get(`v${index}_${field}`) ?? [];
  const sum = (field: string) => series(field).reduce((n, v) => n + Math.max(0, v), 0);
  const worst = (field: string) => (series(field).length ? Math.max(...series(field)) : undefined);
  const mean = (field: string) => {
    const all = series(field);
    return all.length ? all.reduce((n, v) => n + v, 0) / all.length : undefined;
  };
  const p50Ms = worst('p50');
  const p99Ms = worst('p99');
  const base = {
    version: route.version,
    role: route.role,
    requests: sum('requests'),
    clientErrors: sum('clientErrors'),
    serverErrors: sum('serverErrors'),
    ...(p50Ms !== undefined ? { p50Ms } : {}),
    ...(p99Ms !== undefined ? { p99Ms } : {}),
  };
  if (route.role !== 'shadow') return base;
  const topRows = sum('topRows');
  return {
    ...base,
    shadow: {
      compared: sum('compared'),
      slow: sum('slow'),
      maxAbsDiff: worst('maxAbsDiff') ?? 0,
      meanMaxAbsDiff: mean('meanMaxAbsDiff') ?? 0,
      ...(topRows > 0 ? { topClassRows: topRows, topClassDisagreements: sum('topDisagreements') } : {}),
    },
  };
}
