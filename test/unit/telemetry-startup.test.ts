/**
 * The telemetry start-up's contract (functions/inference/telemetry-startup.ts), with injected logs
 * and metrics: once Powertools is up, or when nothing is published, an invocation's start and end
 * are synchronous (no promise for the handler to await); an invocation is timed only when metrics
 * may be published; metrics name the cold start once; a line logged before the start is written
 * once it is up.
 */
import type { Metrics } from '@aws-lambda-powertools/metrics';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Log } from '../../functions/inference/log.js';
import { LazyTelemetry } from '../../functions/inference/telemetry-startup.js';

/** Metrics that keep what they are told to publish. */
function fakeMetrics(published: Record<string, number>[]): Metrics {
  let stored: Record<string, number> = {};
  return {
    setDefaultDimensions() {},
    addDimension() {},
    addMetric(name: string, _unit: unknown, value: number) {
      stored[name] = value;
    },
    publishStoredMetrics() {
      published.push(stored);
      stored = {};
    },
  } as unknown as Metrics;
}

function capturingLog(lines: string[]): Log {
  const push = (level: string) => (message: string) => {
    lines.push(`${level} ${message}`);
  };
  return { info: push('info'), warn: push('warn'), error: push('error') };
}

afterEach(() => {
  vi.unstubAllEnvs();
});

describe('LazyTelemetry', () => {
  it('neither times nor waits when nothing is published', () => {
    vi.stubEnv('POWERTOOLS_METRICS_DISABLED', 'true');
    const telemetry = new LazyTelemetry('m', { log: capturingLog([]) });
    for (let i = 0; i < 3; i++) {
      const started = telemetry.begin();
      expect(started).toBeUndefined();
      expect(telemetry.finish(started, 1, undefined)).toBeUndefined();
    }
  });

  it('waits only for the start, then records each invocation synchronously, the cold start once', async () => {
    const published: Record<string, number>[] = [];
    const telemetry = new LazyTelemetry('m', { log: capturingLog([]), metrics: fakeMetrics(published) });
    const first = telemetry.finish(telemetry.begin(), 3, undefined);
    expect(first).toBeInstanceOf(Promise);
    await first;
    const started = telemetry.begin();
    expect(typeof started).toBe('number');
    expect(telemetry.finish(started, undefined, 503)).toBeUndefined();
    expect(telemetry.finish(telemetry.begin(), 3, undefined)).toBeUndefined();
    expect(published.map((metrics) => Object.keys(metrics).sort())).toEqual([
      ['ColdStart', 'PredictLatency', 'Predictions'],
      ['Faults'],
      ['PredictLatency', 'Predictions'],
    ]);
  });

  it('writes a line logged before the start once it is up, before the invocation ends', async () => {
    vi.stubEnv('POWERTOOLS_METRICS_DISABLED', 'true');
    vi.stubEnv('POWERTOOLS_LOG_LEVEL', 'WARN');
    const written: string[] = [];
    const error = vi.spyOn(console, 'error').mockImplementation(() => {});
    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(((chunk: unknown) => {
      written.push(String(chunk));
      return true;
    }) as typeof process.stderr.write);
    try {
      const telemetry = new LazyTelemetry('m');
      const started = telemetry.begin();
      telemetry.log.info('not printed at WARN');
      telemetry.log.error('printed');
      const ending = telemetry.finish(started, undefined, 503);
      expect(ending).toBeInstanceOf(Promise);
      await ending;
      const text = [...written, ...error.mock.calls.map((call) => String(call[0]))].join('\n');
      expect(text).toMatch(/"message":"printed"/);
      expect(text).not.toMatch(/not printed/);
      expect(telemetry.finish(telemetry.begin(), undefined, 503)).toBeUndefined();
    } finally {
      stderr.mockRestore();
      error.mockRestore();
    }
  });
});
