/**
 * The names of the inference function's metrics (EMF, namespace AIAAS_METRICS_NAMESPACE's default
 * `aiaas`), defined once: the function publishes them, the rollout function and `aiaas rollout
 * status` read them back (CloudWatch GetMetricData), the CDK alarms watch them.
 *
 * Dimensions: every per-version metric is published with `model`, `version` and `role`
 * (VersionRole) beside Powertools' `service`.
 */
export const METRICS = {
  /** Predict requests a version answered (Count). */
  predictions: 'Predictions',
  /** Latency of those requests (Milliseconds); p50/p99 are read as statistics. */
  predictLatency: 'PredictLatency',
  /** 4xx answers (Count). */
  clientErrors: 'ClientErrors',
  /** 5xx answers (Count). */
  faults: 'Faults',
  coldStart: 'ColdStart',
  /** A shadow version run beside the served one (Count). */
  shadowRuns: 'ShadowRuns',
  /** Shadow runs that failed (Count). */
  shadowFailures: 'ShadowFailures',
  /** Shadow runs skipped or cut as too slow (Count). */
  shadowSlow: 'ShadowSlow',
  /** Per compared request: the largest |served - shadow| of any output value (None). */
  shadowMaxAbsDiff: 'ShadowMaxAbsDiff',
  /** Classifier rows compared, and those whose top class differed (Count). */
  shadowTopRows: 'ShadowTopClassRows',
  shadowTopDisagreements: 'ShadowTopClassDisagreements',
} as const;

export const METRIC_DIMENSIONS = {
  model: 'model',
  version: 'version',
  role: 'role',
  service: 'service',
} as const;
