/**
 * The console's pure parts: the one escape function behind every page, the try-it form from a
 * signature, the request guards (Host, Origin, session token) and where function URLs come from.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  deployedFunctions,
  functionUrlsFromOutputs,
  parseFunctionUrlFlags,
} from '../../cli/console/functions.js';
import { escapeHtml, html } from '../../cli/console/html.js';
import { hostProblem, originProblem, tokenMatches } from '../../cli/console/security.js';
import { requestBody, tryForm } from '../../cli/console/try-it.js';
import type { Signature } from '../../functions/shared/registry/types.js';

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
    expect(hostProblem(req({ host: '127.0.0.1:8080' }))).toBeUndefined();
    expect(hostProblem(req({ host: 'localhost:8080' }))).toBeUndefined();
    expect(hostProblem(req({ host: 'evil.example:8080' }))).toMatch(/not Host "evil.example:8080"/);
    expect(hostProblem(req({ host: '127.0.0.1:9999' }))).toBeDefined();
    expect(hostProblem(req({}))).toMatch(/no Host/);
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
