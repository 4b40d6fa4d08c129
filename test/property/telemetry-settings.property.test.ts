/**
 * The handler skips loading Powertools when telemetry-settings.ts says nothing could be printed or
 * published. That is only safe if those rules never say "certainly not" where Powertools itself
 * (as the handler starts it, createTelemetry) would print a line or publish metrics. Checked here
 * against Powertools, over environments mixing valid, miscased, padded and invalid values.
 */
import fc from 'fast-check';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createTelemetry } from '../../functions/inference/telemetry.js';
import { type LineLevel, mayLog, mayPublishMetrics } from '../../functions/inference/telemetry-settings.js';
import { captureOutput } from '../support/output.js';

const KEYS = [
  'AWS_LAMBDA_LOG_LEVEL',
  'POWERTOOLS_LOG_LEVEL',
  'LOG_LEVEL',
  'POWERTOOLS_LOGGER_SAMPLE_RATE',
  'POWERTOOLS_METRICS_DISABLED',
  'POWERTOOLS_DEV',
] as const;

const levels = fc.constantFrom(
  'TRACE',
  'DEBUG',
  'INFO',
  'WARN',
  'ERROR',
  'CRITICAL',
  'FATAL',
  'SILENT',
  'warn',
  'Error',
  ' WARN ',
  'ERROR\n',
  '',
  'verbose',
);
const booleans = fc.constantFrom(
  'true',
  'false',
  'TRUE',
  ' true ',
  '1',
  '0',
  'yes',
  'no',
  'on',
  'off',
  'y',
  '',
  'maybe',
);
const rates = fc.constantFrom('0', '0.0', ' 0 ', '', '1', '0.5', '-1', '2', 'x');

const environments = fc.record(
  {
    AWS_LAMBDA_LOG_LEVEL: levels,
    POWERTOOLS_LOG_LEVEL: levels,
    LOG_LEVEL: levels,
    POWERTOOLS_LOGGER_SAMPLE_RATE: rates,
    POWERTOOLS_METRICS_DISABLED: booleans,
    POWERTOOLS_DEV: booleans,
  },
  { requiredKeys: [] },
);

const saved = Object.fromEntries(KEYS.map((key) => [key, process.env[key]]));

function useEnvironment(env: Partial<Record<(typeof KEYS)[number], string>>): void {
  for (const key of KEYS) {
    const value = env[key];
    if (value === undefined) delete process.env[key];
    else process.env[key] = value;
  }
}

afterEach(() => {
  vi.restoreAllMocks();
  useEnvironment(saved as Record<string, string>);
});

/** Everything written to stdout, stderr or the console while `run` runs. */
function written(run: () => void): string {
  const out = captureOutput();
  try {
    run();
  } finally {
    vi.restoreAllMocks();
  }
  return out.join('\n');
}

describe('telemetry settings agree with Powertools', () => {
  it('never rule out a line that Powertools would print', () => {
    fc.assert(
      fc.property(environments, fc.constantFrom<LineLevel>('info', 'warn', 'error'), (env, level) => {
        useEnvironment(env);
        if (mayLog(level)) return;
        const out = written(() => {
          // The handler's own Powertools setup, with its console fallback when Powertools refuses to start.
          createTelemetry('probe-model', {}).logger[level]('probe line');
        });
        expect(out).not.toContain('probe line');
      }),
      { numRuns: 300 },
    );
  });

  it('never rule out metrics that Powertools would publish', () => {
    fc.assert(
      fc.property(environments, (env) => {
        useEnvironment(env);
        if (mayPublishMetrics()) return;
        let record: ReturnType<typeof createTelemetry>['record'];
        written(() => {
          record = createTelemetry('probe-model', {}).record;
        });
        expect(record).toBeUndefined();
      }),
      { numRuns: 300 },
    );
  });

  it('rule out what the deployed and local settings turn off', () => {
    // The local stack: WARN, metrics off. Nothing at INFO, no metrics: Powertools need not load.
    useEnvironment({ POWERTOOLS_LOG_LEVEL: 'WARN', POWERTOOLS_METRICS_DISABLED: 'true' });
    expect(mayLog('info')).toBe(false);
    expect(mayLog('warn')).toBe(true);
    expect(mayPublishMetrics()).toBe(false);
    // Lambda's advanced logging controls win over POWERTOOLS_LOG_LEVEL.
    useEnvironment({ AWS_LAMBDA_LOG_LEVEL: 'ERROR', POWERTOOLS_LOG_LEVEL: 'DEBUG' });
    expect(mayLog('warn')).toBe(false);
    expect(mayLog('error')).toBe(true);
    // A deployed function's defaults: INFO, metrics published.
    useEnvironment({ POWERTOOLS_LOG_LEVEL: 'INFO' });
    expect(mayLog('info')).toBe(true);
    expect(mayPublishMetrics()).toBe(true);
    // Debug sampling may lower the level on any invocation: nothing is ruled out.
    useEnvironment({ POWERTOOLS_LOG_LEVEL: 'SILENT', POWERTOOLS_LOGGER_SAMPLE_RATE: '0.1' });
    expect(mayLog('info')).toBe(true);
  });
});
