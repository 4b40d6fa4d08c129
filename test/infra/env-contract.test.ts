/**
 * Both sides of the environment contract agree: what the CDK app writes into each function's
 * environment is what that function's own reader accepts, with the values the manifest asked for.
 */
import { Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { configFromEnv as inferenceConfig } from '../../functions/inference/config.js';
import { configFromEnv as retrainConfig } from '../../functions/retrain/handler.js';
import { AIAAS_BUCKET, AIAAS_MODEL_SPEC } from '../../functions/shared/env.js';
import { runtimePreference } from '../../functions/shared/runtime/load.js';
import { buildApp, exampleManifest } from './helpers.js';

type Variables = Record<string, unknown>;

/** Each Lambda function's variables, the bucket name (a token until deploy) replaced by a real one. */
let functions: Variables[];

beforeAll(() => {
  const manifest = exampleManifest() as { models: Record<string, unknown>[] };
  const withVariant = {
    ...manifest,
    models: [...manifest.models, { name: 'iris', aliasCheckSeconds: 30, fastPath: 'off' }],
  };
  const result = buildApp(withVariant);
  functions = [...result.models.values()].flatMap((stack) =>
    Object.values(
      Template.fromStack(stack).findResources('AWS::Lambda::Function') as Record<
        string,
        { Properties: { Environment: { Variables: Variables } } }
      >,
    ).map((fn) => ({ ...fn.Properties.Environment.Variables, [AIAAS_BUCKET]: 'aiaas-registry-test' })),
  );
}, 240_000);

const asEnv = (variables: Variables) => variables as Record<string, string>;

describe('the environment the CDK app writes', () => {
  it('is read by each inference function as the manifest says', () => {
    const inference = functions.filter((v) => v[AIAAS_MODEL_SPEC] === undefined).map(asEnv);
    const configs = inference.map((env) => inferenceConfig(env));
    expect(configs).toContainEqual(
      expect.objectContaining({
        bucket: 'aiaas-registry-test',
        model: 'diabetes',
        alias: 'live',
        aliasCheckSeconds: 60,
        fastPath: 'auto',
      }),
    );
    expect(configs).toContainEqual(
      expect.objectContaining({ model: 'iris', aliasCheckSeconds: 30, fastPath: 'off' }),
    );
    for (const env of inference) expect(runtimePreference(env)).toBe('wasm');
  });

  it('is read by each retraining function, its spec that of its model', () => {
    const retraining = functions.filter((v) => v[AIAAS_MODEL_SPEC] !== undefined).map(asEnv);
    expect(retraining.length).toBeGreaterThan(0);
    for (const env of retraining) {
      const config = retrainConfig(env);
      expect(config.spec.name).toBe(config.model);
      expect(config.bucket).toBe('aiaas-registry-test');
    }
  });
});
