/**
 * Per-version metrics (functions/inference/telemetry.ts) through Powertools' own Metrics, its EMF
 * lines read back: each invocation's metrics land with the dimension set of the version that
 * answered (model, version, role, service), an error before any version was chosen with the model
 * alone, and a shadow's figures in a second line with the shadow's version and role `shadow`; a
 * later invocation does not inherit an earlier one's dimensions.
 */
import { Metrics } from '@aws-lambda-powertools/metrics';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createTelemetry } from '../../functions/inference/telemetry.js';
import type { Invocation } from '../../functions/inference/telemetry-settings.js';
import { METRICS } from '../../functions/shared/rollout/metric-names.js';

interface Emf {
  _aws: { CloudWatchMetrics: { Dimensions: string[][]; Metrics: { Name: string }[] }[] };
  [key: string]: unknown;
}

/** The EMF lines written while `record` runs the invocations. */
function published(invocations: Invocation[]): Emf[] {
  vi.stubEnv('POWERTOOLS_METRICS_DISABLED', 'false');
  vi.stubEnv('POWERTOOLS_DEV', '');
  const written: string[] = [];
  const write = vi.spyOn(process.stdout, 'write').mockImplementation(((chunk: unknown) => {
    written.push(String(chunk));
    return true;
  }) as typeof process.stdout.write);
  try {
    const metrics = new Metrics({ namespace: 'aiaas', serviceName: 'aiaas-m' });
    const telemetry = createTelemetry('m', { log: { info() {}, warn() {}, error() {} }, metrics });
    for (const invocation of invocations) telemetry.record?.(invocation);
  } finally {
    write.mockRestore();
  }
  return written
    .join('')
    .split('\n')
    .filter((line) => line.includes('"_aws"'))
    .map((line) => JSON.parse(line) as Emf);
}

/** Per line: its dimension sets, its dimension values, its metrics and their values. */
const shape = (emf: Emf) => {
  const [directive] = emf._aws.CloudWatchMetrics;
  const names = directive!.Metrics.map((m) => m.Name);
  return {
    dimensions: directive!.Dimensions.map((set) => [...set].sort()),
    values: Object.fromEntries(
      ['model', 'version', 'role', 'service'].filter((k) => k in emf).map((k) => [k, emf[k]]),
    ),
    metrics: Object.fromEntries(names.map((n) => [n, emf[n]])),
  };
};

afterEach(() => {
  vi.unstubAllEnvs();
});

describe('per-version metrics', () => {
  it('publishes each invocation with its own version, role and shadow', () => {
    const lines = published([
      { version: 3, role: 'live', coldStart: true, latencyMs: 2 },
      { version: 4, role: 'canary', coldStart: false, latencyMs: 3 },
      { version: 4, role: 'canary', failedStatus: 400, coldStart: false, latencyMs: 1 },
      { failedStatus: 503, coldStart: false, latencyMs: 1 },
      {
        version: 3,
        role: 'live',
        coldStart: false,
        latencyMs: 1,
        shadow: {
          kind: 'compared',
          version: 5,
          ms: 0.5,
          maxAbsDiff: 0.25,
          topClassRows: 2,
          topClassDisagreements: 1,
        },
      },
      {
        version: 3,
        role: 'live',
        coldStart: false,
        latencyMs: 1,
        shadow: { kind: 'failed', version: 5, ms: 0.1 },
      },
      { version: 3, role: 'live', coldStart: false, latencyMs: 1, shadow: { kind: 'slow', version: 5 } },
    ]).map(shape);
    const perVersion = [['model', 'role', 'service', 'version']];
    expect(lines).toEqual([
      {
        dimensions: perVersion,
        values: { model: 'm', version: '3', role: 'live', service: 'aiaas-m' },
        metrics: { [METRICS.predictions]: 1, [METRICS.predictLatency]: 2, [METRICS.coldStart]: 1 },
      },
      {
        dimensions: perVersion,
        values: { model: 'm', version: '4', role: 'canary', service: 'aiaas-m' },
        metrics: { [METRICS.predictions]: 1, [METRICS.predictLatency]: 3 },
      },
      {
        dimensions: perVersion,
        values: { model: 'm', version: '4', role: 'canary', service: 'aiaas-m' },
        metrics: { [METRICS.clientErrors]: 1 },
      },
      {
        dimensions: [['model', 'service']],
        values: { model: 'm', service: 'aiaas-m' },
        metrics: { [METRICS.faults]: 1 },
      },
      {
        dimensions: perVersion,
        values: { model: 'm', version: '3', role: 'live', service: 'aiaas-m' },
        metrics: { [METRICS.predictions]: 1, [METRICS.predictLatency]: 1 },
      },
      {
        dimensions: perVersion,
        values: { model: 'm', version: '5', role: 'shadow', service: 'aiaas-m' },
        metrics: {
          [METRICS.shadowRuns]: 1,
          [METRICS.predictLatency]: 0.5,
          [METRICS.shadowMaxAbsDiff]: 0.25,
          [METRICS.shadowTopRows]: 2,
          [METRICS.shadowTopDisagreements]: 1,
        },
      },
      {
        dimensions: perVersion,
        values: { model: 'm', version: '3', role: 'live', service: 'aiaas-m' },
        metrics: { [METRICS.predictions]: 1, [METRICS.predictLatency]: 1 },
      },
      {
        dimensions: perVersion,
        values: { model: 'm', version: '5', role: 'shadow', service: 'aiaas-m' },
        metrics: { [METRICS.shadowRuns]: 1, [METRICS.predictLatency]: 0.1, [METRICS.shadowFailures]: 1 },
      },
      {
        dimensions: perVersion,
        values: { model: 'm', version: '3', role: 'live', service: 'aiaas-m' },
        metrics: { [METRICS.predictions]: 1, [METRICS.predictLatency]: 1 },
      },
      {
        dimensions: perVersion,
        values: { model: 'm', version: '5', role: 'shadow', service: 'aiaas-m' },
        metrics: { [METRICS.shadowSlow]: 1 },
      },
    ]);
  });
});
