/**
 * The registry store's GET when the connection is reset after the headers, mid-body: the SDK's
 * retries end at the headers, so the store asks again itself (up to three reads), and a body cut
 * off every time is a RegistryUnavailableError naming the key. A loopback server plays S3.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { RegistryUnavailableError } from '../../functions/shared/errors.js';
import { createS3Client, S3ObjectStore } from '../../functions/shared/registry/store.js';

const BODY = '{"version":3,"etag":"x"}';
let server: Server;
let endpoint: string;
let requests = 0;
/** Responses cut off after part of the body, before whole ones are sent. */
let cut = 0;

beforeAll(async () => {
  server = createServer((req, res) => {
    requests++;
    req.resume();
    res.writeHead(200, { 'content-length': Buffer.byteLength(BODY), etag: '"e1"' });
    if (cut > 0) {
      cut--;
      res.write(BODY.slice(0, 5));
      setTimeout(() => res.socket?.destroy(), 20);
      return;
    }
    res.end(BODY);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});
beforeEach(() => {
  requests = 0;
  cut = 0;
});

const store = () =>
  new S3ObjectStore(
    createS3Client({
      endpoint,
      credentials: { accessKeyId: 'a', secretAccessKey: 'b' },
      region: 'us-east-1',
    }),
    'bucket',
    endpoint,
  );

describe('S3ObjectStore.get: a body cut off by a reset connection', () => {
  it('is read again, and the whole object comes back', async () => {
    cut = 2;
    const object = await store().get('models/m/aliases/live.json');
    expect(new TextDecoder().decode(object?.body)).toBe(BODY);
    expect(object?.etag).toBe('"e1"');
    expect(requests).toBe(3);
  });

  it('cut off every time, is a RegistryUnavailableError naming the key after three reads', async () => {
    cut = 10;
    const error = await store()
      .get('models/m/aliases/live.json')
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RegistryUnavailableError);
    expect((error as Error).message).toContain('read models/m/aliases/live.json');
    expect(requests).toBe(3);
  });
});
