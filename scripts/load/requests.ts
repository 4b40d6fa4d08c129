/**
 * The load run's request mix and its checks: the example model (fixed weights, so answers vary by
 * input) published to the registry, good predict requests whose answers are computed in-process
 * from the same weights, client mistakes each with the status it must get, and the check of one
 * answer against its expectation.
 */

import { artifactsToFiles, captureIOHandler, signatureOf } from '../../functions/shared/model/artifacts.js';
import type { ModelRegistry } from '../../functions/shared/registry/registry.js';
import type { TfRuntime } from '../../functions/shared/runtime/types.js';

export const MODEL = 'diabetes';

/** Names no model has: each must be a 404 (the local server decides with a listing per request). */
export const UNKNOWN_MODELS = ['nope', 'ghost', 'missing-model', 'diabetes2'];

/** A Dense 8→10→1 network like the diabetes example, with fixed weights so answers vary by input. */
export async function publishExample(runtime: TfRuntime, registry: ModelRegistry) {
  const { tf, layers } = runtime;
  const net = layers.sequential({
    layers: [
      layers.layers.dense({ units: 10, activation: 'relu', inputShape: [8] }),
      layers.layers.dense({ units: 1, activation: 'sigmoid' }),
    ],
  });
  const kernel1 = Array.from({ length: 80 }, (_, i) => Math.sin(i + 1) * 0.05);
  const bias1 = Array.from({ length: 10 }, (_, i) => Math.cos(i) * 0.1);
  const kernel2 = Array.from({ length: 10 }, (_, i) => Math.sin(3 * i + 1) * 0.4);
  net.layers[0]!.setWeights([tf.tensor2d(kernel1, [8, 10]), tf.tensor1d(bias1)]);
  net.layers[1]!.setWeights([tf.tensor2d(kernel2, [10, 1]), tf.tensor1d([-0.2])]);
  const capture = captureIOHandler();
  await net.save(capture);
  const meta = await registry.publish(MODEL, artifactsToFiles(capture.artifacts!), {
    format: 'layers-model',
    signature: signatureOf(runtime, net),
    metrics: {},
    source: { kind: 'publish', load: true },
    parent: null,
  });
  await registry.setAlias(MODEL, 'live', meta.version);
  const predict = (rows: number[][]): number[] => {
    const x = tf.tensor2d(rows);
    const y = net.predict(x) as ReturnType<typeof tf.tensor2d>;
    const values = Array.from(y.dataSync());
    x.dispose();
    y.dispose();
    return values;
  };
  return { version: meta.version, predict, dispose: () => net.dispose() };
}

const PIMA: number[][] = [
  [6, 148, 72, 35, 0, 33.6, 0.627, 50],
  [1, 85, 66, 29, 0, 26.6, 0.351, 31],
  [8, 183, 64, 0, 0, 23.3, 0.672, 32],
  [1, 89, 66, 23, 94, 28.1, 0.167, 21],
  [0, 137, 40, 35, 168, 43.1, 2.288, 33],
  [5, 116, 74, 0, 0, 25.6, 0.201, 30],
  [3, 78, 50, 32, 88, 31, 0.248, 26],
  [10, 115, 0, 0, 0, 35.3, 0.134, 29],
];

export interface Expectation {
  readonly name: string;
  readonly status: number;
  /** Expected first output of each instance, for good requests. */
  readonly predictions?: number[];
  readonly columnar?: boolean;
}

export interface Tally {
  count: number;
  wrong: number;
  statuses: Record<string, number>;
}

export function buildRequests(predict: (rows: number[][]) => number[]) {
  const json = { 'content-type': 'application/json' };
  const path = `/v1/models/${MODEL}:predict`;
  const good = (name: string, rows: number[][], columnar = false, route = path) => ({
    request: {
      method: 'POST' as const,
      path: route,
      headers: json,
      body: JSON.stringify(columnar ? { inputs: rows } : { instances: rows }),
    },
    expect: { name, status: 200, predictions: predict(rows), columnar } satisfies Expectation,
  });
  const bad = (name: string, status: number, body: string | undefined, method = 'POST', route = path) => ({
    request: {
      method: method as 'POST',
      path: route,
      headers: json,
      ...(body !== undefined ? { body } : {}),
    },
    expect: { name, status } satisfies Expectation,
  });
  return [
    good('predict 1 instance', [PIMA[0]!]),
    bad('malformed JSON', 400, '{"instances": [[6, 148, 72'),
    good('predict 4 instances', PIMA.slice(1, 5)),
    bad('wrong shape (7 features)', 400, JSON.stringify({ instances: [PIMA[0]!.slice(0, 7)] })),
    good('predict columnar', PIMA.slice(5, 8), true),
    bad('non-numeric value', 400, JSON.stringify({ instances: [[6, 'high', 72, 35, 0, 33.6, 0.627, 50]] })),
    good('predict via /fn root', [PIMA[3]!], false, `/fn/${MODEL}/`),
    // `NaN` itself is a TF Serving token (api.ts takes it); a lower-case one is not JSON at all.
    bad('non-JSON literal (nan)', 400, '{"instances": [[nan, 148, 72, 35, 0, 33.6, 0.627, 50]]}'),
    good('predict versioned path', [PIMA[6]!], false, `/v1/models/${MODEL}/versions/1:predict`),
    bad('wrong method (GET :predict)', 405, undefined, 'GET'),
    good('predict 8 instances', PIMA),
    ...UNKNOWN_MODELS.map((name) =>
      bad(
        `unknown model (${name})`,
        404,
        JSON.stringify({ instances: [PIMA[0]] }),
        'POST',
        `/v1/models/${name}:predict`,
      ),
    ),
    bad('too many instances (10,001)', 400, JSON.stringify({ instances: Array(10_001).fill(PIMA[0]) })),
    bad('wrong method (PUT /)', 405, '{}', 'PUT', `/fn/${MODEL}/`),
  ];
}

export function checkAnswer(expectation: Expectation, status: number, body: string): string | undefined {
  if (status !== expectation.status)
    return `status ${status}, expected ${expectation.status}: ${body.slice(0, 200)}`;
  let parsed: { predictions?: number[][]; outputs?: number[][]; error?: string };
  try {
    parsed = JSON.parse(body) as typeof parsed;
  } catch {
    return `body is not JSON: ${body.slice(0, 200)}`;
  }
  if (status !== 200) {
    return typeof parsed.error === 'string' && Object.keys(parsed).length === 1
      ? undefined
      : `error body is not {"error": "..."}: ${body.slice(0, 200)}`;
  }
  const got = expectation.columnar ? parsed.outputs : parsed.predictions;
  const want = expectation.predictions!;
  if (!Array.isArray(got) || got.length !== want.length)
    return `wrong number of predictions: ${body.slice(0, 200)}`;
  for (const [i, w] of want.entries()) {
    const g = got[i]?.[0];
    // The server may run the wasm backend and this process the cpu one: float32 rounding differs.
    if (typeof g !== 'number' || Math.abs(g - w) > 1e-5) return `prediction ${i} is ${g}, expected ${w}`;
  }
  return undefined;
}

export type RequestMix = ReturnType<typeof buildRequests>;
