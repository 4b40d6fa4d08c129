/**
 * The inference function's lean registry reader against the real local S3 server (s3rver), and
 * against loopback servers that misbehave as S3 or the network can (refuse, stay silent, stall a
 * body, answer 5xx). s3rver checks only that a SigV4 access key exists, not the signature, so the
 * reader's traffic goes through a small proxy that verifies every signature the way S3 does
 * (canonical request, signing key, 15-minute skew) before passing it on; the SDK's own requests
 * pass the same proxy, which checks the checker.
 */
import { spawn } from 'node:child_process';
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import {
  createServer as createHttpServer,
  request as httpRequest,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { type AddressInfo, createServer as createTcpServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_LIMITS } from '../../functions/inference/api.js';
import { createHandler } from '../../functions/inference/handler.js';
import { ConfigurationError, RegistryUnavailableError } from '../../functions/shared/errors.js';
import { disposeModel, loadModel, registryIOHandler } from '../../functions/shared/model/artifacts.js';
import { ModelRegistry, RegistryReader } from '../../functions/shared/registry/registry.js';
import { S3ObjectReader, type S3ReaderSettings } from '../../functions/shared/registry/s3-reader.js';
import { createS3Client, type ObjectStore, S3ObjectStore } from '../../functions/shared/registry/store.js';
import { createRuntime } from '../../layers/tfjs-runtime/runtime.js';
import { LOCAL_CREDENTIALS, type LocalS3, startLocalS3 } from '../../scripts/local/s3.js';
import { publishLinear } from '../support/models.js';

/** RFC 3986 as SigV4 wants it, written independently of the reader's. */
const strict = (text: string) =>
  encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
const hmac = (key: string | Buffer, data: string) => createHmac('sha256', key).update(data, 'utf8').digest();
const sha256 = (data: string) => createHash('sha256').update(data, 'utf8').digest('hex');

/** Why a request's SigV4 Authorization header is wrong, or undefined when S3 would accept it. */
function signatureProblem(
  req: IncomingMessage,
  secrets: Readonly<Record<string, string>>,
): string | undefined {
  const auth =
    /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/s3\/aws4_request, ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]{64})$/.exec(
      req.headers.authorization ?? '',
    );
  if (!auth) return `malformed authorization ${req.headers.authorization}`;
  const [, accessKeyId, day, region, signedHeaderList, signature] = auth as unknown as string[];
  const secret = secrets[accessKeyId!];
  if (!secret) return `unknown access key ${accessKeyId}`;
  const amzDate = String(req.headers['x-amz-date'] ?? '');
  const when = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(amzDate);
  if (!when || !amzDate.startsWith(day!)) return `bad x-amz-date ${amzDate}`;
  const [, y, mo, d, h, mi, s] = when.map(Number) as number[];
  if (Math.abs(Date.UTC(y!, mo! - 1, d, h, mi, s) - Date.now()) > 15 * 60_000) return 'request time skewed';
  const signed = signedHeaderList!.split(';');
  for (const required of ['host', 'x-amz-date', 'x-amz-content-sha256']) {
    if (!signed.includes(required)) return `${required} is not signed`;
  }
  const [rawPath = '/', rawQuery = ''] = (req.url ?? '/').split('?', 2);
  // S3's canonical URI: each path segment URI-encoded once, from the decoded key.
  const canonicalUri = rawPath
    .split('/')
    .map((segment) => strict(decodeURIComponent(segment)))
    .join('/');
  const canonicalQuery = rawQuery
    .split('&')
    .filter(Boolean)
    .map((pair) => {
      const [name = '', value = ''] = pair.split('=', 2);
      return [strict(decodeURIComponent(name)), strict(decodeURIComponent(value))] as const;
    })
    .sort(([a, av], [b, bv]) => (a === b ? (av < bv ? -1 : 1) : a < b ? -1 : 1))
    .map(([name, value]) => `${name}=${value}`)
    .join('&');
  const canonicalHeaders = signed
    .map(
      (name) =>
        `${name}:${String(req.headers[name] ?? '')
          .trim()
          .replace(/\s+/g, ' ')}\n`,
    )
    .join('');
  const canonicalRequest = [
    req.method,
    canonicalUri,
    canonicalQuery,
    canonicalHeaders,
    signedHeaderList,
    String(req.headers['x-amz-content-sha256']),
  ].join('\n');
  const scope = `${day}/${region}/s3/aws4_request`;
  const stringToSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256(canonicalRequest)].join('\n');
  const key = hmac(hmac(hmac(hmac(`AWS4${secret}`, day!), region!), 's3'), 'aws4_request');
  const expected = createHmac('sha256', key).update(stringToSign, 'utf8').digest('hex');
  return expected === signature ? undefined : 'signature does not match';
}

interface Seen {
  readonly method: string;
  readonly url: string;
  readonly region: string;
  readonly signedHeaders: readonly string[];
  readonly problem?: string;
}

const s3Error = (res: ServerResponse, status: number, code: string, message = code) => {
  res.writeHead(status, { 'content-type': 'application/xml' });
  res.end(
    `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message></Error>`,
  );
};

/** A loopback proxy in front of s3rver that verifies SigV4 as S3 does and can deny object reads. */
class SigV4Proxy {
  readonly seen: Seen[] = [];
  connections = 0;
  /** Object GETs whose key matches answer 403, as S3 does under a policy that denies them. */
  deny: RegExp | undefined;
  private readonly server: Server;

  constructor(private readonly upstream: URL) {
    this.server = createHttpServer((req, res) => this.handle(req, res));
    this.server.on('connection', () => this.connections++);
  }

  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  private handle(req: IncomingMessage, res: ServerResponse) {
    const problem = signatureProblem(req, {
      [LOCAL_CREDENTIALS.accessKeyId]: LOCAL_CREDENTIALS.secretAccessKey,
    });
    const scope = /Credential=[^/]+\/\d{8}\/([^/]+)\//.exec(req.headers.authorization ?? '');
    this.seen.push({
      method: req.method ?? '',
      url: req.url ?? '',
      region: scope?.[1] ?? '',
      signedHeaders: /SignedHeaders=([^,]+)/.exec(req.headers.authorization ?? '')?.[1]?.split(';') ?? [],
      ...(problem ? { problem } : {}),
    });
    if (problem) return s3Error(res, 403, 'SignatureDoesNotMatch', problem);
    const isObjectGet = req.method === 'GET' && /^\/[^/?]+\/[^?]+/.test(req.url ?? '');
    if (this.deny && isObjectGet && this.deny.test(decodeURIComponent(req.url ?? ''))) {
      return s3Error(res, 403, 'AccessDenied');
    }
    const forward = httpRequest(
      {
        host: this.upstream.hostname,
        port: this.upstream.port,
        method: req.method,
        path: req.url,
        headers: req.headers,
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    forward.on('error', () => res.destroy());
    req.pipe(forward);
  }

  async close() {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

let dir: string;
let s3: LocalS3;
let proxy: SigV4Proxy;
let proxyUrl: string;
let writer: S3ObjectStore;
let reader: S3ObjectReader;
const readers: S3ObjectReader[] = [];
const servers: { close(): unknown }[] = [];

/** A reader going through the verifying proxy (unless `endpoint` says otherwise). */
function readerFor(settings: Partial<S3ReaderSettings> = {}): S3ObjectReader {
  const created = new S3ObjectReader({
    bucket: s3.bucket,
    endpoint: proxyUrl,
    credentials: LOCAL_CREDENTIALS,
    region: 'us-east-1',
    ...settings,
  });
  readers.push(created);
  return created;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'aiaas-s3-reader-'));
  s3 = await startLocalS3({ directory: dir });
  writer = s3.registry.store as S3ObjectStore;
  proxy = new SigV4Proxy(new URL(s3.endpoint));
  proxyUrl = await proxy.start();
  reader = readerFor();
});
afterEach(() => {
  proxy.deny = undefined;
  // Every request the readers signed must have passed S3's checks, unless a test meant otherwise.
  const bad = proxy.seen.filter((s) => s.problem);
  proxy.seen.length = 0;
  expect(bad).toEqual([]);
});
afterAll(async () => {
  for (const r of readers) r.destroy();
  for (const server of servers) server.close();
  await proxy?.close();
  await s3?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const bytes = (body: Uint8Array | undefined) => Buffer.from(body ?? []);

/** Rejects when `promise` has not settled within `ms` (a hang fails the test instead of the suite). */
async function within<T>(
  ms: number,
  promise: Promise<T>,
): Promise<{ value?: T; error?: unknown; ms: number }> {
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  try {
    const value = await Promise.race([promise, deadline]);
    return { value, ms: performance.now() - started };
  } catch (error) {
    if ((error as Error).message === `no answer within ${ms} ms`) throw error;
    return { error, ms: performance.now() - started };
  } finally {
    clearTimeout(timer);
  }
}

describe('S3ObjectReader on s3rver', () => {
  it('reads a binary object of several MB byte for byte, and an empty one, with the etag the SDK reports', async () => {
    const big = randomBytes(6 * 1024 * 1024 + 123);
    const put = await writer.put('bin/big.bin', big);
    await writer.put('bin/empty.bin', new Uint8Array());

    const got = await reader.get('bin/big.bin');
    expect(got?.body).toBeInstanceOf(Uint8Array);
    expect(bytes(got?.body).equals(big)).toBe(true);
    // One exact allocation that owns its buffer: tfjs takes such weights without a copy.
    expect(got?.body.byteOffset).toBe(0);
    expect(got?.body.buffer.byteLength).toBe(big.length);
    expect(got?.etag).toBe((await writer.get('bin/big.bin'))?.etag);
    expect(got?.etag).toBe(put.etag);
    expect(got?.etag).toMatch(/^".+"$/);

    const empty = await reader.get('bin/empty.bin');
    expect(empty?.body.length).toBe(0);
    expect(empty?.etag).toBe((await writer.get('bin/empty.bin'))?.etag);

    // Asked for, the sha256 comes with the body: hashed as it arrived (big) or at the end (small).
    const expected = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');
    expect((await reader.get('bin/big.bin', { sha256: true }))?.sha256).toBe(expected(big));
    expect((await reader.get('bin/empty.bin', { sha256: true }))?.sha256).toBe(expected(new Uint8Array()));
    expect(got?.sha256).toBeUndefined();
  });

  it('hands a body to the sink `into` gives as it arrives: every byte once, in place, hashed', async () => {
    const expected = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');
    for (const size of [6 * 1024 * 1024 + 123, 1000]) {
      const body = randomBytes(size);
      await writer.put('bin/sunk.bin', body);
      const landed = Buffer.alloc(size);
      const writes: [number, number][] = [];
      const lengths: number[] = [];
      const got = await reader.get('bin/sunk.bin', {
        sha256: true,
        into: (length) => {
          lengths.push(length);
          return {
            write: (chunk, offset) => {
              writes.push([offset, chunk.byteLength]);
              landed.set(chunk, offset);
            },
          };
        },
      });
      expect(lengths).toEqual([size]);
      expect(landed.equals(body)).toBe(true);
      // Back to back, from 0: nothing written twice, nothing skipped.
      let next = 0;
      for (const [offset, length] of writes) {
        expect(offset).toBe(next);
        next += length;
      }
      expect(next).toBe(size);
      expect(got?.sunk).toEqual({ bytes: size });
      expect(got?.body.byteLength).toBe(0);
      expect(got?.sha256).toBe(expected(body));
    }
    // A sink declined, or an answer that is not the object: the body is kept as usual.
    const kept = await reader.get('bin/sunk.bin', { into: () => undefined });
    expect(kept?.sunk).toBeUndefined();
    expect(kept?.body.byteLength).toBe(1000);
    let asked = false;
    const missing = await reader.get('bin/none.bin', {
      into: () => {
        asked = true;
        return undefined;
      },
    });
    expect(missing).toBeUndefined();
    expect(asked).toBe(false);
  });

  it('reads, lists and signs keys that need encoding', async () => {
    const names = [
      'enc/with space.json',
      'enc/ünïcødé/ключ 鍵.json',
      'enc/a+b=c.json',
      "enc/(paren)!*'~.json",
      'enc/amp&lt<gt>"quote".json',
      'enc/100% sure;,$@:.json',
    ];
    for (const [i, key] of names.entries()) await writer.put(key, `{"i":${i}}`);
    for (const [i, key] of names.entries()) {
      const got = await reader.get(key);
      expect(new TextDecoder().decode(got?.body)).toBe(`{"i":${i}}`);
      expect(got?.etag).toBe((await writer.get(key))?.etag);
    }
    const listed = await reader.list('enc/');
    expect(listed.map((o) => o.key).sort()).toEqual([...names].sort());
    expect(listed.map((o) => o.key).sort()).toEqual((await writer.list('enc/')).map((o) => o.key).sort());
    // A prefix that itself needs encoding, in the query string.
    expect((await reader.list('enc/a+b=')).map((o) => o.key)).toEqual(['enc/a+b=c.json']);
    expect((await reader.list('enc/ünïcødé/')).map((o) => o.key)).toEqual(['enc/ünïcødé/ключ 鍵.json']);
  });

  it('answers unchanged for the current etag and the new object after an overwrite', async () => {
    await writer.put('cond/pointer.json', '{"version":1}');
    const first = await reader.get('cond/pointer.json');
    expect(await reader.getIfChanged('cond/pointer.json', first!.etag)).toBe('unchanged');
    await writer.put('cond/pointer.json', '{"version":2}');
    const moved = await reader.getIfChanged('cond/pointer.json', first!.etag);
    expect(moved).not.toBe('unchanged');
    const changed = moved as { body: Uint8Array; etag: string };
    expect(new TextDecoder().decode(changed.body)).toBe('{"version":2}');
    expect(changed.etag).not.toBe(first!.etag);
    expect(changed.etag).toBe((await writer.get('cond/pointer.json'))?.etag);
    expect(await reader.getIfChanged('cond/pointer.json', changed.etag)).toBe('unchanged');
  });

  it('answers undefined for a missing key', async () => {
    expect(await reader.get('missing/nothing.json')).toBeUndefined();
    expect(await reader.getIfChanged('missing/nothing.json', '"abc"')).toBeUndefined();
  });

  it('tells a missing key from a denied one on 403, as S3ObjectStore does', async () => {
    await writer.put('private/present.json', '{}');
    proxy.deny = /\/private\//;
    const sdk = new S3ObjectStore(
      createS3Client({
        endpoint: proxyUrl,
        credentials: LOCAL_CREDENTIALS,
        region: 'us-east-1',
        maxAttempts: 1,
      }),
      s3.bucket,
      proxyUrl,
    );
    for (const store of [reader, sdk]) {
      expect(await store.get('private/absent.json')).toBeUndefined();
      await expect(store.get('private/present.json')).rejects.toThrow(
        new RegistryUnavailableError(
          `Registry s3://${s3.bucket} at ${proxyUrl} denied access (read private/present.json)`,
        ),
      );
    }
    // 403 is an answer, not a fault: one GET, then one listing of the key.
    proxy.seen.length = 0;
    await expect(reader.get('private/present.json')).rejects.toBeInstanceOf(RegistryUnavailableError);
    expect(proxy.seen.map((s) => s.url.split('?')[1]?.includes('list-type=2') ?? false)).toEqual([
      false,
      true,
    ]);
    expect(proxy.seen[1]?.url).toContain('max-keys=1');
  });

  it('lists immediate sub-prefixes, derived from the full listing', async () => {
    for (const key of [
      'tree/a/1.json',
      'tree/a/deep/2.json',
      'tree/b/x/y/3.json',
      'tree/c.json',
      'tree/d/',
    ]) {
      await writer.put(key, '{}');
    }
    expect((await reader.listPrefixes('tree/')).sort()).toEqual(['tree/a/', 'tree/b/', 'tree/d/']);
    expect((await reader.listPrefixes('tree/')).sort()).toEqual((await writer.listPrefixes('tree/')).sort());
    expect(await reader.listPrefixes('nothing-here/')).toEqual([]);
    expect(await reader.list('nothing-here/')).toEqual([]);
  });

  it('reads s3rver directly too (path-style, no proxy)', async () => {
    await writer.put('direct/one.json', '1');
    const direct = readerFor({ endpoint: s3.endpoint });
    expect(direct.description).toBe(`s3://${s3.bucket} at ${s3.endpoint}`);
    expect(bytes((await direct.get('direct/one.json'))?.body).toString()).toBe('1');
    expect((await direct.list('direct/')).map((o) => o.key)).toEqual(['direct/one.json']);
  });

  it('reuses one keep-alive connection across requests', async () => {
    await writer.put('alive/x.json', '{}');
    const fresh = readerFor();
    const before = proxy.connections;
    for (let i = 0; i < 5; i++) expect(await fresh.get('alive/x.json')).toBeDefined();
    await fresh.list('alive/');
    expect(proxy.connections - before).toBe(1);
  });

  it('maps wrong credentials to RegistryUnavailableError (denied access)', async () => {
    await writer.put('creds/x.json', '{}');
    // s3rver itself rejects an unknown access key...
    const unknownKey = readerFor({
      endpoint: s3.endpoint,
      credentials: { accessKeyId: 'NOT-S3RVER', secretAccessKey: 'S3RVER' },
    });
    await expect(unknownKey.get('creds/x.json')).rejects.toThrow(
      new RegistryUnavailableError(
        `Registry s3://${s3.bucket} at ${s3.endpoint} denied access (read creds/x.json)`,
      ),
    );
    await expect(unknownKey.list('creds/')).rejects.toThrow(/denied access \(list creds\/\)/);
    // ...but not a wrong secret: it does not verify SigV4 signatures at all (see the proxy).
    const wrongSecretDirect = readerFor({
      endpoint: s3.endpoint,
      credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'WRONG' },
    });
    expect(await wrongSecretDirect.get('creds/x.json')).toBeDefined();
    // The verifying proxy answers as S3 would.
    const wrongSecret = readerFor({ credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'WRONG' } });
    const error = await wrongSecret.get('creds/x.json').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RegistryUnavailableError);
    expect((error as Error).message).toMatch(/denied access \(read creds\/x.json\)/);
    expect((error as Error).cause).toMatchObject({ name: 'SignatureDoesNotMatch', status: 403 });
    expect(proxy.seen.every((s) => s.problem === 'signature does not match')).toBe(true);
    proxy.seen.length = 0;
  });

  it('takes credentials and region from the environment, as Lambda sets them', async () => {
    await writer.put('env/x.json', '{}');
    const saved = { ...process.env };
    try {
      delete process.env.AWS_ACCESS_KEY_ID;
      delete process.env.AWS_SECRET_ACCESS_KEY;
      expect(() => new S3ObjectReader({ bucket: s3.bucket, endpoint: proxyUrl })).toThrow(ConfigurationError);
      expect(() => new S3ObjectReader({ bucket: s3.bucket, endpoint: proxyUrl })).toThrow(
        /AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY/,
      );
      process.env.AWS_ACCESS_KEY_ID = LOCAL_CREDENTIALS.accessKeyId;
      process.env.AWS_SECRET_ACCESS_KEY = LOCAL_CREDENTIALS.secretAccessKey;
      process.env.AWS_SESSION_TOKEN = 'session-token-from-lambda';
      process.env.AWS_REGION = 'eu-west-3';
      const fromEnv = new S3ObjectReader({ bucket: s3.bucket, endpoint: proxyUrl });
      readers.push(fromEnv);
      expect(await fromEnv.get('env/x.json')).toBeDefined();
      expect(proxy.seen.at(-1)?.region).toBe('eu-west-3');
      expect(proxy.seen.at(-1)?.signedHeaders).toContain('x-amz-security-token');
      delete process.env.AWS_REGION;
      process.env.AWS_DEFAULT_REGION = 'ap-south-1';
      const fallback = new S3ObjectReader({ bucket: s3.bucket, endpoint: proxyUrl });
      readers.push(fallback);
      await fallback.get('env/x.json');
      expect(proxy.seen.at(-1)?.region).toBe('ap-south-1');
    } finally {
      for (const name of [
        'AWS_ACCESS_KEY_ID',
        'AWS_SECRET_ACCESS_KEY',
        'AWS_SESSION_TOKEN',
        'AWS_REGION',
        'AWS_DEFAULT_REGION',
      ]) {
        if (saved[name] === undefined) delete process.env[name];
        else process.env[name] = saved[name];
      }
    }
  });

  it('cannot write: neither the reader nor the RegistryReader over it has a write method', () => {
    // @ts-expect-error the function's reader is an ObjectReader only: no put, no delete
    const store: ObjectStore = reader;
    expect('put' in store).toBe(false);
    expect('delete' in store).toBe(false);
    // @ts-expect-error writing needs a ModelRegistry, which needs an ObjectStore
    new ModelRegistry(reader);
    const registry = new RegistryReader(reader);
    for (const write of ['publish', 'setAlias', 'rollback', 'putReport', 'putDataset', 'removeDataset']) {
      expect(write in registry, write).toBe(false);
    }
    expect(proxy.seen).toEqual([]);
  });

  it('serves a RegistryReader that reads what a registry over S3ObjectStore published', async () => {
    const runtime = await createRuntime('cpu');
    const v1 = await publishLinear(runtime, s3.registry, 'reader', [1, 2, 3], 0.5, { promote: true });
    const registry = new RegistryReader(reader);

    const pointer = await registry.getAlias('reader', 'live');
    expect(pointer).toEqual(await s3.registry.getAlias('reader', 'live'));
    expect(pointer?.version).toBe(v1.version);
    expect(await registry.getAliasIfChanged('reader', 'live', pointer!.etag)).toBe('unchanged');
    expect(await registry.listVersions('reader')).toEqual([v1.version]);

    const read = await registry.readVersion('reader', v1.version);
    const expected = await s3.registry.readVersion('reader', v1.version);
    expect(read.metadata).toEqual(expected.metadata);
    expect([...read.files.keys()].sort()).toEqual([...expected.files.keys()].sort());
    for (const [name, body] of expected.files)
      expect(bytes(read.files.get(name)).equals(bytes(body))).toBe(true);

    const loaded = await loadModel(runtime, registryIOHandler(registry, 'reader', v1.version));
    try {
      const { tf } = runtime;
      if (loaded.format !== 'layers-model') throw new Error(`expected a layers-model, got ${loaded.format}`);
      const y = tf.tidy(
        () => loaded.model.predict(tf.tensor2d([[1, 1, 1]])) as ReturnType<typeof tf.tensor2d>,
      );
      expect(Array.from(await y.data())).toEqual([6.5]);
      y.dispose();
    } finally {
      disposeModel(loaded);
    }

    const v2 = await publishLinear(runtime, s3.registry, 'reader', [2, 2, 2], 0, { promote: true });
    const moved = await registry.getAliasIfChanged('reader', 'live', pointer!.etag);
    expect(moved !== 'unchanged' && moved?.version).toBe(v2.version);
    expect(await registry.getAlias('reader', 'nope')).toBeUndefined();
  });

  it('loads a small model from its alias pointer alone: one GET at a cold start, one at a swap', async () => {
    const runtime = await createRuntime('cpu');
    await publishLinear(runtime, s3.registry, 'onetrip', [1, 2, 3], 0.5, { promote: true });
    const quiet = { info() {}, warn() {}, error() {} };
    const handler = createHandler(
      { bucket: s3.bucket, model: 'onetrip', alias: 'live', aliasCheckSeconds: 0.05, limits: DEFAULT_LIMITS },
      { store: readerFor(), runtime: async () => runtime, log: quiet },
    );
    const predict = () =>
      handler({
        rawPath: '/v1/models/onetrip:predict',
        requestContext: { http: { method: 'POST' } },
        body: JSON.stringify({ instances: [[1, 1, 1]] }),
      });
    const pointerKey = `/${s3.bucket}/models/onetrip/aliases/live.json`;
    proxy.seen.length = 0;
    const cold = await predict();
    expect([cold.statusCode, JSON.parse(cold.body).predictions]).toEqual([200, [[6.5]]]);
    expect(proxy.seen.map((s) => s.url)).toEqual([pointerKey]);

    const v2 = await publishLinear(runtime, s3.registry, 'onetrip', [2, 2, 2], 0, { promote: true });
    await new Promise((resolve) => setTimeout(resolve, 100)); // past the alias check interval
    proxy.seen.length = 0;
    // The request that starts the re-check (one GET) waits for it a short budget: v2 if it ended
    // within it, else v1 from memory while it goes on; then v2 answers.
    expect(['1', String(v2.version)]).toContain((await predict()).headers['x-aiaas-model-version']);
    let swapped = await predict();
    for (let i = 0; i < 100 && swapped.headers['x-aiaas-model-version'] !== String(v2.version); i++) {
      await new Promise((resolve) => setTimeout(resolve, 5));
      swapped = await predict();
    }
    expect(swapped.headers['x-aiaas-model-version']).toBe(String(v2.version));
    expect(JSON.parse(swapped.body).predictions).toEqual([[6]]);
    expect(proxy.seen.map((s) => s.url)).toEqual([pointerKey]);
  });
});

/**
 * s3rver makes ListObjectsV2 continuation tokens with DES, which OpenSSL 3 (Node ≥ 17) only has in
 * its legacy provider: in this process any truncated listing answers 500 InternalError, through the
 * SDK too. So the pagination test runs its own s3rver in a child Node with that provider.
 */
async function startLegacyS3(
  directory: string,
): Promise<{ endpoint: string; bucket: string; close(): Promise<void> }> {
  const localStack = fileURLToPath(new URL('../../scripts/local/s3.ts', import.meta.url));
  const code = [
    `const { startLocalS3 } = await import(${JSON.stringify(pathToFileURL(localStack).href)});`,
    `const s3 = await startLocalS3({ directory: ${JSON.stringify(directory)} });`,
    'console.log(JSON.stringify({ endpoint: s3.endpoint, bucket: s3.bucket }));',
    'process.stdin.resume();',
    "process.stdin.on('end', async () => { await s3.close(); process.exit(0); });",
  ].join('\n');
  const child = spawn(
    process.execPath,
    ['--openssl-legacy-provider', '--import', 'tsx', '--input-type=module', '-e', code],
    {
      cwd: fileURLToPath(new URL('../..', import.meta.url)),
      env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
      stdio: ['pipe', 'pipe', 'inherit'],
    },
  );
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const [line] = (await Promise.race([
    once(createInterface({ input: child.stdout! }), 'line'),
    exited.then(() => {
      throw new Error('the s3rver child exited before it listened');
    }),
  ])) as string[];
  const { endpoint, bucket } = JSON.parse(line!) as { endpoint: string; bucket: string };
  return {
    endpoint,
    bucket,
    async close() {
      child.stdin!.end();
      const timer = setTimeout(() => child.kill(), 5_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

describe('S3ObjectReader listing many objects', () => {
  let legacy: Awaited<ReturnType<typeof startLegacyS3>>;
  let legacyDir: string;
  let legacyProxy: SigV4Proxy;
  beforeAll(async () => {
    legacyDir = mkdtempSync(join(tmpdir(), 'aiaas-s3-reader-pages-'));
    legacy = await startLegacyS3(legacyDir);
    legacyProxy = new SigV4Proxy(new URL(legacy.endpoint));
  });
  afterAll(async () => {
    await legacyProxy?.close();
    await legacy?.close();
    if (legacyDir) rmSync(legacyDir, { recursive: true, force: true });
  });

  it('lists more than 1000 objects across pages, with sizes and dates', async () => {
    const client = createS3Client({
      endpoint: legacy.endpoint,
      credentials: LOCAL_CREDENTIALS,
      region: 'us-east-1',
    });
    const sdk = new S3ObjectStore(client, legacy.bucket, legacy.endpoint);
    const count = 1_037;
    const keys = Array.from({ length: count }, (_, i) => `many/${String(i).padStart(5, '0')}.txt`);
    for (let i = 0; i < keys.length; i += 64) {
      await Promise.all(keys.slice(i, i + 64).map((key, j) => sdk.put(key, 'x'.repeat(1 + ((i + j) % 7)))));
    }
    const pages = readerFor({ endpoint: await legacyProxy.start(), bucket: legacy.bucket });
    const before = Date.now();
    const listed = await pages.list('many/');
    expect(listed.map((o) => o.key)).toEqual(keys);
    expect(listed.map((o) => o.size)).toEqual(keys.map((_, i) => 1 + (i % 7)));
    for (const o of listed) {
      expect(o.lastModified).toBeInstanceOf(Date);
      expect(o.lastModified!.getTime()).toBeLessThanOrEqual(before + 1_000);
      expect(o.lastModified!.getTime()).toBeGreaterThan(before - 10 * 60_000);
    }
    // Two pages: the second asks with s3rver's continuation token (base64: '+', '/' and '=' encoded
    // in the query and signed as S3 canonicalizes them).
    expect(legacyProxy.seen.map((s) => s.problem)).toEqual([undefined, undefined]);
    expect(legacyProxy.seen[0]?.url).not.toContain('continuation-token');
    expect(legacyProxy.seen[1]?.url).toMatch(/continuation-token=[^&]+/);
    expect(listed).toEqual(
      (await sdk.list('many/')).map((o) => ({ key: o.key, size: o.size, lastModified: o.lastModified })),
    );
    expect(await pages.listPrefixes('')).toEqual(['many/']);
    client.destroy();
  });
});

/** A loopback HTTP server answering each request from a script, like S3 under strain would. */
async function scripted(
  answers: ((req: IncomingMessage, res: ServerResponse) => void)[],
): Promise<{ url: string; requests: string[] }> {
  const requests: string[] = [];
  const server = createHttpServer((req, res) => {
    requests.push(`${req.method} ${req.url}`);
    const answer =
      answers.shift() ?? ((_: IncomingMessage, r: ServerResponse) => s3Error(r, 500, 'InternalError'));
    answer(req, res);
  });
  servers.push({
    close: () => {
      server.closeAllConnections();
      server.close();
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests };
}

/** A raw TCP listener on loopback; `onRequest` gets the socket once a request's headers arrived. */
async function rawServer(
  onRequest: (socket: Socket) => void,
): Promise<{ url: string; connections: () => number }> {
  let connections = 0;
  const sockets = new Set<Socket>();
  const server = createTcpServer((socket) => {
    connections++;
    sockets.add(socket);
    socket.on('error', () => socket.destroy());
    let head = '';
    socket.on('data', (chunk) => {
      if (head.includes('\r\n\r\n')) return;
      head += chunk.toString('latin1');
      if (head.includes('\r\n\r\n')) onRequest(socket);
    });
  });
  servers.push({
    close: () => {
      for (const socket of sockets) socket.destroy();
      server.close();
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    connections: () => connections,
  };
}

describe('S3ObjectReader when S3 misbehaves', () => {
  const faulty = (endpoint: string, settings: Partial<S3ReaderSettings> = {}) =>
    readerFor({ endpoint, bucket: 'b', ...settings });

  it('fails fast with RegistryUnavailableError when nothing listens (S3 down)', async () => {
    const probe = createTcpServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const port = (probe.address() as AddressInfo).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const endpoint = `http://127.0.0.1:${port}`;
    const down = faulty(endpoint);
    const { error, ms } = await within(2_000, down.get('models/m/aliases/live.json'));
    expect(error).toBeInstanceOf(RegistryUnavailableError);
    expect((error as Error).message).toBe(
      `Registry s3://b at ${endpoint} is unavailable (read models/m/aliases/live.json: ECONNREFUSED)`,
    );
    expect((error as Error).cause).toMatchObject({ code: 'ECONNREFUSED' });
    expect(ms).toBeLessThan(500);
    await expect(down.list('models/')).rejects.toThrow(/unavailable \(list models\/: ECONNREFUSED\)/);
  });

  it('gives up on a server that accepts and never answers after requestTimeoutMs, each attempt', async () => {
    const silent = await rawServer(() => undefined);
    const reader = faulty(silent.url, { requestTimeoutMs: 400, maxAttempts: 2 });
    const { error, ms } = await within(3_000, reader.get('k.json'));
    expect(error).toBeInstanceOf(RegistryUnavailableError);
    expect((error as Error).message).toBe(
      `Registry s3://b at ${silent.url} is unavailable (read k.json: TimeoutError)`,
    );
    expect(ms).toBeGreaterThan(790);
    expect(ms).toBeLessThan(2_000);
    expect(silent.connections()).toBe(2);
  });

  it('gives up on a body that stalls, and retries a body cut short', async () => {
    const stalled = await rawServer((socket) =>
      socket.write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\nETag: "e"\r\n\r\n0123456789'),
    );
    const slow = faulty(stalled.url, { requestTimeoutMs: 300, maxAttempts: 1 });
    const { error, ms } = await within(3_000, slow.get('k.bin'));
    expect((error as Error).message).toMatch(/unavailable \(read k.bin: TimeoutError\)/);
    expect(ms).toBeLessThan(1_000);

    let cut = 0;
    const short = await rawServer((socket) => {
      cut++;
      if (cut === 1) socket.end('HTTP/1.1 200 OK\r\nContent-Length: 100\r\nETag: "e"\r\n\r\n0123456789');
      else socket.write('HTTP/1.1 200 OK\r\nContent-Length: 4\r\nETag: "f"\r\n\r\nfull');
    });
    const got = await faulty(short.url, { maxAttempts: 2 }).get('k.bin');
    expect(bytes(got?.body).toString()).toBe('full');
    expect(got?.etag).toBe('"f"');
    expect(cut).toBe(2);
  });

  it('writes a retried body to its sink again from byte 0, and nothing from the abandoned attempt after it', async () => {
    let served = 0;
    const server = await rawServer((socket) => {
      served++;
      if (served === 1) {
        // Half the body, then silence: the attempt times out and its socket is dropped.
        socket.write('HTTP/1.1 200 OK\r\nContent-Length: 10\r\nETag: "e"\r\n\r\nABCDE');
        setTimeout(() => socket.write('XXXXX'), 600).unref();
      } else socket.write('HTTP/1.1 200 OK\r\nContent-Length: 10\r\nETag: "e"\r\n\r\n0123456789');
    });
    const landed = Buffer.alloc(10, '.');
    const writes: string[] = [];
    const got = await faulty(server.url, { requestTimeoutMs: 300, maxAttempts: 2 }).get('k.bin', {
      sha256: true,
      into: () => ({
        write: (chunk, offset) => {
          writes.push(`${offset}:${Buffer.from(chunk).toString()}`);
          landed.set(chunk, offset);
        },
      }),
    });
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(served).toBe(2);
    expect(writes[0]).toBe('0:ABCDE');
    const retried = writes.slice(1);
    expect(retried[0]).toMatch(/^0:/);
    expect(retried.map((w) => w.slice(w.indexOf(':') + 1)).join('')).toBe('0123456789');
    expect(landed.toString()).toBe('0123456789');
    expect(got?.sunk).toEqual({ bytes: 10 });
    expect(got?.sha256).toBe(createHash('sha256').update('0123456789').digest('hex'));
  });

  it('retries 5xx and 429 up to maxAttempts, never 304 or 404', async () => {
    const ok = (_: IncomingMessage, res: ServerResponse) => {
      res.writeHead(200, { etag: '"ok"', 'content-length': '2' });
      res.end('ok');
    };
    const flaky = await scripted([
      (_, res) => s3Error(res, 503, 'SlowDown'),
      (_, res) => s3Error(res, 429, 'TooManyRequests'),
      ok,
    ]);
    const got = await faulty(flaky.url, { maxAttempts: 3 }).get('k.json');
    expect(bytes(got?.body).toString()).toBe('ok');
    expect(flaky.requests).toHaveLength(3);

    const broken = await scripted([]);
    const { error, ms } = await within(2_000, faulty(broken.url).get('k.json'));
    expect((error as Error).message).toBe(
      `Registry s3://b at ${broken.url} is unavailable (read k.json: InternalError 500)`,
    );
    expect((error as Error).cause).toMatchObject({ name: 'InternalError', status: 500 });
    expect(broken.requests).toHaveLength(2);
    expect(ms).toBeLessThan(1_000);

    // A 304 that names the entity's length (as HTTP allows) still has no body.
    const same = await scripted([
      (req, res) => {
        expect(req.headers['if-none-match']).toBe('"e"');
        res.writeHead(304, { etag: '"e"', 'content-length': '10' });
        res.end();
      },
    ]);
    expect(await faulty(same.url).getIfChanged('k.json', '"e"')).toBe('unchanged');
    expect(same.requests).toHaveLength(1);

    const gone = await scripted([(_, res) => s3Error(res, 404, 'NoSuchKey')]);
    expect(await faulty(gone.url).get('k.json')).toBeUndefined();
    expect(gone.requests).toEqual(['GET /b/k.json']);
  });
});
