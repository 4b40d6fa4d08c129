/**
 * The manifest the rollout infra tests synthesize: a model with a rollout plan (on alias `prod`,
 * so a test can tell its alias from the default), one with the plan's defaults, and one without a
 * plan. Native runtimes, so no tfjs layer is bundled.
 */
export const ROLLOUT_MODEL = 'ranked';
export const ROLLOUT_ALIAS = 'prod';

export function rolloutManifest() {
  return {
    app: 'aiaas',
    models: [
      {
        name: ROLLOUT_MODEL,
        alias: ROLLOUT_ALIAS,
        runtime: 'native',
        rollout: {
          steps: [5, 25, 100],
          stepMinutes: 15,
          minRequests: 200,
          maxErrorRateIncrease: 0.02,
          maxP99Ratio: 1.25,
          schedule: 'rate(2 minutes)',
        },
      },
      { name: 'defaults', runtime: 'native', rollout: {} },
      { name: 'plain', runtime: 'native' },
    ],
  };
}
