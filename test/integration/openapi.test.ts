/**
 * `GET /v1/models/<model>/openapi.json` over real HTTP, from the local stack (s3rver and the
 * function-URL server on the built inference bundle: run `npm run build` first): for the example
 * model (diabetes, from models/manifest.json), a multi-input/multi-output model and a Keras-imported
 * one, the document passes an OpenAPI 3.1 validator, requests built from its schemas are answered
 * 200 with bodies its response schemas admit, and after a promotion the document describes the
 * new version.
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Validator } from '@seriousme/openapi-schema-validator';
import type { io } from '@tensorflow/tfjs-core';
import type { LayersModel, SymbolicTensor } from '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseJsonWithNonFinite } from '../../functions/inference/json.js';
import { convertKeras } from '../../functions/shared/keras/convert.js';
import { loadManifest } from '../../functions/shared/manifest.js';
import {
  artifactsToFiles,
  captureIOHandler,
  disposeModel,
  loadModel,
} from '../../functions/shared/model/artifacts.js';
import type { TfRuntime } from '../../functions/shared/runtime/types.js';
import { buildModel } from '../../functions/shared/training/train.js';
import { createRuntime } from '../../layers/tfjs-runtime/runtime.js';
import { sampleRequest, schemaValidator, seededChoices } from '../support/openapi-sample.js';
import { eventually, startTestStack, type TestStack } from '../support/stack.js';

const ROOT = resolve(import.meta.dirname, '../..');

let stack: TestStack;
let runtime: TfRuntime;
const validator = new Validator();

/** Publishes a model's artifacts as `publish` does (signature from tfjs) and promotes it when asked. */
async function publish(model: string, artifacts: io.ModelArtifacts, promote: boolean): Promise<number> {
  const loaded = await loadModel(runtime, { load: async () => artifacts });
  const { signature } = loaded;
  // tfjs keeps one engine per process, shared with the bundle the server runs: free the variables.
  disposeModel(loaded);
  const metadata = await stack.s3.registry.publish(model, artifactsToFiles(artifacts), {
    format: 'layers-model',
    signature,
    metrics: {},
    source: { kind: 'publish', test: true },
    parent: null,
  });
  if (promote) await stack.s3.registry.setAlias(model, 'live', metadata.version);
  return metadata.version;
}

async function saved(net: LayersModel): Promise<io.ModelArtifacts> {
  const capture = captureIOHandler();
  await net.save(capture);
  net.dispose();
  return capture.artifacts!;
}

function diabetes(): LayersModel {
  const definition = loadManifest(join(ROOT, 'models/manifest.json')).models.find(
    (m) => m.name === 'diabetes',
  )!.definition!;
  const n = definition.features.length;
  return buildModel(runtime, definition, {
    mean: Array.from({ length: n }, () => 1),
    std: Array.from({ length: n }, () => 2),
  });
}

/** Two inputs (float features; Embedding ids) and two outputs (a score; a 2×3 map). */
function multi(): LayersModel {
  const { layers } = runtime;
  const l = layers.layers;
  const features = layers.input({ shape: [3], name: 'features' });
  const ids = layers.input({ shape: [2], dtype: 'int32', name: 'ids' });
  const embedded = l.flatten().apply(l.embedding({ inputDim: 5, outputDim: 2 }).apply(ids)) as SymbolicTensor;
  const hidden = l.dense({ units: 6, activation: 'relu' }).apply(l.concatenate().apply([features, embedded]));
  const score = l.dense({ units: 1, activation: 'sigmoid', name: 'score' }).apply(hidden);
  const map = l.reshape({ targetShape: [2, 3], name: 'map' }).apply(hidden);
  return layers.model({ inputs: [features, ids], outputs: [score, map] as SymbolicTensor[] });
}

beforeAll(async () => {
  stack = await startTestStack({ aliasCheckSeconds: 1 });
  runtime = await createRuntime('cpu');
  await publish('diabetes', await saved(diabetes()), true);
  await publish('multi', await saved(multi()), true);
  const h5 = join(ROOT, 'test/fixtures/keras/functional.h5');
  const keras = await convertKeras(new Uint8Array(readFileSync(h5)), 'functional.h5');
  await publish('keras', keras.artifacts, true);
}, 120_000);
afterAll(async () => {
  await stack?.close();
});

async function documentOf(model: string) {
  const res = await stack.call('GET', `/v1/models/${model}/openapi.json`);
  expect(res.status, res.text).toBe(200);
  expect(res.headers.get('content-type')).toBe('application/json');
  expect(res.headers.get('x-aiaas-model-version')).toMatch(/^[1-9][0-9]*$/);
  return res.json as never as { info: { version: string }; components: { schemas: Record<string, never> } };
}

describe('the OpenAPI document served by the function', () => {
  for (const model of ['diabetes', 'multi', 'keras']) {
    it(`${model}: validates, and requests built from it are answered as it says`, async () => {
      const doc = await documentOf(model);
      const result = await validator.validate(structuredClone(doc));
      expect(result.errors ?? []).toEqual([]);
      const check = schemaValidator(doc);
      for (let seed = 1; seed <= 4; seed++) {
        for (const format of ['row', 'columnar'] as const) {
          const request = sampleRequest(doc, format, seededChoices(seed * 31 + (format === 'row' ? 0 : 1)));
          expect(check('PredictRequest', request)).toBeUndefined();
          const res = await stack.call('POST', `/v1/models/${model}:predict`, JSON.stringify(request));
          const what = `${JSON.stringify(request)} → ${res.text}`;
          expect(res.status, what).toBe(200);
          expect(res.headers.get('x-aiaas-model-version')).toBe(doc.info.version);
          const answer = parseJsonWithNonFinite(res.text);
          expect(
            check(format === 'row' ? 'RowPredictResponse' : 'ColumnarPredictResponse', answer),
            what,
          ).toBe(undefined);
        }
      }
      const status = await stack.call('GET', `/v1/models/${model}`);
      expect(check('ModelStatus', status.json)).toBeUndefined();
      const metadata = await stack.call('GET', `/v1/models/${model}/metadata`);
      expect(check('ModelMetadata', metadata.json)).toBeUndefined();
      const refused = await stack.call('POST', `/v1/models/${model}:predict`, '{"instances": []}');
      expect(refused.status).toBe(400);
      expect(check('Error', refused.json)).toBeUndefined();
      const wrongMethod = await stack.call('DELETE', `/v1/models/${model}/openapi.json`);
      expect(wrongMethod.status).toBe(405);
      expect(wrongMethod.headers.get('allow')).toBe('GET');
      expect(check('Error', wrongMethod.json)).toBeUndefined();
    });
  }

  it('describes the new version after a promotion changes the signature', async () => {
    const before = await documentOf('diabetes');
    expect(before.info.version).toBe('1');
    const { layers } = runtime;
    const wider = layers.sequential({ layers: [layers.layers.dense({ units: 2, inputShape: [5] })] });
    const version = await publish('diabetes', await saved(wider), true);
    await eventually(async () => {
      const after = await documentOf('diabetes');
      expect(after.info.version).toBe(String(version));
    });
    const after = await documentOf('diabetes');
    const check = schemaValidator(after);
    expect(check('RowPredictRequest', { instances: [[1, 2, 3, 4, 5]] })).toBeUndefined();
    expect(check('RowPredictRequest', { instances: [[1, 2, 3, 4, 5, 6, 7, 8]] })).toBeDefined();
    const res = await stack.call('POST', '/v1/models/diabetes:predict', '{"instances": [[1, 2, 3, 4, 5]]}');
    expect(res.status).toBe(200);
    expect(check('RowPredictResponse', res.json)).toBeUndefined();
    // The version no longer served: 404 in the error shape.
    const old = await stack.call('GET', '/v1/models/diabetes/versions/1/openapi.json');
    expect(old.status).toBe(404);
    expect(check('Error', old.json)).toBeUndefined();
  });
});
