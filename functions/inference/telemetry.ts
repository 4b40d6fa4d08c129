/**
 * The inference function's logs and metrics on Powertools for AWS Lambda. Only telemetry-startup.ts
 * imports this module, with `import()`, and only when a line could be printed or metrics published
 * (telemetry-settings.ts), so a cold start that has nothing to say does not load Powertools at all.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { METRIC_DIMENSIONS, METRICS } from '../shared/rollout/metric-names.js';
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

/**
 * Publishes one invocation's metrics (EMF, names in metric-names.ts). Per version: Predictions and
 * PredictLatency for a prediction, ClientErrors or Faults for an error answer, with dimensions
 * model, version and role (and Powertools' service); an error before any version was chosen is
 * published with model alone. A shadow's run is a second EMF line, its version with role `shadow`:
 * ShadowRuns and PredictLatency (its run time), then ShadowFailures, or ShadowMaxAbsDiff and, for
 * classifier-shaped outputs, ShadowTopClassRows and ShadowTopClassDisagreements; a skipped one is
 * ShadowSlow. Dimensions added per invocation are cleared by each publish (Powertools 2), and the
 * function publishes synchronously at the end of each invocation, so every metric lands with its
 * own version's dimension set.
 */
function recordInvocation(metrics: Metrics, invocation: Invocation): void {
  const { version, failedStatus, coldStart } = invocation;
  if (version !== undefined) {
    metrics.addDimension(METRIC_DIMENSIONS.version, String(version));
    metrics.addDimension(METRIC_DIMENSIONS.role, invocation.role ?? 'live');
  }
  if (failedStatus !== undefined) {
    metrics.addMetric(failedStatus >= 500 ? METRICS.faults : METRICS.clientErrors, MetricUnit.Count, 1);
  } else if (version !== undefined) {
    metrics.addMetric(METRICS.predictions, MetricUnit.Count, 1);
    metrics.addMetric(METRICS.predictLatency, MetricUnit.Milliseconds, invocation.latencyMs);
  }
  if (coldStart) metrics.addMetric(METRICS.coldStart, MetricUnit.Count, 1);
  if (version !== undefined || failedStatus !== undefined || coldStart) metrics.publishStoredMetrics();
  const { shadow } = invocation;
  if (shadow === undefined) return;
  metrics.addDimension(METRIC_DIMENSIONS.version, String(shadow.version));
  metrics.addDimension(METRIC_DIMENSIONS.role, 'shadow');
  if (shadow.kind === 'slow') {
    metrics.addMetric(METRICS.shadowSlow, MetricUnit.Count, 1);
  } else {
    metrics.addMetric(METRICS.shadowRuns, MetricUnit.Count, 1);
    metrics.addMetric(METRICS.predictLatency, MetricUnit.Milliseconds, shadow.ms);
    if (shadow.kind === 'failed') {
      metrics.addMetric(METRICS.shadowFailures, MetricUnit.Count, 1);
    } else {
      // EMF values are JSON numbers: a NaN against a number (Infinity) is written as the largest one.
      const diff = Number.isFinite(shadow.maxAbsDiff) ? shadow.maxAbsDiff : Number.MAX_VALUE;
      metrics.addMetric(METRICS.shadowMaxAbsDiff, MetricUnit.NoUnit, diff);
      if (shadow.topClassRows > 0) {
        metrics.addMetric(METRICS.shadowTopRows, MetricUnit.Count, shadow.topClassRows);
        metrics.addMetric(METRICS.shadowTopDisagreements, MetricUnit.Count, shadow.topClassDisagreements);
      }
    }
  }
  metrics.publishStoredMetrics();
}
