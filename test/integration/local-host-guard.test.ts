/**
 * The local function-URL server (`npm start`) answers only requests that name it in Host, as
 * `127.0.0.1:<port>` or `localhost:<port>`: a page of another site whose name resolves to
 * 127.0.0.1 (DNS rebinding) gets a 403 naming the Host it sent and the ones the server answers to,
 * on every route (predict, the function URL root, the model list, the figures, the console), and
 * its request never reaches a model's function. Real HTTP on loopback, s3rver, the built bundle.
 */
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRuntime } from '../../layers/tfjs-runtime/runtime.js';
import { linear, publishLinear } from '../support/models.js';
import { rawRequest } from '../support/raw-request.js';
import { startTestStack, type TestStack } from '../support/stack.js';

const MODEL = 'known';
const W = [1, 2, 3] as const;
const PREDICT = JSON.stringify({ instances: [[1, 1, 1]] });

let stack: TestStack;
let port: number;

beforeAll(async () => {
  stack = await startTestStack({ aliasCheckSeconds: 60 });
  port = Number(new URL(stack.server.url).port);
  await publishLinear(await createRuntime('cpu'), stack.s3.registry, MODEL, W, 0, { promote: true });
});
afterAll(async () => {
  await stack?.close();
});

/** One request with the Host header given (fetch would send its own). */
function call(method: string, path: string, host: string, body?: string) {
  return rawRequest(
    port,
    method,
    path,
    { host, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    body,
  );
}

const since = new Date(Date.now() - 60_000).toISOString();
const ROUTES: [method: string, path: string, body?: string][] = [
  ['POST', `/v1/models/${MODEL}:predict`, PREDICT],
  ['GET', `/v1/models/${MODEL}/metadata`],
  ['POST', `/fn/${MODEL}/v1/models/${MODEL}:predict`, PREDICT],
  ['GET', '/v1/models'],
  ['GET', `/_aiaas/figures/${MODEL}?since=${since}`],
  ['GET', '/'],
  ['GET', `/models/${MODEL}`],
  ['GET', '/no-such-route'],
];

describe('the local function-URL server and the Host header', () => {
  it('refuses a foreign Host on every route with a 403 naming it, before any function runs', async () => {
    for (const foreign of [`evil.example:${port}`, '127.0.0.1', `127.0.0.1:${port + 1}`, 'evil.example']) {
      for (const [method, path, body] of ROUTES) {
        const res = await call(method, path, foreign, body);
        expect(res.status, `${method} ${path} with Host ${foreign}`).toBe(403);
        expect(res.type).toMatch(/application\/json/);
        expect(JSON.parse(res.text)).toEqual({
          error: `The local function-URL server answers only to 127.0.0.1:${port} or localhost:${port}, not Host ${JSON.stringify(foreign)}`,
        });
      }
    }
    // No refused request reached a model's function: none was made.
    expect(stack.server.functions()).toEqual([]);
  });

  it('refuses a request without a Host header', async () => {
    // HTTP/1.0 may leave Host out (Node answers an HTTP/1.1 request without one with a 400 itself).
    const raw = await new Promise<string>((resolve, reject) => {
      const socket = connect(port, '127.0.0.1', () => socket.write('GET /v1/models HTTP/1.0\r\n\r\n'));
      let text = '';
      socket.setEncoding('utf8');
      socket.on('data', (chunk: string) => {
        text += chunk;
      });
      socket.on('end', () => resolve(text));
      socket.on('error', reject);
    });
    expect(raw).toMatch(/^HTTP\/1\.1 403 /);
    expect(raw).toContain('the request has no Host header');
  });

  it('answers 127.0.0.1:<port> and localhost:<port>', async () => {
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `LOCALHOST:${port}`]) {
      const predicted = await call('POST', `/v1/models/${MODEL}:predict`, host, PREDICT);
      expect(predicted.status, `${host}: ${predicted.text}`).toBe(200);
      const { predictions } = JSON.parse(predicted.text) as { predictions: number[][] };
      expect(predictions[0]![0]).toBeCloseTo(linear(W, 0, [1, 1, 1]), 5);
      const root = await call('POST', `/fn/${MODEL}/v1/models/${MODEL}:predict`, host, PREDICT);
      expect(root.status, `${host}: ${root.text}`).toBe(200);
      const models = await call('GET', '/v1/models', host);
      expect(JSON.parse(models.text)).toEqual({ models: [{ name: MODEL, aliases: { live: '1' } }] });
      const figures = await call('GET', `/_aiaas/figures/${MODEL}?since=${since}`, host);
      expect(figures.status, figures.text).toBe(200);
      expect((await call('GET', '/', host)).status).toBe(200);
    }
    // fetch sends the Host of the URL the server gives: what the CLI, the console and the tests use.
    expect((await stack.call('POST', `/v1/models/${MODEL}:predict`, PREDICT)).status).toBe(200);
  });
});
