/**
 * A lossy HTTP proxy for tests, on loopback in front of an S3-compatible server: it loses a seeded
 * share of the traffic, either before forwarding a request (the request never happens) or after
 * the server answered (the request happened, its answer is lost: the socket is destroyed). It
 * records every alias-pointer PUT the server accepted, so a test can tell which moves happened.
 */
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface LossyProxy {
  readonly endpoint: string;
  /** Share of requests lost (half before, half after reaching the server); 0 turns loss off. */
  lossRate: number;
  /** Bodies of the alias-pointer PUTs the server accepted, in order. */
  readonly pointerWrites: string[];
  /** Every PUT forwarded: its key and the conditional headers it carried. */
  readonly puts: { key: string; ifNoneMatch?: string; ifMatch?: string }[];
  readonly counts: { requests: number; lostBefore: number; lostAfter: number };
  close(): Promise<void>;
}

/** mulberry32: a small seeded PRNG, so a failing run can be replayed. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export async function startLossyProxy(target: string, options: { seed: number; lossRate: number }) {
  const upstream = new URL(target);
  const next = random(options.seed);
  const proxy: Omit<LossyProxy, 'endpoint' | 'close'> = {
    lossRate: options.lossRate,
    pointerWrites: [],
    puts: [],
    counts: { requests: 0, lostBefore: 0, lostAfter: 0 },
  };
  const server: Server = createServer((req, res) => {
    proxy.counts.requests++;
    const roll = next();
    const loseBefore = roll < proxy.lossRate / 2;
    const loseAfter = !loseBefore && roll < proxy.lossRate;
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      if (loseBefore) {
        proxy.counts.lostBefore++;
        req.socket.destroy();
        return;
      }
      const body = Buffer.concat(chunks);
      if (req.method === 'PUT') {
        const key = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname).replace(
          /^\/[^/]+\//,
          '',
        );
        const { 'if-none-match': ifNoneMatch, 'if-match': ifMatch } = req.headers;
        proxy.puts.push({ key, ...(ifNoneMatch ? { ifNoneMatch } : {}), ...(ifMatch ? { ifMatch } : {}) });
      }
      const forward = request(
        {
          hostname: upstream.hostname,
          port: upstream.port,
          method: req.method,
          path: req.url,
          headers: { ...req.headers, 'content-length': String(body.length) },
        },
        (answer) => {
          const parts: Buffer[] = [];
          answer.on('data', (chunk: Buffer) => parts.push(chunk));
          answer.on('end', () => {
            const status = answer.statusCode ?? 502;
            const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
            if (req.method === 'PUT' && status < 300 && /\/aliases\/[^/]+\.json$/.test(path)) {
              proxy.pointerWrites.push(body.toString('utf8'));
            }
            if (loseAfter) {
              proxy.counts.lostAfter++;
              req.socket.destroy();
              return;
            }
            res.writeHead(status, answer.headers);
            res.end(Buffer.concat(parts));
          });
        },
      );
      forward.on('error', () => req.socket.destroy());
      forward.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return Object.assign(proxy, {
    endpoint: `http://127.0.0.1:${port}`,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  }) as LossyProxy;
}
