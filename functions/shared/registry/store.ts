/**
 * The registry's storage contract: ObjectReader (get, conditional get, list) and ObjectWriter
 * (create-only or If-Match puts, delete), an ObjectStore being both; and S3ObjectStore, the AWS
 * SDK implementation the writers (CLI, retraining, local stack) use. The inference function reads
 * through S3ObjectReader (s3-reader.ts) instead. Both map S3 failures the same way (s3-errors.ts).
 */

import {
  DeleteObjectCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { type AiaasError, ConflictError } from '../errors.js';
import { prefixesOf } from './layout.js';
import { isMissing, missingBehind403, registryFault } from './s3-errors.js';

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
 * The read operations of the registry's store. `S3ObjectReader` (the inference function's) is only
 * this; `S3ObjectStore` is a full ObjectStore; unit tests may pass an in-memory fake.
 * Implementations map transport faults to RegistryUnavailableError.
 */
export interface ObjectReader {
  /** The object, or undefined when the key does not exist. */
  get(key: string, options?: GetOptions): Promise<StoredObject | undefined>;
  /** Like get, but answers 'unchanged' when the object still has entity tag `etag` (a cheap 304). */
  getIfChanged(key: string, etag: string): Promise<StoredObject | 'unchanged' | undefined>;
  /** Every object under a prefix (all pages). */
  list(prefix: string): Promise<ListedObject[]>;
  /** The immediate sub-"folders" of a prefix, as full prefixes ending in '/'. */
  listPrefixes(prefix: string): Promise<string[]>;
  /** Where the store lives, for messages. */
  readonly description: string;
}

/** The write operations of the registry's store. */
export interface ObjectWriter {
  /** ConflictError when a condition in `options` fails (where the store enforces it). */
  put(key: string, body: Uint8Array | string, options?: PutOptions): Promise<{ etag: string }>;
  /** Deleting a key that does not exist is not an error. */
  delete(key: string): Promise<void>;
}

/** The registry's store for writers (the CLI, retraining): reads and writes. */
export interface ObjectStore extends ObjectReader, ObjectWriter {}

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

/** Reads of one object whose body a reset connection cut off, before the read fails. */
const BODY_ATTEMPTS = 3;

/** A response body ended by the connection (reset or closed mid-way), not by a timeout or a bad answer. */
function cutOff(error: unknown): boolean {
  const code = (error as { code?: unknown })?.code;
  return code === 'ECONNRESET' || code === 'EPIPE' || (error as Error)?.message === 'aborted';
}

/**
 * An S3 client tuned for the registry: keep-alive sockets reused across warm invocations, bounded
 * timeouts, path-style addressing for local endpoints, and checksums only where S3 requires them
 * (S3-compatible servers such as s3rver corrupt streamed uploads otherwise).
 */
export function createS3Client(settings: Omit<S3Settings, 'bucket'>): S3Client {
  // Agent options, not Agent instances: the handler builds the agents from them (keep-alive as
  // asked). Importing node:http as an ES module here would build its ESM facade, whose getters load
  // undici (fetch, WebSocket): a cost to every cold start for nothing (docs/benchmarks.md).
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
      for (let attempt = 1; ; attempt++) {
        const out = await this.client.send(
          new GetObjectCommand({
            Bucket: this.bucket,
            Key: key,
            IfNoneMatch: ifNoneMatch || undefined,
          }),
        );
        try {
          const body = out.Body ? await out.Body.transformToByteArray() : new Uint8Array();
          return { body, etag: out.ETag ?? '' };
        } catch (error) {
          // The SDK's retries end at the headers: a body cut off by a reset connection is asked again.
          if (attempt >= BODY_ATTEMPTS || !cutOff(error)) throw error;
        }
      }
    } catch (error) {
      const status = statusOf(error);
      // s3rver and S3 both answer 304 for a matching If-None-Match; the SDK surfaces it as an error.
      if (status === 304) return 'unchanged';
      if (isMissing(status, (error as SdkError).name)) return undefined;
      if (status === 403 && (await missingBehind403(key, (first) => this.listFirst(first)))) return undefined;
      throw this.fault(`read ${key}`, error);
    }
  }

  /** At most the first object at or under `key`; throws the SDK's error. */
  private async listFirst(key: string): Promise<ListedObject[]> {
    const out = await this.client.send(
      new ListObjectsV2Command({ Bucket: this.bucket, Prefix: key, MaxKeys: 1 }),
    );
    return (out.Contents ?? []).map((item) => ({ key: item.Key ?? '', size: item.Size ?? 0 }));
  }

  async put(key: string, body: Uint8Array | string, options: PutOptions = {}): Promise<{ etag: string }> {
    try {
      const out = await this.client.send(
        new PutObjectCommand({
          Bucket: this.bucket,
          Key: key,
          Body: body,
          ContentType: options.contentType ?? 'application/octet-stream',
          IfNoneMatch: options.ifNoneMatch,
          IfMatch: options.ifMatch || undefined,
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
              lastModified: item.LastModified,
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
    const detail = (error as SdkError)?.name ?? (error as SdkError)?.code ?? 'error';
    return registryFault(this.description, action, error, statusOf(error), detail);
  }
}
