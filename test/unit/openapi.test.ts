/**
 * `GET /v1/models/<model>/openapi.json`: the route, and the document as the real handler serves it
 * (in-memory registry, cpu runtime) for the example model (diabetes, built from models/manifest.json),
 * a multi-input/multi-output model and Keras-imported models. The document must pass an OpenAPI 3.1
 * validator, its schemas must compile as JSON Schema 2020-12, requests built from its schemas alone
 * must be accepted by the function, and the function's answers must fit its response schemas.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Validator } from '@seriousme/openapi-schema-validator';
import type { SymbolicTensor } from '@tensorflow/tfjs-layers';
import { beforeAll, describe, expect, it } from 'vitest';
import type { FunctionUrlResult } from '../../functions/inference/handler.js';
import { parseJsonWithNonFinite } from '../../functions/inference/json.js';
import { type Route, route } from '../../functions/inference/routes.js';
import { MethodNotAllowedError, NotFoundError } from '../../functions/shared/errors.js';
import { convertKeras } from '../../functions/shared/keras/convert.js';
import { loadManifest } from '../../functions/shared/manifest.js';
import type { TfRuntime } from '../../functions/shared/runtime/types.js';
import { buildModel } from '../../functions/shared/training/train.js';
import { createRuntime } from '../../layers/tfjs-runtime/runtime.js';
import { componentSchema, sampleRequest, schemaValidator, seededChoices } from '../support/openapi-sample.js';
import { type ServedModel, serveModel } from '../support/serve-model.js';

const ROOT = resolve(import.meta.dirname, '../..');
const KERAS = join(ROOT, 'test/fixtures/keras');
const SHARED_H5 = join(ROOT, '../shared/models/keras-h5-diabetes/model.h5');

function thrown(f: () => unknown): Error {
  try {
    f();
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected an error');
}

describe('route: /openapi.json', () => {
  it('routes GET and HEAD of the model, a version or a label to the document', () => {
    const cases: [string, Route][] = [
      ['/v1/models/m/openapi.json', { kind: 'openapi', model: 'm' }],
      ['/v1/models/m/openapi.json/', { kind: 'openapi', model: 'm' }],
      ['/v1/models/m/versions/03/openapi.json', { kind: 'openapi', model: 'm', version: 3 }],
      ['/v1/models/m/labels/live/openapi.json', { kind: 'openapi', model: 'm', label: 'live' }],
    ];
    for (const [path, expected] of cases) {
      expect(route('GET', path, 'm'), path).toEqual(expected);
      expect(route('HEAD', path, 'm'), path).toEqual(expected);
    }
    // The paths beside it keep their meaning.
    expect(route('GET', '/v1/models/m/metadata', 'm')).toEqual({ kind: 'metadata', model: 'm' });
    expect(route('GET', '/v1/models/m', 'm')).toEqual({ kind: 'status', model: 'm' });
    expect(route('POST', '/v1/models/m:predict', 'm')).toEqual({ kind: 'predict', model: 'm' });
  });

  it('answers 405 with Allow: GET for another method', () => {
    for (const method of ['POST', 'PUT', 'DELETE']) {
      const error = thrown(() => route(method, '/v1/models/m/openapi.json', 'm'));
      expect(error).toBeInstanceOf(MethodNotAllowedError);
      expect(error.message).toBe(`Use GET for the OpenAPI document, not ${method}`);
      expect((error as MethodNotAllowedError).allow).toEqual(['GET']);
    }
    expect(thrown(() => route('POST', '/v1/models/m/metadata', 'm')).message).toBe(
      'Use GET for metadata, not POST',
    );
  });

  it('answers 404 naming the problem for another model, version or a path that is not the document', () => {
    expect(thrown(() => route('GET', '/v1/models/other/openapi.json', 'm')).message).toBe(
      'Model "other" is not served here (this function serves "m")',
    );
    expect(thrown(() => route('GET', '/v1/models/m/versions/x/openapi.json', 'm')).message).toBe(
      'Version "x" of "m" does not exist: versions are positive integers',
    );
    for (const path of [
      '/v1/models/m/openapi.yaml',
      '/v1/models/m/openapijson',
      '/v1/models/m/openapi.json/x',
      '/v1/models/m/openapi.json:predict',
      '/v1/models/m:openapi.json',
      '/v1/models/m/metadata/openapi.json',
    ]) {
      const error = thrown(() => route('GET', path, 'm'));
      expect(error, path).toBeInstanceOf(NotFoundError);
      expect(error.message, path).toBe(
        `No route for ${path}: use POST /v1/models/<model>:predict, GET /v1/models/<model>, GET /v1/models/<model>/metadata or GET /v1/models/<model>/openapi.json`,
      );
    }
  });
});

let runtime: TfRuntime;
let validator: Validator;
beforeAll(async () => {
  runtime = await createRuntime('cpu');
  validator = new Validator();
});

type Doc = Record<string, unknown> & {
  components: { schemas: Record<string, Record<string, unknown>> };
  paths: Record<
    string,
    Record<string, { requestBody?: { content: Record<string, { examples?: unknown }> } }>
  >;
};

async function get(served: ServedModel, path: string, method = 'GET'): Promise<FunctionUrlResult> {
  return served.handler({ rawPath: path, requestContext: { http: { method }, requestId: 'test' } });
}

function body(res: FunctionUrlResult): unknown {
  return parseJsonWithNonFinite(res.body);
}

/** The example model: models/manifest.json's diabetes definition, as retraining builds it (untrained). */
async function diabetes(model: string): Promise<ServedModel> {
  const definition = loadManifest(join(ROOT, 'models/manifest.json')).models.find(
    (m) => m.name === 'diabetes',
  )!.definition!;
  const features = definition.features.length;
  const net = buildModel(runtime, definition, {
    mean: Array.from({ length: features }, (_, i) => i),
    std: Array.from({ length: features }, (_, i) => i + 1),
  });
  return serveModel(runtime, net, { model });
}

/**
 * Four inputs (float features, Embedding ids as int32, a fixed 2×2 grid, a sequence of free length)
 * and three outputs (a score, class probabilities, a 2×2 map).
 */
async function multi(name: string): Promise<ServedModel> {
  const { layers } = runtime;
  const l = layers.layers;
  const features = layers.input({ shape: [3], name: 'features' });
  const ids = layers.input({ shape: [4], dtype: 'int32', name: 'ids' });
  const grid = layers.input({ shape: [2, 2], name: 'grid' });
  const sequence = layers.input({ shape: [null, 2], name: 'sequence' });
  const embedded = l.flatten().apply(l.embedding({ inputDim: 7, outputDim: 2 }).apply(ids));
  const joined = l
    .concatenate()
    .apply([
      features,
      embedded as SymbolicTensor,
      l.flatten().apply(grid) as SymbolicTensor,
      l.globalAveragePooling1d({}).apply(sequence) as SymbolicTensor,
    ]);
  const hidden = l.dense({ units: 4, activation: 'relu' }).apply(joined);
  const score = l.dense({ units: 1, activation: 'sigmoid', name: 'score' }).apply(hidden);
  const probs = l.dense({ units: 3, activation: 'softmax', name: 'probs' }).apply(hidden);
  const map = l.reshape({ targetShape: [2, 2], name: 'map' }).apply(l.dense({ units: 4 }).apply(hidden));
  const model = layers.model({
    inputs: [features, ids, grid, sequence],
    outputs: [score, probs, map] as SymbolicTensor[],
  });
  return serveModel(runtime, model, { model: name });
}

async function keras(path: string, model: string): Promise<ServedModel> {
  const conversion = await convertKeras(new Uint8Array(readFileSync(path)), path.split('/').pop()!);
  return serveModel(runtime, conversion.artifacts, { model });
}

/** What every served model's document must do, whatever its signature. */
function documentContract(title: string, model: string, make: (model: string) => Promise<ServedModel>) {
  describe(`the OpenAPI document of ${title}`, () => {
    let served: ServedModel;
    let doc: Doc;
    let check: ReturnType<typeof schemaValidator>;

    beforeAll(async () => {
      served = await make(model);
      const res = await get(served, `/v1/models/${model}/openapi.json`);
      expect(res.statusCode, res.body).toBe(200);
      expect(res.headers['content-type']).toBe('application/json');
      expect(res.headers['x-aiaas-model-version']).toBe('1');
      doc = JSON.parse(res.body) as Doc;
      check = schemaValidator(doc);
    });

    it('is a valid OpenAPI 3.1 document whose schemas compile as JSON Schema 2020-12 (strict)', async () => {
      const result = await validator.validate(doc);
      expect(result.errors ?? []).toEqual([]);
      expect(result.valid).toBe(true);
      expect(validator.version).toBe('3.1');
      expect(doc.info).toMatchObject({ version: '1' });
      for (const name of Object.keys(doc.components.schemas)) expect(() => check(name, null)).not.toThrow();
      expect(Object.keys(doc.paths).sort()).toEqual(
        [
          `/v1/models/${model}`,
          `/v1/models/${model}/metadata`,
          `/v1/models/${model}/openapi.json`,
          `/v1/models/${model}/versions/1:predict`,
          `/v1/models/${model}:predict`,
        ].sort(),
      );
    });

    it('describes requests the function accepts, row and columnar, and answers its response schemas admit', async () => {
      for (let seed = 1; seed <= 10; seed++) {
        for (const format of ['row', 'columnar'] as const) {
          const request = sampleRequest(doc, format, seededChoices(seed * 7919 + (format === 'row' ? 0 : 1)));
          const what = `${format} request ${JSON.stringify(request)}`;
          expect(check('PredictRequest', request), what).toBeUndefined();
          expect(
            check(format === 'row' ? 'RowPredictRequest' : 'ColumnarPredictRequest', request),
            what,
          ).toBe(undefined);
          for (const path of [`/v1/models/${model}:predict`, `/v1/models/${model}/versions/1:predict`]) {
            const res = await served.predict(JSON.stringify(request), path);
            expect(res.statusCode, `${what} → ${res.body}`).toBe(200);
            expect(res.headers['x-aiaas-model-version']).toBe('1');
            const answer = body(res);
            expect(check('PredictResponse', answer), `${what} → ${res.body}`).toBeUndefined();
            expect(
              check(format === 'row' ? 'RowPredictResponse' : 'ColumnarPredictResponse', answer),
              `${what} → ${res.body}`,
            ).toBeUndefined();
          }
        }
      }
      expect(served.errors).toEqual([]);
    });

    it("accepts the document's own examples", async () => {
      const examples = doc.paths[`/v1/models/${model}:predict`]!.post!.requestBody!.content[
        'application/json'
      ]!.examples as Record<string, { value: unknown }>;
      expect(Object.keys(examples).sort()).toEqual(['columnar', 'row']);
      for (const [name, example] of Object.entries(examples)) {
        expect(check('PredictRequest', example.value), name).toBeUndefined();
        const res = await served.predict(JSON.stringify(example.value));
        expect(res.statusCode, `${name}: ${res.body}`).toBe(200);
      }
    });

    it('describes status, metadata and errors as the function answers them', async () => {
      const status = await get(served, `/v1/models/${model}`);
      expect(check('ModelStatus', body(status))).toBeUndefined();
      const metadata = await get(served, `/v1/models/${model}/metadata`);
      expect(check('ModelMetadata', body(metadata))).toBeUndefined();
      // A request that breaks the schema (one value too many for the first input) is refused by both.
      const row = sampleRequest(doc, 'row', seededChoices(3)) as { instances: unknown[] };
      const first = served.signature.inputs[0]!.name;
      const instance = row.instances[0] as Record<string, unknown> | unknown[];
      const bad = structuredClone(row);
      const value = Array.isArray(instance)
        ? (bad.instances[0] as unknown[])
        : (bad.instances[0] as Record<string, unknown[]>)[first]!;
      value.push(0);
      expect(check('RowPredictRequest', bad)).toBeDefined();
      const refused = await served.predict(JSON.stringify(bad));
      expect(refused.statusCode).toBe(400);
      expect(check('Error', body(refused))).toBeUndefined();
      // Another version or label: 404 in the error shape; the served label: the same document.
      const other = await get(served, `/v1/models/${model}/versions/2/openapi.json`);
      expect(other.statusCode).toBe(404);
      expect(check('Error', body(other))).toBeUndefined();
      expect(body(other)).toEqual({
        error: `Version 2 of "${model}" is not served; alias "live" serves version 1`,
      });
      const label = await get(served, `/v1/models/${model}/labels/live/openapi.json`);
      expect(label.statusCode).toBe(200);
      expect(JSON.parse(label.body)).toEqual(doc);
      const wrongMethod = await served.handler({
        rawPath: `/v1/models/${model}/openapi.json`,
        requestContext: { http: { method: 'POST' } },
      });
      expect(wrongMethod.statusCode).toBe(405);
      expect(wrongMethod.headers.allow).toBe('GET');
      expect(check('Error', body(wrongMethod))).toBeUndefined();
      const head = await get(served, `/v1/models/${model}/openapi.json`, 'HEAD');
      expect(head.statusCode).toBe(200);
      expect(head.body).toBe('');
      expect(head.headers['x-aiaas-model-version']).toBe('1');
    });
  });
}

documentContract('the example model (diabetes: 8 features)', 'diabetes', diabetes);
documentContract(
  'a multi-input, multi-output model (Embedding ids, fixed and free dimensions)',
  'multi',
  multi,
);
documentContract('a Keras 2 functional model with two inputs (functional.h5)', 'functional', (model) =>
  keras(join(KERAS, 'functional.h5'), model),
);
documentContract('a Keras model with an Embedding (rnn.h5)', 'rnn', (model) =>
  keras(join(KERAS, 'rnn.h5'), model),
);
if (existsSync(SHARED_H5)) {
  documentContract('the real Keras diabetes model (../shared)', 'keras-diabetes', (model) =>
    keras(SHARED_H5, model),
  );
} else {
  console.warn(`openapi: skipping the real Keras diabetes model, absent: ${SHARED_H5}`);
}

describe('the schema of an input that feeds an Embedding', () => {
  it('bounds ids to 0..vocabularySize-1, as the function does', async () => {
    const served = await keras(join(KERAS, 'rnn.h5'), 'rnn');
    const res = await get(served, '/v1/models/rnn/openapi.json');
    expect(res.statusCode, res.body).toBe(200);
    const doc = JSON.parse(res.body) as Doc;
    const check = schemaValidator(doc);
    const vocabulary = served.signature.inputs[0]!.vocabularySize!;
    expect(vocabulary).toBe(12);
    const row = (id: number) => ({ instances: [[0, 1, id, 3, 4]] });
    for (const [id, ok] of [
      [0, true],
      [vocabulary - 1, true],
      [vocabulary, false],
      [-1, false],
    ] as const) {
      expect(check('RowPredictRequest', row(id)) === undefined, `id ${id}`).toBe(ok);
      expect((await served.predict(JSON.stringify(row(id)))).statusCode, `id ${id}`).toBe(ok ? 200 : 400);
    }
    expect(componentSchema(doc, 'RowPredictRequest')).toBeDefined();
  });
});
