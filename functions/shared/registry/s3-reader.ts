/**
 * The inference function's registry store: reads only (ObjectReader), so the type system shows the
 * function never writes. Reading the registry needs only signed GETs and a listing, so this signs
 * them with @smithy/signature-v4 and sends them over Node's own http/https with keep-alive,
 * instead of importing @aws-sdk/client-s3, a large part of a cold start (docs/benchmarks.md,
 * "No AWS SDK in the function"). Writers (the CLI, retraining) keep S3ObjectStore and the SDK.
 * Behaviour and error messages mirror S3ObjectStore (s3-errors.ts), so the registry cannot tell
 * them apart. One concept kept whole: a bounded, retried, signed GET and the reception of its body
 * (into a buffer or a caller's sink, hashed as it arrives), the model-load hot path.
 */

import type { Agent, ClientRequest, IncomingHttpHeaders, IncomingMessage, RequestOptions } from 'node:http';
import { Sha256 } from '@aws-crypto/sha256-js';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';
import { NATIVE_FROM_BYTES, sha256, sha256Hasher } from '../digest.js';
import { AiaasError, ConfigurationError } from '../errors.js';
import { prefixesOf } from './layout.js';
import { escapePath, escapeUri, type Target, targetOf } from './s3-address.js';
import { isMissing, missingBehind403, registryFault } from './s3-errors.js';
import { parseListing, S3ResponseError, textOf } from './s3-xml.js';
import type { BodySink, GetOptions, ListedObject, ObjectReader, StoredObject } from './store.js';

export interface S3ReaderCredentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string;
}

export interface S3ReaderSettings {
  readonly bucket: string;
  /** An S3-compatible endpoint (e.g. http://127.0.0.1:4569), addressed path-style; AWS itself when unset. */
  readonly endpoint?: string;
  /** Signing region. @default AWS_REGION, AWS_DEFAULT_REGION, then us-east-1 */
  readonly region?: string;
  /** @default AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN, as Lambda sets them */
  readonly credentials?: S3ReaderCredentials;
  /** Give up on a connection after this long, so a cold start fails fast when S3 is down. @default 2000 */
  readonly connectionTimeoutMs?: number;
  /** Per attempt: the longest wait for the response headers, and for each chunk of a body. @default 30000 */
  readonly requestTimeoutMs?: number;
  /** Attempts per request, counting the first. @default 2 */
  readonly maxAttempts?: number;
}

type HttpModule = typeof import('node:http');

interface Answer {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: Uint8Array;
  /** Hex sha256 of the body, when asked for. */
  readonly sha256?: string;
  /** Bytes written to the caller's sink instead of `body`. */
  readonly sunk?: number;
}

interface BodyOptions {
  /** Hash a successful answer's body as it arrives. */
  readonly hashBody?: boolean;
  readonly into?: GetOptions['into'];
}

class TimeoutError extends Error {
  override readonly name = 'TimeoutError';
}

class IncompleteBodyError extends Error {
  override readonly name = 'IncompleteBodyError';
}

// S3 and its SDK treat these as transient; 304, 403 and 404 are answers, never retried.
const RETRYABLE_STATUS = new Set([429, 500, 502, 503, 504]);

/** See the top of this file. */
export class S3ObjectReader implements ObjectReader {
  readonly description: string;
  readonly bucket: string;
  private readonly target: Target;
  private readonly signer: SignatureV4;
  private readonly connectionTimeoutMs: number;
  private readonly requestTimeoutMs: number;
  private readonly maxAttempts: number;
  private transport: { readonly request: HttpModule['request']; readonly agent: Agent } | undefined;

  constructor(settings: S3ReaderSettings) {
    this.bucket = settings.bucket;
    this.description = `s3://${settings.bucket}${settings.endpoint ? ` at ${settings.endpoint}` : ''}`;
    const region = settings.region || process.env.AWS_REGION || process.env.AWS_DEFAULT_REGION || 'us-east-1';
    this.target = targetOf(settings.bucket, region, settings.endpoint);
    this.signer = new SignatureV4({
      service: 's3',
      region,
      credentials: settings.credentials ?? credentialsFromEnv(),
      // The JS sha256: signing hashes a few short strings, not worth loading node:crypto for.
      sha256: Sha256,
      // S3 signs the path as sent (each segment encoded once), unlike other services.
      uriEscapePath: false,
      applyChecksum: true,
    });
    this.connectionTimeoutMs = settings.connectionTimeoutMs ?? 2_000;
    this.requestTimeoutMs = settings.requestTimeoutMs ?? 30_000;
    this.maxAttempts = Math.max(1, settings.maxAttempts ?? 2);
  }

  async get(key: string, options: GetOptions = {}): Promise<StoredObject | undefined> {
    const result = await this.fetch(key, undefined, options.sha256 === true, options.into);
    return result === 'unchanged' ? undefined : result;
  }

  getIfChanged(key: string, etag: string): Promise<StoredObject | 'unchanged' | undefined> {
    return this.fetch(key, etag);
  }

  private async fetch(
    key: string,
    ifNoneMatch?: string,
    hashBody = false,
    into?: GetOptions['into'],
  ): Promise<StoredObject | 'unchanged' | undefined> {
    let answer: Answer;
    try {
      answer = await this.send(
        `${this.target.bucketPath}/${escapePath(key)}`,
        {},
        ifNoneMatch ? { 'if-none-match': ifNoneMatch } : {},
        { hashBody, into },
      );
    } catch (error) {
      throw this.fault(`read ${key}`, error);
    }
    if (answer.status >= 200 && answer.status < 300) {
      return {
        body: answer.body,
        etag: headerValue(answer.headers.etag),
        sha256: answer.sha256,
        sunk: answer.sunk === undefined ? undefined : { bytes: answer.sunk },
      };
    }
    if (answer.status === 304) return 'unchanged';
    const error = responseError(answer);
    if (isMissing(answer.status, error.code)) return undefined;
    if (
      answer.status === 403 &&
      (await missingBehind403(key, async (first) => (await this.listPage(first, undefined, 1)).objects))
    ) {
      return undefined;
    }
    throw this.fault(`read ${key}`, error);
  }

  async list(prefix: string): Promise<ListedObject[]> {
    const objects: ListedObject[] = [];
    let token: string | undefined;
    do {
      try {
        const page = await this.listPage(prefix, token);
        objects.push(...page.objects);
        token = page.next;
      } catch (error) {
        throw this.fault(`list ${prefix}`, error);
      }
    } while (token);
    return objects;
  }

  async listPrefixes(prefix: string): Promise<string[]> {
    return prefixesOf(await this.list(prefix), prefix);
  }

  /** Closes the pooled connections (tests, scripts); the next request opens new ones. */
  destroy(): void {
    this.transport?.agent.destroy();
    this.transport = undefined;
  }

  /** One ListObjectsV2 page; throws S3ResponseError or a transport error. */
  private async listPage(
    prefix: string,
    token: string | undefined,
    maxKeys?: number,
  ): Promise<{ objects: ListedObject[]; next?: string }> {
    const query: Record<string, string> = { 'list-type': '2' };
    if (prefix) query.prefix = prefix;
    if (token) query['continuation-token'] = token;
    if (maxKeys !== undefined) query['max-keys'] = String(maxKeys);
    const answer = await this.send(this.target.bucketPath || '/', query, {});
    if (answer.status !== 200) throw responseError(answer);
    return parseListing(new TextDecoder().decode(answer.body));
  }

  /** A signed GET, retried on transport faults and transient statuses; the last answer otherwise. */
  private async send(
    path: string,
    query: Record<string, string>,
    extraHeaders: Record<string, string>,
    body: BodyOptions = {},
  ): Promise<Answer> {
    const search = Object.entries(query)
      .map(([name, value]) => `${escapeUri(name)}=${escapeUri(value)}`)
      .join('&');
    for (let attempt = 1; ; attempt++) {
      // Signed per attempt: the signature carries the time.
      const signed = await this.signer.sign(
        new HttpRequest({
          method: 'GET',
          protocol: this.target.protocol,
          hostname: this.target.hostname,
          ...(this.target.port ? { port: this.target.port } : {}),
          path,
          query,
          headers: {
            host: this.target.host,
            // GETs carry no payload; S3 wants the header signed all the same.
            'x-amz-content-sha256': 'UNSIGNED-PAYLOAD',
            ...extraHeaders,
          },
        }),
      );
      let answer: Answer | undefined;
      let failure: unknown;
      try {
        answer = await this.exchange(search ? `${path}?${search}` : path, signed.headers, body);
      } catch (error) {
        failure = error;
      }
      if (answer && !RETRYABLE_STATUS.has(answer.status)) return answer;
      if (attempt >= this.maxAttempts) {
        if (answer) return answer;
        throw failure;
      }
      // Jittered so that concurrent readers (a version's shards load in parallel) do not retry in step.
      const base = 25 * 2 ** (attempt - 1);
      await new Promise((resolve) => setTimeout(resolve, base + Math.random() * base));
    }
  }

  /** One HTTP exchange, bounded in time at every stage: connect, headers, each chunk of the body. */
  private exchange(path: string, headers: Record<string, string>, body: BodyOptions): Promise<Answer> {
    const { request, agent } = this.connection();
    const target = this.target;
    return new Promise<Answer>((resolve, reject) => {
      const timers: NodeJS.Timeout[] = [];
      let settled = false;
      let req: ClientRequest | undefined;
      const settle = (error: unknown, answer?: Answer) => {
        if (settled) return;
        settled = true;
        for (const timer of timers) clearTimeout(timer);
        if (answer) resolve(answer);
        else {
          reject(error);
          // A half-read answer leaves the socket in an unknown state: never hand it back to the pool.
          req?.destroy();
        }
      };
      const options: RequestOptions = {
        protocol: target.protocol,
        hostname: target.hostname,
        ...(target.port ? { port: target.port } : {}),
        method: 'GET',
        path,
        headers,
        agent,
      };
      req = request(options, (res) => this.readBody(res, timers, settle, body, () => settled));
      req.on('error', (error) => settle(error));
      timers.push(
        setTimeout(
          () => settle(new TimeoutError(`no response within ${this.requestTimeoutMs} ms`)),
          this.requestTimeoutMs,
        ),
      );
      req.on('socket', (socket) => {
        // A pooled keep-alive socket is already connected; only a new one can hang in connect.
        if (!socket.connecting) return;
        const timer = setTimeout(
          () => settle(new TimeoutError(`no connection within ${this.connectionTimeoutMs} ms`)),
          this.connectionTimeoutMs,
        );
        timers.push(timer);
        socket.once('connect', () => clearTimeout(timer));
      });
      req.end();
    });
  }

  private readBody(
    res: IncomingMessage,
    timers: NodeJS.Timeout[],
    settle: (error: unknown, answer?: Answer) => void,
    { hashBody = false, into }: BodyOptions,
    settled: () => boolean,
  ) {
    // The headers arrived: from now on only a body that stalls for requestTimeoutMs is a fault.
    for (const timer of timers.splice(0)) clearTimeout(timer);
    const idle = setTimeout(
      () => settle(new TimeoutError(`response body stalled for ${this.requestTimeoutMs} ms`)),
      this.requestTimeoutMs,
    );
    timers.push(idle);
    res.on('error', (error) => settle(error));
    res.on('close', () => {
      if (!res.complete) settle(new IncompleteBodyError('connection closed before the end of the response'));
    });
    const status = res.statusCode ?? 0;
    const declared = res.headers['content-length'];
    // A 304 may carry the entity's content-length, yet never a body.
    const length =
      status === 304 || status === 204
        ? 0
        : declared !== undefined && /^\d+$/.test(declared)
          ? Number(declared)
          : undefined;
    const ok = status >= 200 && status < 300;
    let sink: BodySink | undefined;
    // Model weights run to many MB: one exact allocation, no chunk list to concatenate. Not from
    // Buffer's shared pool either, so the view owns its whole ArrayBuffer (tfjs then takes it as is).
    let exact: Buffer | undefined;
    try {
      sink = ok && length !== undefined ? into?.(length) : undefined;
      exact = length === undefined || sink ? undefined : Buffer.allocUnsafeSlow(length);
    } catch (error) {
      // A length no buffer can hold: a fault to report, not an exception inside the HTTP parser.
      settle(error);
      return;
    }
    const chunks: Buffer[] = [];
    let received = 0;
    // Big bodies (weights) are hashed chunk by chunk as they arrive, while the rest of the
    // download is still in flight, instead of all at once after it: verification then adds
    // almost nothing to a load. Small ones are hashed at the end, in JS (see digest.ts).
    // A sink's body is never whole in one place: it is hashed as it arrives, whatever its size.
    const hash =
      hashBody && ok && length !== undefined && (sink || (exact && length >= NATIVE_FROM_BYTES))
        ? sha256Hasher(length)
        : undefined;
    // The body's exact length, when it goes somewhere sized by the header.
    const expected = sink || exact ? length : undefined;
    res.on('data', (chunk: Buffer) => {
      // A sink outlives this attempt: an abandoned one must not write into what its retry fills.
      if (settled()) return;
      idle.refresh();
      if (expected !== undefined && received + chunk.length > expected) {
        settle(new IncompleteBodyError(`response body longer than its content-length ${expected}`));
        return;
      }
      hash?.update(chunk);
      if (sink) {
        try {
          sink.write(chunk, received);
        } catch (error) {
          settle(error);
          return;
        }
      } else if (exact) exact.set(chunk, received);
      else chunks.push(chunk);
      received += chunk.length;
    });
    res.on('end', () => {
      if (expected !== undefined && received !== expected) {
        settle(new IncompleteBodyError(`response body ended after ${received} of ${expected} bytes`));
        return;
      }
      let body: Uint8Array;
      if (sink) {
        const digest = hash?.digest();
        settle(undefined, {
          status,
          headers: res.headers,
          body: new Uint8Array(0),
          sunk: received,
          sha256: digest,
        });
        return;
      }
      if (exact) body = new Uint8Array(exact.buffer, exact.byteOffset, exact.length);
      else {
        body = new Uint8Array(received);
        let offset = 0;
        for (const chunk of chunks) {
          body.set(chunk, offset);
          offset += chunk.length;
        }
      }
      const digest = hash ? hash.digest() : hashBody && ok ? sha256(body) : undefined;
      settle(undefined, { status, headers: res.headers, body, sha256: digest });
    });
  }

  private connection() {
    if (!this.transport) {
      // Not `import ... from 'node:http'`: building that module's ESM facade runs getters that load
      // undici (fetch, WebSocket), a cost to every cold start for nothing (docs/benchmarks.md).
      if (typeof process.getBuiltinModule !== 'function') {
        throw new ConfigurationError('S3ObjectReader needs Node.js 20.16, 22.3 or later');
      }
      const http: HttpModule =
        this.target.protocol === 'https:'
          ? (process.getBuiltinModule('node:https') as unknown as HttpModule)
          : process.getBuiltinModule('node:http');
      this.transport = {
        request: http.request,
        agent: new http.Agent({ keepAlive: true, maxSockets: 64 }),
      };
    }
    return this.transport;
  }

  private fault(action: string, error: unknown): AiaasError {
    if (error instanceof AiaasError) return error;
    const response = error instanceof S3ResponseError ? error : undefined;
    const detail =
      response?.code ?? (error as NodeJS.ErrnoException)?.code ?? (error as Error)?.name ?? 'error';
    return registryFault(this.description, action, error, response?.status, detail);
  }
}

function credentialsFromEnv(): S3ReaderCredentials {
  const { AWS_ACCESS_KEY_ID: accessKeyId, AWS_SECRET_ACCESS_KEY: secretAccessKey } = process.env;
  if (!accessKeyId || !secretAccessKey) {
    throw new ConfigurationError(
      'S3ObjectReader has no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for temporary ones), as Lambda does, or pass them in its settings',
    );
  }
  const sessionToken = process.env.AWS_SESSION_TOKEN;
  return { accessKeyId, secretAccessKey, sessionToken: sessionToken || undefined };
}

function headerValue(value: string | string[] | undefined): string {
  return (Array.isArray(value) ? value[0] : value) ?? '';
}

function responseError(answer: Answer): S3ResponseError {
  const xml = new TextDecoder().decode(answer.body);
  const code = textOf(xml, 'Code') ?? `Http${answer.status}`;
  return new S3ResponseError(
    code,
    answer.status,
    textOf(xml, 'Message') ?? `S3 answered ${answer.status}`,
    textOf(xml, 'RequestId') ?? headerValue(answer.headers['x-amz-request-id']),
  );
}
