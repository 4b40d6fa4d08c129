import { describe, expect, it } from 'vitest';
import { configFromEnv, createRetrainHandler } from '../../functions/retrain/handler.js';
import { ConfigurationError, ValidationError } from '../../functions/shared/errors.js';

const spec = {
  name: 'diabetes',
  definition: {
    features: ['glucose'],
    label: 'outcome',
    layers: [{ type: 'dense', units: 1, activation: 'sigmoid' }],
    compile: {},
    fit: { epochs: 1 },
  },
};
const env = { AIAAS_BUCKET: 'b', AIAAS_MODEL: 'diabetes', AIAAS_MODEL_SPEC: JSON.stringify(spec) };

describe('retrain handler configuration', () => {
  it('reads and validates its environment', () => {
    const config = configFromEnv({ ...env, AIAAS_S3_ENDPOINT: 'http://127.0.0.1:1' });
    expect(config).toMatchObject({ bucket: 'b', model: 'diabetes', endpoint: 'http://127.0.0.1:1' });
    expect(config.spec.definition?.fit.batchSize).toBe(32);
    expect(() => configFromEnv({ ...env, AIAAS_BUCKET: '' })).toThrow(/AIAAS_BUCKET is not set/);
    expect(() => configFromEnv({ ...env, AIAAS_MODEL_SPEC: '{' })).toThrow(ConfigurationError);
    expect(() => configFromEnv({ ...env, AIAAS_MODEL: 'other' })).toThrow(/describes "diabetes"/);
    expect(() =>
      configFromEnv({ ...env, AIAAS_MODEL_SPEC: JSON.stringify({ ...spec, alias: 'Bad!' }) }),
    ).toThrow(/field "alias"/);
  });

  it('refuses to retrain another model than its own', async () => {
    const handler = createRetrainHandler(configFromEnv(env), {
      runtime: () => Promise.reject(new Error('not reached')),
    });
    await expect(handler({ model: 'other' })).rejects.toThrow(ValidationError);
  });
});
