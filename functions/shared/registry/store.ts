import {
  DeleteObjectCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { type AiaasError, ConflictError, RegistryUnavailableError } from '../errors.js';
import { prefixesOf } from './layout.js';

/** One stored object: its bytes and its entity tag. */
export interface StoredObject {
  readonly body: Uint8Array;
  readonly etag: string;
  /** Hex sha256 of the body, when asked for and the store computed it while reading. */
  readonly sha256?: string;
  /** The body went to the sink `GetOptions.into` gave, as it arrived: `body` is then empty. */
  readonly sunk?: { readonly bytes: number };
}

/**
 * Where a body goes as it arrives, instead of into a buffer of its own: weights straight into the
 * memory of their tensors, for one copy less and no fresh pages to fault in.
 */
export interface BodySink {
  /** Bytes [offset, offset + bytes.byteLength) of the body; from 0 again if the read is retried. */
  write(bytes: Uint8Array, offset: number): void;
}

export interface GetOptions {
  /** Compute the body's sha256 while it arrives (stores that cannot leave it out). */
  readonly sha256?: boolean;
  /**
   * Asked once a successful answer's length is known: a sink to take the body, or undefined to
   * keep it in `body`. Stores may ignore it (then `sunk` is unset and `body` holds the bytes).
   */
  readonly into?: (length: number) => BodySink | undefined;
}

export interface ListedObject {
  readonly key: string;
  readonly size: number;
  readonly lastModified?: Date;
}

export interface PutOptions {
  readonly contentType?: string;
  /** `'*'`: create only; the store answers ConflictError when the key exists (where it enforces it). */
  readonly ifNoneMatch?: '*';
  /** Replace only this entity tag; ConflictError otherwise (where the store enforces it). */
  readonly ifMatch?: string;
}

/**
 * The few object operations the registry needs. `S3ObjectStore` is the real one; unit tests may
 * pass an in-memory fake. Implementations map transport faults to RegistryUnavailableError.
 */
export interface ObjectStore {
  /** The object, or undefined when the key does not exist. */
  get(key: string, options?: GetOptions): Promise<StoredObject | undefined>;
  /** Like get, but answers 'unchanged' when the object still has entity tag `etag` (a cheap 304). */
  getIfChanged(key: string, etag: string): Promise<StoredObject | 'unchanged' | undefined>;
  put(key: string, body: Uint8Array | string, options?: PutOptions): Promise<{ etag: string }>;
  /** Every object under a prefix (all pages). */
  list(prefix: string): Promise<ListedObject[]>;
  /** The immediate sub-"folders" of a prefix, as full prefixes ending in '/'. */
  listPrefixes(prefix: string): Promise<string[]>;
  delete(key: string): Promise<void>;
  /** Where the store lives, for messages. */
  readonly description: string;
}

export interface S3Settings {
  readonly bucket: string;
  /** An S3-compatible endpoint (e.g. http://127.0.0.1:4569); AWS itself when unset. */
  readonly endpoint?: string;
  readonly region?: string;
  readonly credentials?: S3ClientConfig['credentials'];
  /** Give up on a connection after this long, so a cold start fails fast when S3 is down. */
  readonly connectionTimeoutMs?: number;
  readonly requestTimeoutMs?: number;
  readonly maxAttempts?: number;
}

/**
 * An S3 client tuned for the registry: keep-alive sockets reused across warm invocations, bounded
 * timeouts, path-style addressing for local endpoints, and checksums only where S3 requires them
 * (S3-compatible servers such as s3rver corrupt streamed uploads otherwise).
 */
export function createS3Client(settings: Omit<S3Settings, 'bucket'>): S3Client {
  // Agent options, not Agent instances: the handler builds the agents from them (keep-alive as
  // asked). Importing node:http as an ES module here would build its ESM facade, whose getters load
  // undici (fetch, WebSocket): ~30 ms of a cold start for nothing (profiled; see docs/benchmarks.md).
  const agentOptions = { keepAlive: true, maxSockets: 64 };
  return new S3Client({
    region: settings.region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? 'us-east-1',
    ...(settings.endpoint ? { endpoint: settings.endpoint, forcePathStyle: true } : {}),
    ...(settings.credentials ? { credentials: settings.credentials } : {}),
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts: settings.maxAttempts ?? 3,
    requestHandler: new NodeHttpHandler({
      httpAgent: agentOptions,
      httpsAgent: agentOptions,
      connectionTimeout: settings.connectionTimeoutMs ?? 2_000,
      requestTimeout: settings.requestTimeoutMs ?? 30_000,
      // Without this, requestTimeout only logs a warning: an S3 that accepts the connection but
      // never answers would hold the call (and a cold start) until the Lambda timeout.
      throwOnRequestTimeout: true,
      // ...and give up on a response body that stalls this long (requestTimeout ends at the headers).
      socketTimeout: settings.requestTimeoutMs ?? 30_000,
    }),
  });
}

interface SdkError {
  name?: string;
  code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
}

function statusOf(error: unknown): number | undefined {
  return (error as SdkError)?.$metadata?.httpStatusCode;
}

/** The registry over any S3 endpoint. The client is injected so callers share one. */
export class S3ObjectStore implements ObjectStore {
  readonly description: string;

  constructor(
    private readonly client: S3Client,
    readonly bucket: string,
    endpoint?: string,
  ) {
    this.description = `s3://${bucket}${endpoint ? ` at ${endpoint}` : ''}`;
  }

  async get(key: string): Promise<StoredObject | undefined> {
    const result = await this.fetch(key);
    return result === 'unchanged' ? undefined : result;
  }

  getIfChanged(key: string, etag: string): Promise<StoredObject | 'unchanged' | undefined> {
    return this.fetch(key, etag);
  }

  private async fetch(key: string, ifNoneMatch?: string): Promise<StoredObject | 'unchanged' | undefined> {
    try {
      const out = await this.client.send(
        new GetObjectCommand({
          Bucket: this.bucket,
          Key: key,
          ...(ifNoneMatch ? { IfNoneMatch: ifNoneMatch } : {}),
        }),
      );
      const body = out.Body ? await out.Body.transformToByteArray() : new Uint8Array();
      return { body, etag: out.ETag ?? '' };
    } catch (error) {
      const status = statusOf(error);
      // s3rver and S3 both answer 304 for a matching If-None-Match; the SDK surfaces it as an error.
      if (status === 304) return 'unchanged';
      if (status === 404 || (error as SdkError).name === 'NoSuchKey') return undefined;
      // S3 answers 403, not 404, for a missing key when the caller may list only a prefix of the
      // bucket (least privilege). Listing that key tells a missing object from a real denial.
      if (status === 403 && (await this.missing(key))) return undefined;
      throw this.fault(`read ${key}`, error);
    }
  }

  private async missing(key: string): Promise<boolean> {
    try {
      const out = await this.client.send(
        new ListObjectsV2Command({ Bucket: this.bucket, Prefix: key, MaxKeys: 1 }),
      );
      return !(out.Contents ?? []).some((item) => item.Key === key);
    } catch {
      return false;
    }
  }

  async put(key: string, body: Uint8Array | string, options: PutOptions = {}): Promise<{ etag: string }> {
    try {
      const out = await this.client.send(
        new PutObjectCommand({
          Bucket: this.bucket,
          Key: key,
          Body: body,
          ContentType: options.contentType ?? 'application/octet-stream',
          ...(options.ifNoneMatch ? { IfNoneMatch: options.ifNoneMatch } : {}),
          ...(options.ifMatch ? { IfMatch: options.ifMatch } : {}),
        }),
      );
      return { etag: out.ETag ?? '' };
    } catch (error) {
      const status = statusOf(error);
      if (status === 412 || status === 409) {
        throw new ConflictError(`${key} was changed by another writer`, { cause: error });
      }
      throw this.fault(`write ${key}`, error);
    }
  }

  async list(prefix: string): Promise<ListedObject[]> {
    const objects: ListedObject[] = [];
    let token: string | undefined;
    do {
      try {
        const out = await this.client.send(
          new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ContinuationToken: token }),
        );
        for (const item of out.Contents ?? []) {
          if (item.Key) {
            objects.push({
              key: item.Key,
              size: item.Size ?? 0,
              ...(item.LastModified ? { lastModified: item.LastModified } : {}),
            });
          }
        }
        token = out.IsTruncated ? out.NextContinuationToken : undefined;
      } catch (error) {
        throw this.fault(`list ${prefix}`, error);
      }
    } while (token);
    return objects;
  }

  async listPrefixes(prefix: string): Promise<string[]> {
    return prefixesOf(await this.list(prefix), prefix);
  }

  async delete(key: string): Promise<void> {
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }));
    } catch (error) {
      if (statusOf(error) === 404) return;
      throw this.fault(`delete ${key}`, error);
    }
  }

  private fault(action: string, error: unknown): AiaasError {
    const status = statusOf(error);
    const detail = (error as SdkError)?.name ?? (error as SdkError)?.code ?? 'error';
    if (status === 403) {
      return new RegistryUnavailableError(`Registry ${this.description} denied access (${action})`, {
        cause: error,
      });
    }
    return new RegistryUnavailableError(
      `Registry ${this.description} is unavailable (${action}: ${detail}${status ? ` ${status}` : ''})`,
      { cause: error },
    );
  }
}
