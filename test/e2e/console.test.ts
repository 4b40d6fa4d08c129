/**
 * The registry console in a real browser (playwright-core driving Debian's chromium) against the
 * local stack: the function-URL server mounts the console at `/`, as `npm start` does. List →
 * model → version with curves → compare → try it (the answer equals a direct predict) → promote
 * with a reason (JS confirm dialog) → rollback (no JS: the confirmation page); registry strings
 * with markup render as text; cross-origin and token-less POSTs, and a foreign Host, are refused.
 * Screenshots of the main views go to docs/screenshots/.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from '../../cli/paths.js';
import { loadManifest } from '../../functions/shared/manifest.js';
import { artifactsToFiles, captureIOHandler, signatureOf } from '../../functions/shared/model/artifacts.js';
import { keys } from '../../functions/shared/registry/layout.js';
import { ModelRegistry } from '../../functions/shared/registry/registry.js';
import type { TfRuntime } from '../../functions/shared/runtime/types.js';
import { renderTrainingReport } from '../../functions/shared/training/report.js';
import { retrain } from '../../functions/shared/training/retrain.js';
import { generateDiabetesCsv } from '../../functions/shared/training/synthetic.js';
import { createRuntime } from '../../layers/tfjs-runtime/runtime.js';
import { LOCAL_CREDENTIALS } from '../../scripts/local/s3.js';
import { startTestStack, type TestStack } from '../support/stack.js';

const CHROMIUM = process.env.AIAAS_CHROMIUM ?? '/usr/bin/chromium';
const SHOTS = join(ROOT, 'docs/screenshots');
const MODEL = 'diabetes'; // declared in models/manifest.json: the try-it fields are its features
const SPEC = loadManifest(join(ROOT, 'models/manifest.json')).models.find((m) => m.name === MODEL)!;
const FEATURES = SPEC.definition!.features;
const X = [6, 148, 72, 35, 0, 33.6, 0.627, 50];
const PAIR = 'pair'; // two inputs: not in the manifest

// Registry strings that are markup: each must show as text and never run.
const EVIL_WHO = '<script>window.__pwned = "who"</script>mallory';
const EVIL_WHY =
  'first release <script>window.__pwned = "why"</script><img src=x onerror="window.__pwned=1">';
const EVIL_SOURCE = '<script>window.__pwned = "source"</script>';
const EVIL_TRAINING = '"><script>window.__pwned = "training"</script>';
const curve = (from: number, to: number, pace: number) =>
  Array.from({ length: 30 }, (_, i) => from + (to - from) * (1 - Math.exp(-i / pace)));
const HISTORY_1 = {
  loss: curve(0.7, 0.52, 8),
  val_loss: curve(0.72, 0.55, 9),
  accuracy: curve(0.6, 0.74, 7),
  val_accuracy: curve(0.58, 0.72, 8),
};
// v2's report picture as retraining draws it, with a script slipped in: it must never run.
const EVIL_SVG = renderTrainingReport({
  model: MODEL,
  version: 2,
  history: {
    loss: curve(0.69, 0.49, 6),
    val_loss: curve(0.7, 0.53, 7),
    accuracy: curve(0.62, 0.76, 6),
    val_accuracy: curve(0.6, 0.74, 7),
  },
  subtitle: '768 rows · 30 epochs',
}).replace('</svg>', '<script>document.documentElement.setAttribute("data-pwned", "1")</script></svg>');

let stack: TestStack;
let browser: Browser;
let attacker: Server;
let attackerUrl = '';

/** A network's version files and signature, as publish takes them; the network is freed. */
async function filesOf(runtime: TfRuntime, net: LayersModel) {
  const capture = captureIOHandler();
  await net.save(capture);
  const signature = signatureOf(runtime, net);
  net.dispose();
  return { files: artifactsToFiles(capture.artifacts!), signature };
}

/** A dense 8 → 1 sigmoid network with fixed weights, published with the given metadata. */
async function publishVersion(
  registry: ModelRegistry,
  seed: number,
  extra: { training?: Record<string, unknown>; report?: string; metrics: Record<string, number> },
) {
  const runtime = await createRuntime('cpu');
  const { tf, layers } = runtime;
  const net = layers.sequential({
    layers: [layers.layers.dense({ units: 1, inputShape: [8], activation: 'sigmoid' })],
  });
  const weights = Array.from({ length: 8 }, (_, i) => ((i + 1) * seed) / 100);
  net.layers[0]!.setWeights([tf.tensor2d(weights, [8, 1]), tf.tensor1d([-seed])]);
  const { files, signature } = await filesOf(runtime, net);
  return registry.publish(
    MODEL,
    files,
    {
      format: 'layers-model',
      signature,
      metrics: extra.metrics,
      source: { kind: 'publish', note: EVIL_SOURCE },
      parent: seed === 1 ? null : 1,
      ...(extra.training ? { training: extra.training } : {}),
    },
    extra.report
      ? {
          beforeCommit: async (version) => ({
            report: {
              lossCurve: await registry.putReport(
                MODEL,
                version,
                'training-report.svg',
                extra.report!,
                'image/svg+xml',
              ),
            },
          }),
        }
      : {},
  );
}

/** A model with two inputs (no field per feature): its try-it form is a JSON editor. */
async function publishPair(registry: ModelRegistry) {
  const runtime = await createRuntime('cpu');
  const { tf, layers } = runtime;
  const a = layers.input({ shape: [2], name: 'a' });
  const b = layers.input({ shape: [1], name: 'b' });
  const joined = layers.layers.concatenate().apply([a, b]) as ReturnType<typeof layers.input>;
  const dense = layers.layers.dense({ units: 1 });
  const net = layers.model({
    inputs: [a, b],
    outputs: dense.apply(joined) as ReturnType<typeof layers.input>,
  });
  dense.setWeights([tf.tensor2d([1, 2, 3], [3, 1]), tf.tensor1d([0.5])]);
  const { files, signature } = await filesOf(runtime, net);
  const meta = await registry.publish(PAIR, files, {
    format: 'layers-model',
    signature,
    metrics: {},
    source: { kind: 'publish' },
    parent: null,
  });
  await registry.setAlias(PAIR, 'live', meta.version, { why: 'first' });
}

beforeAll(async () => {
  if (!existsSync(CHROMIUM))
    throw new Error(
      `The console tests drive Debian's chromium at ${CHROMIUM}, which is absent: apt-get install -y chromium (or set AIAAS_CHROMIUM)`,
    );
  mkdirSync(SHOTS, { recursive: true });
  stack = await startTestStack({ aliasCheckSeconds: 1 });
  const registry = stack.s3.registry;
  await publishVersion(registry, 1, {
    metrics: { loss: 0.52, accuracy: 0.74, val_loss: 0.55, val_accuracy: 0.72 },
    training: {
      dataFingerprint: 'a1b2c3d4e5f60718293a4b5c6d7e8f90',
      notes: EVIL_TRAINING,
      history: HISTORY_1,
    },
  });
  await publishVersion(registry, 2, {
    metrics: { loss: 0.49, accuracy: 0.76, val_loss: 0.53, val_accuracy: 0.74 },
    training: { dataFingerprint: 'ffeeddccbbaa99887766554433221100' },
    report: EVIL_SVG,
  });
  // The first promote is made by someone whose name is markup, for a reason that is markup.
  const mallory = new ModelRegistry(registry.store, { actor: EVIL_WHO });
  await mallory.setAlias(MODEL, 'live', 1, {
    why: EVIL_WHY,
    details: { gate: { metric: 'val_accuracy', candidate: 0.72, baseline: null, delta: null, pass: true } },
  });
  await publishPair(registry);
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  // Another origin on loopback: a page that posts a promote form to the console, without the token.
  attacker = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end(`<!doctype html><form id="f" method="post" action="${stack.server.url}/models/${MODEL}/promote">
<input name="alias" value="live"><input name="version" value="2"><input name="reason" value="csrf"><input name="confirm" value="yes">
<input name="token" value="guess"></form><script>document.getElementById('f').submit()</script>`);
  });
  await new Promise<void>((resolve) => attacker.listen(0, '127.0.0.1', resolve));
  attackerUrl = `http://127.0.0.1:${(attacker.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await browser?.close();
  attacker?.close();
  await stack?.close();
});

async function live(): Promise<number | undefined> {
  return (await stack.s3.registry.getAlias(MODEL, 'live'))?.version;
}

/** Nothing from the registry ran as script on the page. */
async function expectNothingRan(page: Page) {
  expect(await page.evaluate(() => (globalThis as { __pwned?: unknown }).__pwned)).toBeUndefined();
  // console.js is the page's only script.
  expect(await page.locator('script').evaluateAll((s) => s.map((e) => e.getAttribute('src')))).toEqual([
    '/_console/console.js',
  ]);
}

async function token(): Promise<string> {
  const html = await (await fetch(`${stack.server.url}/models/${MODEL}`)).text();
  return /name="token" value="([^"]+)"/.exec(html)![1]!;
}

describe('console in a browser', () => {
  it('lists models, shows a model with its history, a version with curves, two side by side', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const response = await page.goto(`${stack.server.url}/`);
    expect(response!.status()).toBe(200);
    const headers = response!.headers();
    expect(headers['content-security-policy']).toContain("frame-ancestors 'none'");
    expect(headers['content-security-policy']).toContain("script-src 'self'");
    expect(headers['x-content-type-options']).toBe('nosniff');
    await expect(page.locator('#models').textContent()).resolves.toContain('live → v1');
    await page.setViewportSize({ width: 1000, height: 260 });
    await page.screenshot({ path: join(SHOTS, 'console-models.png'), fullPage: true });
    await page.setViewportSize({ width: 1280, height: 900 });

    await page.getByRole('link', { name: MODEL, exact: true }).click();
    await page.waitForURL(`**/models/${MODEL}`);
    const rows = page.locator('#versions tbody tr');
    await expect(rows.count()).resolves.toBe(2);
    expect(await page.locator('#versions tr[data-version="1"]').textContent()).toContain('a1b2c3d4e5f6');
    // The reason and who are shown as the text they are.
    expect(await page.locator('#alias-live .why').first().textContent()).toBe(EVIL_WHY);
    expect(await page.locator('#alias-live .who').first().textContent()).toBe(EVIL_WHO);
    expect(await page.locator('#alias-live .gate').first().textContent()).toBe(
      'gate passed: val_accuracy candidate 0.7200, no baseline',
    );
    await expectNothingRan(page);

    await page.locator('#versions tr[data-version="1"] td:first-child a').click();
    await page.waitForURL(`**/models/${MODEL}/versions/1`);
    // Curves drawn by the console from the version's history: loss and accuracy.
    await expect(page.locator('.curves svg.curve').count()).resolves.toBe(2);
    await expect(page.locator('.curves svg.curve polyline').count()).resolves.toBe(4);
    expect(await page.locator('main').textContent()).toContain(EVIL_SOURCE);
    expect(await page.locator('main').textContent()).toContain(EVIL_TRAINING);
    await expectNothingRan(page);

    // v2 has only the registry's report picture: shown as an image, loaded, its script inert.
    await page.goto(`${stack.server.url}/models/${MODEL}/versions/2`);
    const img = page.locator('img.report');
    await expect(
      img.evaluate((e) => {
        const image = e as unknown as { decode(): Promise<void>; naturalWidth: number };
        return image.decode().then(() => image.naturalWidth);
      }),
    ).resolves.toBeGreaterThan(100);
    await expectNothingRan(page);

    await page.goto(`${stack.server.url}/models/${MODEL}`);
    await page.locator('form.compare select[name="a"]').selectOption('1');
    await page.locator('form.compare select[name="b"]').selectOption('2');
    await page.getByRole('button', { name: 'Side by side' }).click();
    await page.waitForURL(`**/compare?a=1&b=2`);
    await expect(page.locator('.side').count()).resolves.toBe(2);
    await expect(page.locator('.side').nth(0).locator('svg.curve').count()).resolves.toBe(2);
    await expect(page.locator('.side').nth(1).locator('img.report').count()).resolves.toBe(1);
    await page.close();
  });

  it('serves the registry report picture sandboxed: its script never runs, even opened directly', async () => {
    const page = await browser.newPage();
    const response = await page.goto(`${stack.server.url}/models/${MODEL}/versions/2/report.svg`);
    expect(await page.locator(':root').getAttribute('data-pwned')).toBeNull();
    expect(response!.headers()['content-type']).toBe('image/svg+xml');
    expect(response!.headers()['content-security-policy']).toMatch(/^sandbox;/);
    await page.close();
  });

  it("links the model's OpenAPI document, served by its function, sandboxed", async () => {
    const page = await browser.newPage();
    await page.goto(`${stack.server.url}/models/${MODEL}`);
    const href = await page.getByRole('link', { name: 'OpenAPI document' }).getAttribute('href');
    await page.close();
    const proxied = await fetch(new URL(href!, stack.server.url));
    const direct = await stack.call('GET', `/v1/models/${MODEL}/openapi.json`);
    expect(proxied.status).toBe(direct.status);
    expect(await proxied.text()).toBe(direct.text);
    expect(proxied.headers.get('content-type')).toBe('application/json');
    expect(proxied.headers.get('content-security-policy')).toMatch(/^sandbox;/);
  });

  it('tries the model with a field per feature: the answer is a direct predict of the same version', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await page.goto(`${stack.server.url}/models/${MODEL}`);
    for (const [i, name] of FEATURES.entries())
      await page.getByLabel(name, { exact: true }).fill(String(X[i]));
    await page.getByRole('button', { name: 'Predict' }).click();
    await page.locator('#answer-version:not(:empty)').waitFor();
    expect(await page.locator('#answer-version').textContent()).toBe('1');
    const shown = JSON.parse((await page.locator('#answer-body').textContent())!) as {
      predictions: number[][];
      model_spec: { version: string };
    };
    const direct = await stack.call(
      'POST',
      `/v1/models/${MODEL}:predict`,
      JSON.stringify({ instances: [X] }),
    );
    expect(direct.headers.get('x-aiaas-model-version')).toBe('1');
    expect(shown).toEqual(direct.json);
    await page.locator('#try-it').scrollIntoViewIfNeeded();
    await page.screenshot({ path: join(SHOTS, 'console-try-it.png'), fullPage: true });
    // A field that is not a number is named, and nothing is sent.
    await page.getByLabel('glucose', { exact: true }).fill('high');
    await page.getByRole('button', { name: 'Predict' }).click();
    await page.locator('#answer-error:not(:empty)').waitFor();
    expect(await page.locator('#answer-error').textContent()).toBe('glucose: must be a number, got "high"');
    await page.close();
  });

  it('tries a model with two inputs in a JSON editor prefilled with a well-shaped request', async () => {
    const page = await browser.newPage();
    await page.goto(`${stack.server.url}/models/${PAIR}`);
    expect(await page.locator('#try-it input[inputmode]').count()).toBe(0);
    const editor = page.locator('#try-it textarea[name="request"]');
    expect(JSON.parse(await editor.inputValue())).toEqual({ instances: [{ a: [0, 0], b: [0] }] });
    const request = '{"instances": [{"a": [1, 2], "b": [3]}, {"a": [0, 0], "b": [-1]}]}';
    await editor.fill(request);
    await page.getByRole('button', { name: 'Predict' }).click();
    await page.locator('#answer-version:not(:empty)').waitFor();
    const direct = await stack.call('POST', `/v1/models/${PAIR}:predict`, request);
    expect(direct.json.predictions).toEqual([[14.5], [-2.5]]);
    expect(JSON.parse((await page.locator('#answer-body').textContent())!)).toEqual(direct.json);
    expect(await page.locator('#answer-version').textContent()).toBe('1');
    // The function's own 400 is shown as it answered.
    await editor.fill('{"instances": [{"a": [1], "b": [3]}]}');
    await page.getByRole('button', { name: 'Predict' }).click();
    await page.locator('#answer-status:text("400")').waitFor();
    expect(await page.locator('#answer-body').textContent()).toContain('"error"');
    await page.close();
  });

  it('promotes with a reason after a confirm dialog; the history shows it', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
    await page.goto(`${stack.server.url}/models/${MODEL}`);
    const form = page.locator('form.promote');
    await form.locator('select[name="version"]').selectOption('2');
    const reason = 'better on <b>recent</b> data';
    await form.locator('input[name="reason"]').fill(reason);
    let asked = '';
    page.once('dialog', (dialog) => {
      asked = dialog.message();
      void dialog.accept();
    });
    await form.getByRole('button').click();
    await page.waitForURL(`**/models/${MODEL}?moved=live*`);
    expect(asked).toContain(`Promote ${MODEL}@live to v2?`);
    expect(await live()).toBe(2);
    expect(await page.locator('#moved').textContent()).toContain('live now serves v2');
    const top = page.locator('#alias-live .event').first();
    expect(await top.locator('.kind').textContent()).toBe('promote');
    expect(await top.locator('.why').textContent()).toBe(reason);
    expect((await top.locator('.event-head').textContent())!.replace(/\s+/g, ' ')).toContain('v1 → v2');
    const recorded = (await stack.s3.registry.history(MODEL, 'live')).at(-1)!;
    expect(recorded).toMatchObject({ kind: 'promote', from: 1, to: 2, why: reason });
    await page.screenshot({ path: join(SHOTS, 'console-model.png'), fullPage: true });
    await page.close();
  });

  it('rolls back without JavaScript through the confirmation page', async () => {
    const context = await browser.newContext({ javaScriptEnabled: false });
    const page = await context.newPage();
    await page.goto(`${stack.server.url}/models/${MODEL}`);
    // Try it without JavaScript: the form posts, the console answers with the page and the answer.
    for (const [i, name] of FEATURES.entries())
      await page.getByLabel(name, { exact: true }).fill(String(X[i]));
    await page.getByRole('button', { name: 'Predict' }).click();
    await page.waitForURL(`**/models/${MODEL}/predict`);
    const direct = await stack.call(
      'POST',
      `/v1/models/${MODEL}:predict`,
      JSON.stringify({ instances: [X] }),
    );
    expect(await page.locator('#answer-version').textContent()).toBe(
      direct.headers.get('x-aiaas-model-version'),
    );
    expect(JSON.parse((await page.locator('#answer-body').textContent())!)).toEqual(direct.json);
    expect(await page.getByLabel('glucose', { exact: true }).inputValue()).toBe(String(X[1]));
    const form = page.locator('#alias-live form.rollback');
    await form.locator('input[name="reason"]').fill('v2 <i>misbehaves</i>');
    await form.getByRole('button').click();
    expect(await page.locator('.confirm-move').textContent()).toBe(
      `${MODEL}@live: v2 → v1 (the version it served before)`,
    );
    expect(await live()).toBe(2); // nothing moves before the confirmation
    await page.getByRole('button', { name: 'Yes, roll back' }).click();
    await page.waitForURL(`**/models/${MODEL}?moved=live*`);
    expect(await live()).toBe(1);
    const top = page.locator('#alias-live .event').first();
    expect(await top.locator('.kind').textContent()).toBe('rollback');
    expect(await top.locator('.why').textContent()).toBe('v2 <i>misbehaves</i>');
    await context.close();
  });

  it('refuses a cross-site form post (no token), a post from another origin, and a foreign Host', async () => {
    const before = await live();
    const page = await browser.newPage();
    await page.goto(attackerUrl);
    await page.waitForURL(`${stack.server.url}/**`);
    expect(await page.locator('#error').textContent()).toContain('cross-origin request refused');
    await page.close();
    expect(await live()).toBe(before);

    const url = `${stack.server.url}/models/${MODEL}/promote`;
    const form = (t?: string) =>
      new URLSearchParams({
        alias: 'live',
        version: '2',
        reason: 'x',
        confirm: 'yes',
        ...(t ? { token: t } : {}),
      });
    const post = (body: URLSearchParams, headers: Record<string, string> = {}) =>
      fetch(url, { method: 'POST', body, headers, redirect: 'manual' });
    // The right token from another origin: refused.
    const wrongOrigin = await post(form(await token()), { origin: 'http://evil.example' });
    expect(wrongOrigin.status).toBe(403);
    // The console's own origin without the token, or with a wrong one: refused.
    expect((await post(form(), { origin: stack.server.url })).status).toBe(403);
    const wrongToken = await post(form('A'.repeat(43)), { origin: stack.server.url });
    expect(wrongToken.status).toBe(403);
    expect(await wrongToken.text()).toContain('session token');
    expect(await live()).toBe(before);
    // DNS rebinding: a page of another name resolving to 127.0.0.1 reads nothing.
    const rebound = await new Promise<number | undefined>((resolve, reject) =>
      request(
        `${stack.server.url}/`,
        { headers: { host: `evil.example:${new URL(stack.server.url).port}` } },
        (res) => {
          res.resume();
          resolve(res.statusCode);
        },
      )
        .on('error', reject)
        .end(),
    );
    expect(rebound).toBe(403);
    // A form over the size limit is answered 413, saying so, rather than with a cut connection.
    const big = await fetch(`${stack.server.url}/models/${MODEL}/predict`, {
      method: 'POST',
      body: new URLSearchParams({ token: await token(), request: 'x'.repeat(2_100_000) }),
      headers: { origin: stack.server.url },
    });
    expect(big.status).toBe(413);
    expect(await big.text()).toContain('the form is larger than 2000000 bytes');
    // With the token and its own origin, the same post goes through.
    const ok = await post(form(await token()), { origin: stack.server.url });
    expect(ok.status).toBe(303);
    expect(await live()).toBe(2);
  });
});

describe('markup where a model or alias name goes', () => {
  it('is shown as text on the error page', async () => {
    const { port } = new URL(stack.server.url);
    // Browsers percent-encode '<' in a path; another client may not.
    for (const path of [
      '/models/<script>window.__pwned=1</script>',
      `/models/${MODEL}?moved=<script>window.__pwned=1</script>`,
    ]) {
      const { status, body } = await new Promise<{ status?: number; body: string }>((resolve, reject) =>
        request({ host: '127.0.0.1', port, path, headers: { host: `127.0.0.1:${port}` } }, (res) => {
          let text = '';
          res.on('data', (d: Buffer) => {
            text += d;
          });
          res.on('end', () => resolve({ status: res.statusCode, body: text }));
        })
          .on('error', reject)
          .end(),
      );
      expect(status, path).toBeGreaterThanOrEqual(400);
      expect(body, path).toContain('&lt;script&gt;window.__pwned=1&lt;/script&gt;');
      expect(body, path).not.toContain('<script>window');
    }
  });
});

describe('aiaas console', () => {
  it('serves the same pages on 127.0.0.1 for the registry the CLI targets, predicting through --function-url', async () => {
    const child = spawn(
      process.execPath,
      [
        join(ROOT, 'bin/aiaas.mjs'),
        'console',
        '--port',
        '0',
        '--function-url',
        `${MODEL}=${stack.server.url}/fn/${MODEL}/`,
      ],
      {
        cwd: ROOT,
        env: {
          PATH: process.env.PATH,
          AIAAS_BUCKET: stack.s3.bucket,
          AIAAS_S3_ENDPOINT: stack.s3.endpoint,
          AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId,
          AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey,
          AWS_REGION: 'us-east-1',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    try {
      const url = await new Promise<string>((resolve, reject) => {
        let out = '';
        let err = '';
        child.stdout.on('data', (d: Buffer) => {
          out += d;
          const m = /(http:\/\/127\.0\.0\.1:\d+)\//.exec(out);
          if (m) resolve(m[1]!);
        });
        child.stderr.on('data', (d: Buffer) => {
          err += d;
        });
        child.once('exit', (code) => reject(new Error(`aiaas console exited (${code}): ${err}`)));
      });
      const list = await (await fetch(`${url}/`)).text();
      expect(list).toContain(`href="/models/${MODEL}"`);
      const modelPage = await (await fetch(`${url}/models/${MODEL}`)).text();
      const t = /name="token" value="([^"]+)"/.exec(modelPage)![1]!;
      const body = new URLSearchParams({
        token: t,
        ...Object.fromEntries(X.map((x, i) => [`f${i}`, String(x)])),
      });
      const answer = (await (
        await fetch(`${url}/models/${MODEL}/predict`, {
          method: 'POST',
          body,
          headers: { accept: 'application/json' },
        })
      ).json()) as { status: number; version: string; body: string };
      const direct = await stack.call(
        'POST',
        `/v1/models/${MODEL}:predict`,
        JSON.stringify({ instances: [X] }),
      );
      expect(answer.status).toBe(200);
      expect(answer.version).toBe(direct.headers.get('x-aiaas-model-version'));
      expect(JSON.parse(answer.body)).toEqual(direct.json);
    } finally {
      child.kill('SIGTERM');
    }
  });
});

describe('rollouts in the console', () => {
  it("shows an alias's canary and shadow routes", async () => {
    const key = keys.alias(MODEL, 'live');
    const original = (await stack.s3.registry.store.get(key))!.body;
    const pointer = JSON.parse(new TextDecoder().decode(original)) as Record<string, unknown>;
    const since = new Date().toISOString();
    const page = await browser.newPage();
    try {
      // One route at a time (a version is either the canary or the shadow).
      await stack.s3.registry.store.put(
        key,
        JSON.stringify({ ...pointer, canary: { version: 1, weight: 12.5, since } }),
      );
      await page.goto(`${stack.server.url}/models/${MODEL}`);
      expect(await page.locator('#alias-live .route.canary').first().textContent()).toContain(
        'canary: v1 takes 12.5% of requests',
      );
      expect(await page.locator('#versions tr[data-version="1"]').textContent()).toContain('live canary');
      await stack.s3.registry.store.put(
        key,
        JSON.stringify({ ...pointer, shadow: { version: 1, sample: 5, since } }),
      );
      await page.goto(`${stack.server.url}/models/${MODEL}`);
      expect(await page.locator('#alias-live .route.shadow').first().textContent()).toContain(
        'shadow: v1 runs beside on 5% of requests',
      );
    } finally {
      await page.close();
      await stack.s3.registry.store.put(key, original);
    }
  });
});

describe('retrained versions in the console', () => {
  it('draw the curves retraining recorded, on the version page and two side by side', async () => {
    const registry = stack.s3.registry;
    await registry.putDataset(MODEL, 'synthetic.csv', new TextEncoder().encode(generateDiabetesCsv(300)));
    const runtime = await createRuntime('cpu');
    const definition = SPEC.definition!;
    const versions: number[] = [];
    for (const seed of [42, 7]) {
      const run = await retrain({
        registry,
        spec: { ...SPEC, definition: { ...definition, fit: { ...definition.fit, epochs: 12, seed } } },
        runtime,
        promote: 'never',
        force: true,
      });
      if (run.status === 'unchanged') throw new Error('retraining published nothing');
      versions.push(run.version);
    }
    const [a, b] = versions as [number, number];
    const meta = await registry.getMetadata(MODEL, b);
    expect(meta.source.kind).toBe('retrain');
    const history = meta.training!.history as Record<string, number[]>;
    expect(Object.keys(history).sort()).toEqual(['accuracy', 'loss', 'val_accuracy', 'val_loss']);
    const epochs = history.loss!.length;

    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await page.goto(`${stack.server.url}/models/${MODEL}/versions/${b}`);
    const panels = page.locator('.curves svg.curve');
    // Drawn by the console from the recorded history (not the report picture): loss and accuracy,
    // each with its training and validation series, one point per epoch.
    await expect(panels.locator(':scope > title').allTextContents()).resolves.toEqual(['loss', 'accuracy']);
    await expect(page.locator('.curves img.report').count()).resolves.toBe(0);
    const points = await panels
      .locator('polyline')
      .evaluateAll((lines) => lines.map((l) => (l.getAttribute('points') ?? '').split(' ').length));
    expect(points).toEqual([epochs, epochs, epochs, epochs]);
    expect(await panels.first().textContent()).toContain(`loss ${history.loss!.at(-1)!.toFixed(4)}`);
    // The history is drawn, not listed among the training details.
    expect(await page.locator('main').textContent()).not.toContain('history');
    await page.screenshot({ path: join(SHOTS, 'console-version.png'), fullPage: true });

    await page.goto(`${stack.server.url}/models/${MODEL}/compare?a=${a}&b=${b}`);
    for (const side of [0, 1])
      await expect(page.locator('.side').nth(side).locator('svg.curve').count()).resolves.toBe(2);
    // On the same scales, so the two pictures compare.
    const axes = (side: number) =>
      page.locator('.side').nth(side).locator('svg.curve text[fill="#555"]').allTextContents();
    expect(await axes(0)).toEqual(await axes(1));
    await page.screenshot({ path: join(SHOTS, 'console-compare.png'), fullPage: true });
    await page.close();
  });
});
