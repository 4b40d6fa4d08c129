/**
 * The figures sources (functions/shared/rollout/): CloudWatch's GetMetricData queries (asked of
 * an injected fake client: namespace, metric names, dimensions, statistics, period) and how its
 * answer becomes VersionFigures; the local stack's answer checked as untrusted input; the memory
 * rule.
 */
import type { GetMetricDataCommand, GetMetricDataCommandOutput } from '@aws-sdk/client-cloudwatch';
import { describe, expect, it } from 'vitest';
import { CloudWatchFigures } from '../../functions/shared/rollout/cloudwatch.js';
import { LocalFigures } from '../../functions/shared/rollout/local.js';
import { fitsInMemory } from '../../functions/shared/rollout/memory.js';

const since = new Date('2026-01-01T00:00:00.000Z');
const until = new Date('2026-01-01T00:10:30.000Z');

class FakeCloudWatch {
  readonly sent: GetMetricDataCommand['input'][] = [];
  constructor(private readonly answers: GetMetricDataCommandOutput[]) {}
  async send(command: GetMetricDataCommand): Promise<GetMetricDataCommandOutput> {
    this.sent.push(command.input);
    return this.answers[this.sent.length - 1] ?? { $metadata: {}, MetricDataResults: [] };
  }
}

describe('CloudWatch figures', () => {
  it('asks for each routed version by model, version, role and service, one period over the window', async () => {
    const client = new FakeCloudWatch([]);
    const source = new CloudWatchFigures({
      client,
      namespace: 'acme',
      routes: async () => [
        { version: 3, role: 'live' },
        { version: 4, role: 'canary' },
        { version: 5, role: 'shadow' },
      ],
    });
    await source.figures('diabetes', since, until);
    expect(client.sent).toHaveLength(1);
    const input = client.sent[0]!;
    expect([input.StartTime, input.EndTime]).toEqual([since, until]);
    const queries = input.MetricDataQueries!;
    const byId = new Map(queries.map((q) => [q.Id, q.MetricStat!]));
    // Every query: the namespace, all four dimensions, a period of whole minutes covering 10.5 minutes.
    for (const q of queries) {
      expect(q.Id).toMatch(/^[a-z][A-Za-z0-9_]*$/); // GetMetricData ids start with a lower-case letter
      expect(q.MetricStat!.Metric!.Namespace).toBe('acme');
      expect(q.MetricStat!.Period).toBe(660);
      const dims = Object.fromEntries(q.MetricStat!.Metric!.Dimensions!.map((d) => [d.Name, d.Value]));
      expect(dims).toMatchObject({ service: 'aiaas-diabetes', model: 'diabetes' });
      expect(Object.keys(dims).sort()).toEqual(['model', 'role', 'service', 'version']);
    }
    const shape = (id: string) => {
      const stat = byId.get(id)!;
      const dims = Object.fromEntries(stat.Metric!.Dimensions!.map((d) => [d.Name, d.Value]));
      return `${stat.Metric!.MetricName} ${stat.Stat} v${dims.version} ${dims.role}`;
    };
    expect(shape('v0_requests')).toBe('Predictions Sum v3 live');
    expect(shape('v0_clientErrors')).toBe('ClientErrors Sum v3 live');
    expect(shape('v0_serverErrors')).toBe('Faults Sum v3 live');
    expect(shape('v0_p50')).toBe('PredictLatency p50 v3 live');
    expect(shape('v0_p99')).toBe('PredictLatency p99 v3 live');
    expect(shape('v1_requests')).toBe('Predictions Sum v4 canary');
    expect(shape('v1_p99')).toBe('PredictLatency p99 v4 canary');
    expect(shape('v2_requests')).toBe('ShadowRuns Sum v5 shadow');
    expect(shape('v2_serverErrors')).toBe('ShadowFailures Sum v5 shadow');
    expect(shape('v2_maxAbsDiff')).toBe('ShadowMaxAbsDiff Maximum v5 shadow');
    expect(shape('v2_compared')).toBe('ShadowMaxAbsDiff SampleCount v5 shadow');
    expect(shape('v2_topDisagreements')).toBe('ShadowTopClassDisagreements Sum v5 shadow');
    expect(queries.length).toBeLessThanOrEqual(500); // GetMetricData's limit
  });

  it('adds sums over periods and pages, keeps the worst percentile, and fills what is missing with nothing', async () => {
    const client = new FakeCloudWatch([
      {
        $metadata: {},
        NextToken: 'more',
        MetricDataResults: [
          { Id: 'v0_requests', Values: [900, 100] },
          { Id: 'v0_serverErrors', Values: [2] },
          { Id: 'v0_p99', Values: [12, 20] },
          { Id: 'v1_requests', Values: [100] },
          { Id: 'v2_requests', Values: [40] },
          { Id: 'v2_compared', Values: [40] },
          { Id: 'v2_maxAbsDiff', Values: [0.25] },
          { Id: 'v2_meanMaxAbsDiff', Values: [0.01] },
          { Id: 'v2_topRows', Values: [40] },
          { Id: 'v2_topDisagreements', Values: [3] },
        ],
      },
      {
        $metadata: {},
        MetricDataResults: [
          { Id: 'v1_serverErrors', Values: [7, Number.NaN] },
          { Id: 'v0_requests', Values: [5] },
        ],
      },
    ]);
    const source = new CloudWatchFigures({
      client,
      routes: async () => [
        { version: 3, role: 'live' },
        { version: 4, role: 'canary' },
        { version: 5, role: 'shadow' },
      ],
    });
    const figures = await source.figures('m', since, until);
    expect(client.sent[1]!.NextToken).toBe('more');
    expect(figures).toEqual([
      { version: 3, role: 'live', requests: 1005, clientErrors: 0, serverErrors: 2, p99Ms: 20 },
      { version: 4, role: 'canary', requests: 100, clientErrors: 0, serverErrors: 7 },
      {
        version: 5,
        role: 'shadow',
        requests: 40,
        clientErrors: 0,
        serverErrors: 0,
        shadow: {
          compared: 40,
          slow: 0,
          maxAbsDiff: 0.25,
          meanMaxAbsDiff: 0.01,
          topClassRows: 40,
          topClassDisagreements: 3,
        },
      },
    ]);
  });

  it('asks nothing when the alias routes no version, and names the model when CloudWatch fails', async () => {
    const client = new FakeCloudWatch([]);
    expect(
      await new CloudWatchFigures({ client, routes: async () => [] }).figures('m', since, until),
    ).toEqual([]);
    expect(client.sent).toHaveLength(0);
    const failing = {
      send: async () => {
        throw new Error('AccessDenied');
      },
    };
    await expect(
      new CloudWatchFigures({ client: failing, routes: async () => [{ version: 1, role: 'live' }] }).figures(
        'm',
        since,
        until,
      ),
    ).rejects.toThrow(/CloudWatch GetMetricData failed for m: AccessDenied/);
  });
});

describe('local stack figures', () => {
  const answer = (body: unknown, status = 200): typeof fetch =>
    (async (url: URL) => {
      answer.asked = String(url);
      return new Response(typeof body === 'string' ? body : JSON.stringify(body), { status });
    }) as unknown as typeof fetch;
  answer.asked = '';

  it('asks the local server for the window and reads its figures', async () => {
    const figures = [
      { version: 1, role: 'live', requests: 90, clientErrors: 1, serverErrors: 0, p50Ms: 0.5, p99Ms: 2 },
      { version: 2, role: 'canary', requests: 10, clientErrors: 0, serverErrors: 3 },
    ];
    const read = await new LocalFigures('http://127.0.0.1:8080', answer({ model: 'm', figures })).figures(
      'm',
      since,
      until,
    );
    expect(read).toEqual(figures);
    const url = new URL(answer.asked);
    expect(url.pathname).toBe('/_aiaas/figures/m');
    expect([url.searchParams.get('since'), url.searchParams.get('until')]).toEqual([
      since.toISOString(),
      until.toISOString(),
    ]);
  });

  it('refuses an answer that is not figures, naming the entry and the field', async () => {
    const cases: [unknown, number, RegExp][] = [
      ['not json', 200, /not JSON/],
      [{ error: 'no such model' }, 404, /answered 404 .*no such model/],
      [{ model: 'm' }, 200, /no "figures" list/],
      [{ figures: [] }, 200, /the answer is for model undefined/],
      [{ model: 'other', figures: [] }, 200, /the answer is for model "other"/],
      [
        {
          model: 'm',
          figures: [
            { version: 2, role: 'canary', requests: 9, clientErrors: 0, serverErrors: 0 },
            { version: 2, role: 'canary', requests: 1, clientErrors: 0, serverErrors: 1 },
          ],
        },
        200,
        /entry 1: a second entry for v2 as canary/,
      ],
      [
        {
          model: 'm',
          figures: [{ version: 0, role: 'live', requests: 1, clientErrors: 0, serverErrors: 0 }],
        },
        200,
        /entry 0: "version"/,
      ],
      [
        {
          model: 'm',
          figures: [{ version: 1, role: 'boss', requests: 1, clientErrors: 0, serverErrors: 0 }],
        },
        200,
        /"role" must be live, canary or shadow/,
      ],
      [
        {
          model: 'm',
          figures: [{ version: 1, role: 'live', requests: -1, clientErrors: 0, serverErrors: 0 }],
        },
        200,
        /"requests" must be a count/,
      ],
      [
        {
          model: 'm',
          figures: [
            { version: 1, role: 'live', requests: 1, clientErrors: 0, serverErrors: 0, p99Ms: 'slow' },
          ],
        },
        200,
        /"p99Ms" must be milliseconds/,
      ],
      [
        {
          model: 'm',
          figures: [
            {
              version: 1,
              role: 'shadow',
              requests: 1,
              clientErrors: 0,
              serverErrors: 0,
              shadow: { compared: 1 },
            },
          ],
        },
        200,
        /shadow: "slow" must be a number/,
      ],
    ];
    for (const [body, status, message] of cases) {
      await expect(
        new LocalFigures('http://127.0.0.1:8080', answer(body, status)).figures('m', since, until),
        JSON.stringify(body),
      ).rejects.toThrow(message);
    }
  });
});

describe('the memory rule', () => {
  it('holds a fixed base and three times every version, rounded up, and refuses what is not a size', () => {
    expect(fitsInMemory([], 192)).toEqual({ fits: true, needMiB: 192 });
    expect(fitsInMemory([10 * 2 ** 20, 10 * 2 ** 20], 252)).toEqual({ fits: true, needMiB: 252 });
    expect(fitsInMemory([10 * 2 ** 20, 10 * 2 ** 20 + 1], 252)).toEqual({ fits: false, needMiB: 253 });
    expect(() => fitsInMemory([-1], 1024)).toThrow(/version size #1 must be a number of bytes/);
    expect(() => fitsInMemory([Number.NaN], 1024)).toThrow(RangeError);
    expect(() => fitsInMemory([1], 0)).toThrow(/memory must be a positive number of MiB/);
  });
});
