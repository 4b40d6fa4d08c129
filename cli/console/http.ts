/**
 * The console's HTTP plumbing, apart from what it answers: an answer as data (status, headers,
 * body) and how it is sent, HttpError for a refusal with its status, the reading of a form post
 * (size-capped), and the listener on 127.0.0.1 that `aiaas console` runs the console on.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { AiaasError } from '../../functions/shared/errors.js';
import type { Html } from './html.js';
import { PAGE_HEADERS } from './security.js';

/** Form posts; the try-it editor's request is the largest part. */
export const MAX_FORM_BYTES = 2_000_000;

export class HttpError extends AiaasError {
  override readonly name: string = 'HttpError';
  constructor(
    override readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export interface Answer {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: string | Uint8Array;
}

export const page = (status: number, markup: Html): Answer => ({
  status,
  headers: { ...PAGE_HEADERS, 'content-type': 'text/html; charset=utf-8' },
  body: markup.toString(),
});
export const json = (status: number, body: unknown): Answer => ({
  status,
  headers: { ...PAGE_HEADERS, 'content-type': 'application/json' },
  body: JSON.stringify(body),
});
export const redirect = (location: string): Answer => ({
  status: 303,
  headers: { ...PAGE_HEADERS, location },
  body: '',
});

/** Sends an answer (its headers only, to HEAD). */
export function send(req: IncomingMessage, res: ServerResponse, answer: Answer): void {
  res.writeHead(answer.status, {
    ...answer.headers,
    'content-length': String(Buffer.byteLength(answer.body)),
  });
  res.end(req.method === 'HEAD' ? '' : answer.body);
}

/** Past this much, an oversized form stops being drained and its connection is cut. */
const MAX_DRAIN_BYTES = 8 * MAX_FORM_BYTES;

/** A form post's fields; 415 for another content type, 413 past MAX_FORM_BYTES. */
export function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/x-www-form-urlencoded')
    return Promise.reject(
      new HttpError(415, 'the console takes forms (application/x-www-form-urlencoded) only'),
    );
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_FORM_BYTES) chunks.push(chunk);
      // An oversized form is read to its end unkept, so the browser gets the 413 rather than a
      // reset connection; one far beyond the limit is cut off.
      else if (size > MAX_DRAIN_BYTES) req.destroy();
    });
    req.on('end', () =>
      size > MAX_FORM_BYTES
        ? reject(new HttpError(413, `the form is larger than ${MAX_FORM_BYTES} bytes`))
        : resolve(new URLSearchParams(Buffer.concat(chunks).toString('utf8'))),
    );
    req.on('error', reject);
    req.on('close', () => {
      if (!req.complete) reject(new HttpError(400, 'the form was cut off before its end'));
    });
  });
}

export interface ConsoleServer {
  readonly url: string;
  readonly server: Server;
  close(): Promise<void>;
}

/** Serves `handle` on 127.0.0.1 only (port 0: a free one); other paths are answered 404. */
export async function serveOnLoopback(
  handle: (req: IncomingMessage, res: ServerResponse) => Promise<boolean>,
  port = 0,
): Promise<ConsoleServer> {
  const server = createServer((req, res) => {
    handle(req, res).then(
      (handled) => {
        if (!handled) {
          res.writeHead(404, { ...PAGE_HEADERS, 'content-type': 'text/plain; charset=utf-8' });
          res.end('Not a console page: see /\n');
        }
      },
      (error) => {
        process.stderr.write(`aiaas console: ${(error as Error)?.stack ?? String(error)}\n`);
        if (!res.headersSent) res.writeHead(500, PAGE_HEADERS);
        res.end();
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port: bound } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${bound}`,
    server,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
