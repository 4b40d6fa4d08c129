import { createHash } from 'node:crypto';
import { ConflictError } from '../../functions/shared/errors.js';
import type {
  ListedObject,
  ObjectStore,
  PutOptions,
  StoredObject,
} from '../../functions/shared/registry/store.js';

interface Entry {
  readonly body: Uint8Array;
  readonly etag: string;
  readonly contentType: string;
}

const encoder = new TextEncoder();

/**
 * An in-memory ObjectStore for unit tests: strongly consistent like S3, enforcing `ifNoneMatch`
 * and `ifMatch` the way S3 does (ConflictError), and listing keys in S3's lexicographic order.
 * Every operation yields to the event loop first, so concurrent callers interleave as they would
 * against a real server instead of running to completion one by one.
 */
export class MemoryObjectStore implements ObjectStore {
  readonly description = 'memory://test';
  readonly objects = new Map<string, Entry>();
  /** Operation counts, for tests that assert on traffic. */
  readonly calls = { get: 0, put: 0, list: 0, delete: 0 };

  async get(key: string): Promise<StoredObject | undefined> {
    await tick();
    this.calls.get++;
    const entry = this.objects.get(key);
    return entry ? { body: entry.body.slice(), etag: entry.etag } : undefined;
  }

  async getIfChanged(key: string, etag: string): Promise<StoredObject | 'unchanged' | undefined> {
    await tick();
    this.calls.get++;
    const entry = this.objects.get(key);
    if (!entry) return undefined;
    if (entry.etag === etag) return 'unchanged';
    return { body: entry.body.slice(), etag: entry.etag };
  }

  async put(key: string, body: Uint8Array | string, options: PutOptions = {}): Promise<{ etag: string }> {
    await tick();
    this.calls.put++;
    const existing = this.objects.get(key);
    if (options.ifNoneMatch === '*' && existing) throw new ConflictError(`${key} already exists`);
    if (options.ifMatch !== undefined && existing?.etag !== options.ifMatch) {
      throw new ConflictError(`${key} was changed by another writer`);
    }
    const bytes = typeof body === 'string' ? encoder.encode(body) : body.slice();
    const etag = `"${createHash('md5').update(bytes).digest('hex')}-${this.objects.size}-${Date.now()}"`;
    this.objects.set(key, {
      body: bytes,
      etag,
      contentType: options.contentType ?? 'application/octet-stream',
    });
    return { etag };
  }

  async list(prefix: string): Promise<ListedObject[]> {
    await tick();
    this.calls.list++;
    return [...this.objects]
      .filter(([key]) => key.startsWith(prefix))
      .map(([key, entry]) => ({ key, size: entry.body.byteLength }))
      .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  async listPrefixes(prefix: string): Promise<string[]> {
    await tick();
    this.calls.list++;
    const prefixes = new Set<string>();
    for (const key of this.objects.keys()) {
      if (!key.startsWith(prefix)) continue;
      const slash = key.indexOf('/', prefix.length);
      if (slash > prefix.length) prefixes.add(key.slice(0, slash + 1));
    }
    return [...prefixes].sort();
  }

  async delete(key: string): Promise<void> {
    await tick();
    this.calls.delete++;
    this.objects.delete(key);
  }

  /** Test helper: the object's bytes as text, or undefined. */
  text(key: string): string | undefined {
    const entry = this.objects.get(key);
    return entry ? new TextDecoder().decode(entry.body) : undefined;
  }

  /** Test helper: the keys under a prefix, sorted. */
  keys(prefix = ''): string[] {
    return [...this.objects.keys()].filter((k) => k.startsWith(prefix)).sort();
  }
}

function tick(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
