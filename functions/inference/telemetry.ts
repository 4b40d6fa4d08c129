/**
 * The inference function's logs and metrics on Powertools for AWS Lambda. Only telemetry-startup.ts
 * imports this module, with `import()`, and only when a line could be printed or metrics published
 * (telemetry-settings.ts), so a cold start that has nothing to say does not load Powertools at all.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { Log } from './log.js';
import { fallbackTelemetry, type Invocation, type Telemetry } from './telemetry-settings.js';

/** Powertools Metrics that tells whether it publishes, by its own rule (POWERTOOLS_METRICS_DISABLED, POWERTOOLS_DEV). */
class FunctionMetrics extends Metrics {
  get publishing(): boolean {
    return !this.isDisabled();
  }
}

/** Powertools Logger behind the function's `Log`, every line tagged with the model. */
function powertoolsLog(model: string): Log {
  const logger = new Logger({
    serviceName: process.env.POWERTOOLS_SERVICE_NAME ?? `aiaas-${model}`,
    persistentKeys: { model },
  });
  return {
    info: (message, extra) => logger.info(message, (extra ?? {}) as never),
    warn: (message, extra) => logger.warn(message, (extra ?? {}) as never),
    error: (message, extra) => logger.error(message, (extra ?? {}) as never),
  };
}

/**
 * Starts logging and metrics for `model`; a given `log` or `metrics` is used instead of Powertools'.
 * Never throws: logging or metrics that cannot start must not take predictions down with them.
 */
export function createTelemetry(
  model: string,
  deps: { readonly log?: Log; readonly metrics?: Metrics },
): Telemetry {
  try {
    const logger = deps.log ?? powertoolsLog(model);
    const own = deps.metrics
      ? undefined
      : new FunctionMetrics({
          namespace: process.env.POWERTOOLS_METRICS_NAMESPACE ?? 'aiaas',
          serviceName: `aiaas-${model}`,
        });
    const metrics = deps.metrics ?? own!;
    metrics.setDefaultDimensions({ model });
    const publishing = !own || own.publishing;
    return { logger, record: publishing ? (invocation) => recordInvocation(metrics, invocation) : undefined };
  } catch (error) {
    return fallbackTelemetry(model, deps, error);
  }
}

/** Publishes one invocation's metrics (EMF): predictions and their latency, errors, the cold start. */
function recordInvocation(metrics: Metrics, invocation: Invocation): void {
  const { predicted, failedStatus, coldStart } = invocation;
  if (predicted !== undefined) {
    metrics.addDimension('version', String(predicted));
    metrics.addMetric('Predictions', MetricUnit.Count, 1);
    metrics.addMetric('PredictLatency', MetricUnit.Milliseconds, invocation.latencyMs);
  } else if (failedStatus !== undefined) {
    metrics.addMetric(failedStatus >= 500 ? 'Faults' : 'ClientErrors', MetricUnit.Count, 1);
  }
  if (coldStart) metrics.addMetric('ColdStart', MetricUnit.Count, 1);
  if (predicted !== undefined || failedStatus !== undefined || coldStart) metrics.publishStoredMetrics();
}
