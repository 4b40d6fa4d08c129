/**
 * End to end through the local stack: HTTP → payload-2.0 event → the built inference bundle →
 * s3rver. What is tested is what would be deployed.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { publishFromDisk } from '../../cli/publish.js';
import { artifactsToFiles } from '../../functions/shared/model/artifacts.js';
import { keys } from '../../functions/shared/registry/layout.js';
import { createRuntime } from '../../layers/tfjs-runtime/runtime.js';
import { linearGraphModel } from '../support/graph-model.js';
import { linear, publishLinear } from '../support/models.js';
import { eventually, SHARED, startTestStack, type TestStack } from '../support/stack.js';

const KERAS_DIABETES = join(SHARED, 'models/keras-diabetes');
const hasKerasDiabetes = existsSync(join(KERAS_DIABETES, 'model.json'));
if (!hasKerasDiabetes)
  console.warn(`[skipped] keras-diabetes cases: ${KERAS_DIABETES} is absent (no ../shared here)`);

const W1 = [1, 2, 3] as const;
const W2 = [-1, 0.5, 4] as const;
const X = [0.5, -1, 2];

let stack: TestStack;
const predict = (model: string, body: unknown) =>
  stack.call('POST', `/v1/models/${model}:predict`, typeof body === 'string' ? body : JSON.stringify(body));

beforeAll(async () => {
  stack = await startTestStack({ aliasCheckSeconds: 1 });
  const runtime = await createRuntime('cpu');
  await publishLinear(runtime, stack.s3.registry, 'linear', W1, 0.25, { promote: true });
});
afterAll(async () => {
  await stack?.close();
});

describe('local stack', () => {
  it('predicts, saying which version answered', async () => {
    const res = await predict('linear', { instances: [X, [0, 0, 0]] });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-aiaas-model-version')).toBe('1');
    const predictions = res.json.predictions as number[][];
    expect(predictions[0]![0]).toBeCloseTo(linear(W1, 0.25, X), 5);
    expect(predictions[1]![0]).toBeCloseTo(0.25, 6);
    expect(res.json.model_spec).toMatchObject({ name: 'linear', version: '1' });
  });

  it('answers status, metadata, the model list, the columnar form and the function root', async () => {
    const status = await stack.call('GET', '/v1/models/linear');
    expect(status.json).toEqual({
      model_version_status: [
        { version: '1', state: 'AVAILABLE', status: { error_code: 'OK', error_message: '' } },
      ],
    });
    const metadata = await stack.call('GET', '/v1/models/linear/metadata');
    const sig = (
      metadata.json as {
        metadata: { signature_def: { signature_def: { serving_default: { inputs: object } } } };
      }
    ).metadata.signature_def.signature_def.serving_default;
    const [input] = Object.values(sig.inputs) as { tensor_shape: { dim: unknown } }[];
    expect(Object.keys(sig.inputs)).toHaveLength(1);
    expect(input!.tensor_shape.dim).toEqual([
      { size: '-1', name: '' },
      { size: '3', name: '' },
    ]);
    expect((await stack.call('GET', '/v1/models')).json.models).toContainEqual({
      name: 'linear',
      aliases: { live: '1' },
    });
    // A damaged alias object is listed as such; the rest of the list stands.
    await stack.s3.registry.store.put(keys.alias('linear', 'canary'), '{not json');
    const listed = await stack.call('GET', '/v1/models');
    await stack.s3.registry.store.delete(keys.alias('linear', 'canary'));
    expect(listed.status).toBe(200);
    expect(listed.json.models).toContainEqual({
      name: 'linear',
      aliases: { live: '1' },
      damaged: { canary: expect.stringMatching(/JSON/) },
    });
    // A small dense model is served by the fast path, without tfjs.
    expect((metadata.json.aiaas as { runtime: string }).runtime).toBe('fast-path');
    const columnar = await predict('linear', { inputs: [X] });
    expect((columnar.json.outputs as number[][])[0]![0]).toBeCloseTo(linear(W1, 0.25, X), 5);
    const root = await stack.call('POST', '/fn/linear/', JSON.stringify({ instances: [X] }));
    expect(root.status).toBe(200);
  });

  it('decodes base64 bodies as function URLs send them', async () => {
    const res = await stack.call(
      'POST',
      '/v1/models/linear:predict',
      new TextEncoder().encode(JSON.stringify({ instances: [X] })),
      {
        'content-type': 'application/octet-stream',
      },
    );
    expect(res.status).toBe(200);
  });

  it('answers bad requests with a 4xx JSON error that names the problem, and keeps serving', async () => {
    const cases: [number, RegExp, Promise<Awaited<ReturnType<TestStack['call']>>>][] = [
      [400, /not valid JSON/, predict('linear', '{"instances": [')],
      [400, /expects 3/, predict('linear', { instances: [[1, 2]] })],
      [400, /must be a number, got "a"/, predict('linear', { instances: [[1, 'a', 3]] })],
      [400, /finite/, predict('linear', '{"instances": [[1, 2, 1e400]]}')],
      [400, /empty/, predict('linear', { instances: [] })],
      [400, /limit is 10000/, predict('linear', { instances: Array.from({ length: 10_001 }, () => X) })],
      [413, /limit/, predict('linear', `{"instances": [${'0,'.repeat(3_200_000)}0]}`)],
      [405, /Use POST/, stack.call('GET', '/v1/models/linear:predict')],
      [404, /does not exist/, predict('missing', { instances: [X] })],
      [404, /not served/, stack.call('GET', '/v1/models/linear/versions/9')],
    ];
    for (const [status, message, pending] of cases) {
      const res = await pending;
      expect(res.status, res.text).toBe(status);
      expect(res.headers.get('content-type')).toMatch(/application\/json/);
      expect(res.json.error).toMatch(message);
      expect(res.text).not.toMatch(/at .*\.(m?js|ts):\d+/); // never a stack trace
    }
    expect((await predict('linear', { instances: [X] })).status).toBe(200);
  });

  it('answers pipelined and concurrent requests each with its own prediction, in order', async () => {
    // Answers are written together at the end of an event-loop turn
    // (scripts/local/function-url-server.ts): each must
    // still reach its own request, in order on a connection.
    const inputs = Array.from({ length: 12 }, (_, i) => [i, -i, 0.5 * i]);
    // `host` is 127.0.0.1:<port>, the Host the server answers to (cli/loopback-host.ts).
    const { hostname, host, port } = new URL(stack.server.url);
    const raw = await new Promise<string>((resolve, reject) => {
      const socket = connect(Number(port), hostname, () => {
        socket.write(
          inputs
            .map((x) => {
              const body = JSON.stringify({ instances: [x] });
              return `POST /v1/models/linear:predict HTTP/1.1\r\nhost: ${host}\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n${body}`;
            })
            .join(''),
        );
      });
      let text = '';
      socket.setEncoding('utf8');
      socket.on('data', (chunk: string) => {
        text += chunk;
        if (text.split('HTTP/1.1 200').length - 1 === inputs.length && text.endsWith('}')) {
          socket.destroy();
          resolve(text);
        }
      });
      socket.on('error', reject);
    });
    const bodies = raw.split(/HTTP\/1\.1 200 OK\r\n[\s\S]*?\r\n\r\n/).filter((part) => part !== '');
    expect(bodies).toHaveLength(inputs.length);
    bodies.forEach((body, i) => {
      expect(JSON.parse(body).predictions[0][0]).toBeCloseTo(linear(W1, 0.25, inputs[i]!), 5);
    });
    const concurrent = await Promise.all(inputs.map((x) => predict('linear', { instances: [x] })));
    concurrent.forEach((res, i) => {
      expect((res.json.predictions as number[][])[0]![0]).toBeCloseTo(linear(W1, 0.25, inputs[i]!), 5);
    });
  });

  it('swaps to a newly promoted version without a restart, rolls back, and refuses a corrupt version', async () => {
    const runtime = await createRuntime('cpu');
    const registry = stack.s3.registry;
    const v2 = await publishLinear(runtime, registry, 'linear', W2, -1);
    await registry.setAlias('linear', 'live', v2.version, { why: 'test: hot reload' });
    await eventually(async () => {
      const res = await predict('linear', { instances: [X] });
      expect(res.headers.get('x-aiaas-model-version')).toBe(String(v2.version));
      expect((res.json.predictions as number[][])[0]![0]).toBeCloseTo(linear(W2, -1, X), 5);
    });

    await registry.rollback('linear', 'live', { why: 'test: rollback' });
    await eventually(async () => {
      const res = await predict('linear', { instances: [X] });
      expect(res.headers.get('x-aiaas-model-version')).toBe('1');
    });

    // A promoted version whose weights were corrupted after publishing never replaces the served one.
    const v3 = await publishLinear(runtime, registry, 'linear', [9, 9, 9], 9);
    await registry.store.put(keys.file('linear', v3.version, 'group1-shard1of1.bin'), new Uint8Array(16));
    await registry.setAlias('linear', 'live', v3.version, { why: 'test: corrupt' });
    await new Promise((r) => setTimeout(r, 2_500));
    const res = await predict('linear', { instances: [X] });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-aiaas-model-version')).toBe('1');
  });

  it('serves a GraphModel (the SavedModel conversion format) with named inputs and outputs', async () => {
    const runtime = await createRuntime('cpu');
    const dir = mkdtempSync(join(tmpdir(), 'aiaas-graph-'));
    for (const file of artifactsToFiles(linearGraphModel([1, 2, 3], 0.5)))
      writeFileSync(join(dir, file.name), file.bytes);
    const { metadata } = await publishFromDisk(stack.s3.registry, runtime, dir, {
      model: 'graph',
      promote: true,
    });
    expect(metadata.format).toBe('graph-model');
    expect(metadata.signature.inputs).toEqual([{ name: 'x', dtype: 'float32', shape: [null, 3] }]);
    const res = await predict('graph', {
      instances: [
        [1, 1, 1],
        [0, 0, 0],
      ],
    });
    expect(res.status, res.text).toBe(200);
    const predictions = res.json.predictions as number[][];
    expect(predictions[0]![0]).toBeCloseTo(1 / (1 + Math.exp(-6.5)), 6);
    expect(predictions[1]![0]).toBeCloseTo(1 / (1 + Math.exp(-0.5)), 6);
    expect((await predict('graph', { instances: [[1, 1]] })).status).toBe(400);
    // Graph models run on tfjs (the local stack has no tfjs-node: wasm).
    const metadataRes = await stack.call('GET', '/v1/models/graph/metadata');
    expect((metadataRes.json.aiaas as { runtime: string }).runtime).toBe('wasm');
    rmSync(dir, { recursive: true, force: true });
  });

  it.runIf(hasKerasDiabetes)(
    'serves a Keras model converted elsewhere with the original network’s outputs',
    async () => {
      const runtime = await createRuntime('cpu');
      await publishFromDisk(stack.s3.registry, runtime, KERAS_DIABETES, {
        model: 'keras-diabetes',
        promote: true,
      });
      const reference = JSON.parse(
        readFileSync(join(import.meta.dirname, '../fixtures/keras-diabetes/reference-outputs.json'), 'utf8'),
      ) as {
        rows: number[][];
        outputs: number[][];
      };
      const res = await predict('keras-diabetes', { instances: reference.rows });
      expect(res.status).toBe(200);
      const predictions = res.json.predictions as number[][];
      reference.outputs.forEach((expected, i) => {
        expect(Math.abs(predictions[i]![0]! - expected[0]!)).toBeLessThan(1e-5);
      });
      // ~400k weights: more than the fast path takes, so tfjs serves it.
      {
        const metadata = await stack.call('GET', '/v1/models/keras-diabetes/metadata');
        expect((metadata.json.aiaas as { runtime: string }).runtime).toBe('wasm');
      }
    },
  );
});
