/**
 * The console's pure parts: the one escape function behind every page, the try-it form from a
 * signature, the request guards (Host, Origin, session token) and where function URLs come from.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { curves, historyOf } from '../../cli/console/curves.js';
import {
  deployedFunctions,
  functionUrlsFromOutputs,
  parseFunctionUrlFlags,
} from '../../cli/console/functions.js';
import { escapeHtml, html } from '../../cli/console/html.js';
import { originProblem, tokenMatches } from '../../cli/console/security.js';
import { createConsole } from '../../cli/console/server.js';
import { requestBody, tryForm } from '../../cli/console/try-it.js';
import { hostProblem } from '../../cli/loopback-host.js';
import { keys } from '../../functions/shared/registry/layout.js';
import { ModelRegistry } from '../../functions/shared/registry/registry.js';
import type { Signature } from '../../functions/shared/registry/types.js';
import { MemoryObjectStore } from '../support/memory-store.js';
import { PUBLISH_INPUT, versionFiles } from '../support/versions.js';

const fromHtml = (s: string) =>
  s
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&amp;/g, '&');

describe('html', () => {
  it('escapes every interpolated string, in text and in attributes, and nothing else', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), fc.string(), (text, attr) => {
        const out = html`<p title="${attr}">${text}</p>`.toString();
        const inner = out.slice(out.indexOf('>') + 1, out.lastIndexOf('</p>'));
        const title = out.slice('<p title="'.length, out.indexOf('">'));
        expect(inner).not.toMatch(/[<>"']/);
        expect(title).not.toMatch(/[<>"']/);
        expect(fromHtml(inner)).toBe(text);
        expect(fromHtml(title)).toBe(attr);
      }),
    );
  });

  it('inserts only html-made markup raw; arrays are joined, absent values render as nothing', () => {
    const evil = '<script>alert(1)</script>';
    const item = (s: string) => html`<li>${s}</li>`;
    expect(html`<ul>${[evil, 'a&b'].map(item)}</ul>${null}${undefined}${false}${0}`.toString()).toBe(
      '<ul><li>&lt;script&gt;alert(1)&lt;/script&gt;</li><li>a&amp;b</li></ul>0',
    );
    // An object that merely looks like markup is text.
    expect(html`${{ toString: () => evil }}`.toString()).toBe(escapeHtml(evil));
  });
});

const tabular: Signature = {
  inputs: [{ name: 'features', dtype: 'float32', shape: [null, 3] }],
  outputs: [{ name: 'y', dtype: 'float32', shape: [null, 1] }],
};

describe('try-it form', () => {
  it('has a field per feature, named by the manifest when it has as many features', () => {
    expect(tryForm(tabular, ['age', 'bmi', 'glucose'])).toEqual({
      kind: 'fields',
      input: 'features',
      fields: ['age', 'bmi', 'glucose'],
    });
    expect(tryForm(tabular, ['age'])).toMatchObject({
      fields: ['features[0]', 'features[1]', 'features[2]'],
    });
  });

  it('is a JSON editor with a well-shaped example for other signatures', () => {
    const two: Signature = {
      inputs: [
        { name: 'a', dtype: 'float32', shape: [null, 2] },
        { name: 'ids', dtype: 'int32', shape: [null, 2, 2] },
      ],
      outputs: [],
    };
    expect(tryForm(two)).toEqual({
      kind: 'json',
      example: JSON.stringify({
        instances: [
          {
            a: [0, 0],
            ids: [
              [0, 0],
              [0, 0],
            ],
          },
        ],
      }),
    });
    const image: Signature = {
      inputs: [{ name: 'x', dtype: 'float32', shape: [null, 2, 2, 1] }],
      outputs: [],
    };
    expect(tryForm(image)).toEqual({ kind: 'json', example: '{"instances":[[[[0],[0]],[[0],[0]]]]}' });
  });

  it('builds the predict request from the fields, naming a field that is not a number', () => {
    const form = tryForm(tabular, ['age', 'bmi', 'glucose']);
    expect(requestBody(form, new URLSearchParams({ f0: '50', f1: ' 33.6 ', f2: '1e2' }))).toBe(
      '{"instances":[[50,33.6,100]]}',
    );
    expect(() => requestBody(form, new URLSearchParams({ f0: '50', f1: 'x<y', f2: '1' }))).toThrow(
      'bmi: must be a number, got "x<y"',
    );
    expect(() => requestBody(form, new URLSearchParams({ f0: '50', f1: '1' }))).toThrow(
      'glucose: must be a number',
    );
    const editor = tryForm({ inputs: [], outputs: [] });
    expect(requestBody(editor, new URLSearchParams({ request: '{"instances": [NaN]}' }))).toBe(
      '{"instances": [NaN]}',
    );
    expect(() => requestBody(editor, new URLSearchParams({ request: ' ' }))).toThrow('the request is empty');
  });
});

const req = (headers: Record<string, string>, localPort = 8080) =>
  ({ headers, socket: { localPort } }) as unknown as IncomingMessage;

describe('guards', () => {
  it('answer only to the loopback listener by name (DNS rebinding)', () => {
    const problem = (r: IncomingMessage) => hostProblem(r, 'the console');
    expect(problem(req({ host: '127.0.0.1:8080' }))).toBeUndefined();
    expect(problem(req({ host: 'localhost:8080' }))).toBeUndefined();
    expect(problem(req({ host: 'LocalHost:8080' }))).toBeUndefined();
    expect(problem(req({ host: 'evil.example:8080' }))).toBe(
      'the console answers only to 127.0.0.1:8080 or localhost:8080, not Host "evil.example:8080"',
    );
    expect(problem(req({ host: '127.0.0.1:9999' }))).toBeDefined();
    expect(problem(req({ host: '127.0.0.1' }))).toBeDefined();
    expect(problem(req({}))).toMatch(/no Host/);
    // On port 80 a URL leaves the port out, and so does the Host a client sends.
    expect(problem(req({ host: '127.0.0.1' }, 80))).toBeUndefined();
    expect(problem(req({ host: 'localhost' }, 80))).toBeUndefined();
    expect(problem(req({ host: 'evil.example' }, 80))).toMatch(/not Host "evil.example"/);
  });

  it('take state-changing requests from the same origin only', () => {
    expect(originProblem(req({ host: '127.0.0.1:8080', origin: 'http://127.0.0.1:8080' }))).toBeUndefined();
    expect(originProblem(req({ host: '127.0.0.1:8080', origin: 'http://evil.example' }))).toMatch(
      /cross-origin/,
    );
    expect(originProblem(req({ host: '127.0.0.1:8080', origin: 'null' }))).toMatch(/cross-origin/);
    expect(originProblem(req({ host: '127.0.0.1:8080', 'sec-fetch-site': 'cross-site' }))).toMatch(
      /cross-site/,
    );
    expect(originProblem(req({ host: '127.0.0.1:8080' }))).toBeUndefined(); // curl: the token decides
  });

  it('compare the session token exactly', () => {
    const token = 'x'.repeat(43);
    expect(tokenMatches(token, token)).toBe(true);
    expect(tokenMatches(token, `${'x'.repeat(42)}y`)).toBe(false);
    expect(tokenMatches(token, 'x')).toBe(false);
    expect(tokenMatches(token, null)).toBe(false);
    expect(tokenMatches(token, undefined)).toBe(false);
  });
});

describe('function URLs for aiaas console', () => {
  it('come from --function-url flags, checked', () => {
    expect(parseFunctionUrlFlags(['diabetes=https://abc.lambda-url.eu-west-1.on.aws'])).toEqual(
      new Map([['diabetes', 'https://abc.lambda-url.eu-west-1.on.aws/']]),
    );
    expect(() => parseFunctionUrlFlags(['https://abc.lambda-url.eu-west-1.on.aws'])).toThrow(
      /expected <model>=<function URL>/,
    );
    expect(() => parseFunctionUrlFlags(['Bad=https://x'])).toThrow(/expected <model>=<function URL>/);
    expect(() => parseFunctionUrlFlags(['m=javascript:alert(1)'])).toThrow(/must be an http\(s\) URL/);
    expect(() => parseFunctionUrlFlags(['m=https://x/?a=1'])).toThrow(/query/);
  });

  it('come from the FunctionUrl outputs of a cdk deploy --outputs-file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'aiaas-console-'));
    try {
      const file = join(dir, 'outputs.json');
      writeFileSync(
        file,
        JSON.stringify({
          'aiaas-Registry': { BucketName: 'b' },
          'aiaas-Model-diabetes': {
            FunctionUrl: 'https://d.lambda-url.eu-west-1.on.aws/',
            FunctionName: 'f',
          },
          'aiaas-Model-my-model': { FunctionUrl: 'https://m.lambda-url.eu-west-1.on.aws/' },
        }),
      );
      expect(functionUrlsFromOutputs(file, 'aiaas', ['diabetes', 'my_model', 'other'])).toEqual(
        new Map([
          ['diabetes', 'https://d.lambda-url.eu-west-1.on.aws/'],
          ['my_model', 'https://m.lambda-url.eu-west-1.on.aws/'],
        ]),
      );
      writeFileSync(file, '[');
      expect(() => functionUrlsFromOutputs(file, 'aiaas', [])).toThrow(/cannot read it as JSON/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('predictions to a deployed function', () => {
  it('are SigV4-signed for an IAM function URL, sent as is to others, and absent without a URL', async () => {
    const saved = { ...process.env };
    Object.assign(process.env, { AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE', AWS_SECRET_ACCESS_KEY: 'secret' });
    delete process.env.AWS_SESSION_TOKEN;
    delete process.env.AWS_PROFILE;
    try {
      const seen: { url: string; init: RequestInit }[] = [];
      const fake = (async (url: URL, init: RequestInit) => {
        seen.push({ url: String(url), init });
        return new Response('{"predictions":[[1]]}', { headers: { 'x-aiaas-model-version': '3' } });
      }) as unknown as typeof fetch;
      const functions = deployedFunctions(
        parseFunctionUrlFlags([
          'diabetes=https://abc.lambda-url.eu-west-1.on.aws',
          'open=http://127.0.0.1:1/fn/open',
        ]),
        fake,
      );
      const answer = await functions.call(
        'diabetes',
        'v1/models/diabetes:predict',
        'POST',
        '{"instances":[[1]]}',
      );
      expect(answer).toMatchObject({ status: 200, version: '3' });
      const signed = seen[0]!;
      expect(signed.url).toBe('https://abc.lambda-url.eu-west-1.on.aws/v1/models/diabetes:predict');
      const headers = signed.init.headers as Record<string, string>;
      expect(headers.authorization).toMatch(
        /^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/\d{8}\/eu-west-1\/lambda\/aws4_request, /,
      );
      expect(signed.init.body).toBe('{"instances":[[1]]}');
      await functions.call('open', 'v1/models/open:predict', 'POST', '{}');
      expect(seen[1]!.url).toBe('http://127.0.0.1:1/fn/open/v1/models/open:predict');
      expect(seen[1]!.init.headers).toEqual({ 'content-type': 'application/json' });
      expect(await functions.call('other', 'v1/models/other:predict', 'POST', '{}')).toBeUndefined();
      expect(seen).toHaveLength(2);
    } finally {
      process.env = saved;
    }
  });
});

describe('training curves', () => {
  it('draw a history whose diverged epochs JSON wrote as null, leaving those epochs out', () => {
    // Retraining records NaN losses, which JSON.stringify writes as null.
    const recorded = JSON.parse(
      JSON.stringify({ history: { loss: [0.7, Number.NaN, 0.5], val_loss: [0.8, 0.6, 0.55] } }),
    );
    const history = historyOf(recorded);
    expect(history?.loss).toHaveLength(3);
    const svg = curves(history!).toString();
    const points = [...svg.matchAll(/points="([^"]*)"/g)].map((m) => m[1]!.split(' ').length);
    expect(points).toEqual([2, 3]);
    expect(historyOf({ history: { loss: [0.7, 'x'] } })).toBeUndefined();
  });

  it('of two versions side by side share their scales, so the pictures compare', () => {
    const a = { loss: [0.9, 0.5], accuracy: [0.5, 0.6] };
    const b = { loss: [0.6, 0.3, 0.2], val_loss: [0.7, 0.4, 0.35] };
    const axes = (svg: string) =>
      [...svg.matchAll(/<text[^>]*fill="#555">([^<]*)<\/text>/g)].map((m) => m[1]).slice(0, 3);
    const loss = (h: typeof a | typeof b, other: typeof a | typeof b) =>
      axes(curves(h, [other]).toString().split('</svg>')[0]!);
    expect(loss(a, b)).toEqual(['0.900', '0.200', 'epoch 3']);
    expect(loss(b, a)).toEqual(loss(a, b));
    // Alone, a picture fits its own values.
    expect(axes(curves(a).toString())).toEqual(['0.900', '0.500', 'epoch 2']);
  });
});

/** One request to a console handler, without a server: what it answered. */
async function ask(handler: ReturnType<typeof createConsole>, path: string) {
  const req = Object.assign(Readable.from([]), {
    method: 'GET',
    url: path,
    headers: { host: '127.0.0.1:8080' },
    socket: { localPort: 8080 },
  }) as unknown as IncomingMessage;
  let status = 0;
  let body = '';
  const res = {
    writeHead: (s: number) => {
      status = s;
    },
    end: (b: string | Uint8Array) => {
      body = typeof b === 'string' ? b : new TextDecoder().decode(b);
    },
  } as unknown as ServerResponse;
  await handler(req, res);
  return { status, body };
}

describe('the training report route', () => {
  it("serves only a file of the version's own report folder, by a name layout.ts allows", async () => {
    const store = new MemoryObjectStore();
    const registry = new ModelRegistry(store);
    const meta = await registry.publish('m', versionFiles('a'), PUBLISH_INPUT);
    const handler = createConsole({
      registry,
      functions: { baseUrl: () => undefined, call: async () => undefined, figures: async () => undefined },
      target: 'test',
    });
    const withReport = async (lossCurve: string) => {
      await store.put(keys.metadata('m', meta.version), JSON.stringify({ ...meta, report: { lossCurve } }));
      await store.put(lossCurve, '<svg xmlns="http://www.w3.org/2000/svg"/>');
      return ask(handler, `/models/m/versions/${meta.version}/report.svg`);
    };
    const folder = keys.reports('m', meta.version);
    expect((await withReport(`${folder}training-report.svg`)).status).toBe(200);
    // A URL path resolves '..' (S3's client sends the key as one): out of the folder.
    for (const key of [
      `${folder}..`,
      `${folder}../1/x.svg`,
      `${folder}.hidden`,
      'models/m/versions/1/model.json',
    ])
      expect((await withReport(key)).status, key).toBe(404);
  });
});

describe('the model and version pages', () => {
  it('say how many older versions a long model page leaves out; a version page has its promote form', async () => {
    const registry = new ModelRegistry(new MemoryObjectStore());
    for (let i = 0; i < 203; i++) await registry.publish('m', versionFiles(`v${i}`), PUBLISH_INPUT);
    await registry.setAlias('m', 'live', 1, { why: 'first' });
    const handler = createConsole({
      registry,
      functions: { baseUrl: () => undefined, call: async () => undefined, figures: async () => undefined },
      target: 'test',
    });
    const model = await ask(handler, '/models/m');
    expect(model.status).toBe(200);
    expect(model.body).toContain('The newest 200 versions are shown; 3 older ones are not');
    expect(model.body).toContain('data-version="203"');
    expect(model.body).not.toContain('data-version="3"');
    const version = await ask(handler, '/models/m/versions/1');
    expect(version.status).toBe(200);
    expect(version.body).toMatch(/<option value="live" selected>live<\/option>/);
    expect(version.body).toContain('<input type="hidden" name="version" value="1">');
    expect(version.body).toContain('<span class="alias">live</span>');
  });
});

describe('a version whose metadata is malformed beyond its identity and files', () => {
  it('is shown with what can be read, the rest said, and the model page still works', async () => {
    const store = new MemoryObjectStore();
    const registry = new ModelRegistry(store);
    const good = await registry.publish('m', versionFiles('a'), PUBLISH_INPUT);
    const bad = await registry.publish('m', versionFiles('b'), PUBLISH_INPUT);
    await registry.setAlias('m', 'live', bad.version, { why: 'x' });
    await store.put(
      keys.metadata('m', bad.version),
      JSON.stringify({ ...bad, metrics: null, signature: 'x', source: 7, training: [1], createdAt: {} }),
    );
    const handler = createConsole({
      registry,
      functions: {
        baseUrl: () => 'http://127.0.0.1:1/',
        call: async () => undefined,
        figures: async () => undefined,
      },
      target: 'test',
    });
    const model = await ask(handler, '/models/m');
    expect(model.status, model.body).toBe(200);
    expect(model.body).toContain(`data-version="${good.version}"`);
    const version = await ask(handler, `/models/m/versions/${bad.version}`);
    expect(version.status, version.body).toBe(200);
    expect(version.body).toContain(
      '<p class="error" id="unreadable">The metrics, training, createdAt, signature, source in the metadata are not readable: not shown.</p>',
    );
    const compare = await ask(handler, `/models/m/compare?a=${good.version}&b=${bad.version}`);
    expect(compare.status, compare.body).toBe(200);
  });
});
