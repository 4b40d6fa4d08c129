/**
 * Bytes in and out of the local function-URL server: a request body read up to the function URL's
 * size limit (past it, the caller answers 413 and the rest is dropped), and a function's result
 * written as an HTTP answer (one that cannot be written becomes a 500).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { MAX_BODY_BYTES } from '../../functions/inference/api.js';
import type { FunctionUrlResult } from '../../functions/inference/handler.js';

/**
 * Passes the request body, or 'too-large' past the function URL limit, to `done`. Events, not
 * `for await`: the async iterator showed in the warm profile (docs/benchmarks.md, round 2).
 * The listeners are inline arrows on purpose: tsx names every arrow bound to a `const` with a
 * defineProperty call, per request.
 */
export function readBody(
  req: IncomingMessage,
  done: (body: Buffer | 'too-large') => void,
  failed: (error: Error) => void,
): void {
  let first: Buffer | undefined;
  let more: Buffer[] | undefined;
  let size = 0;
  req.on('data', (chunk: Buffer) => {
    if (size > MAX_BODY_BYTES) return;
    size += chunk.length;
    if (size > MAX_BODY_BYTES) {
      // Drained, not kept: the client is answered now and the rest of the body is dropped.
      first = more = undefined;
      done('too-large');
    } else if (first === undefined) {
      first = chunk;
    } else {
      more ??= [first];
      more.push(chunk);
    }
  });
  // 'end' and 'error' fire at most once: on() spares once()'s wrapper.
  req.on('end', () => {
    if (size <= MAX_BODY_BYTES) done(more ? Buffer.concat(more) : (first ?? EMPTY));
  });
  req.on('error', failed);
}
const EMPTY = Buffer.alloc(0);

export /** Writes one answer; one that cannot be written (a malformed header) becomes a 500. */
function write(res: ServerResponse, result: FunctionUrlResult): void {
  if (res.headersSent) return;
  const body = result.body ?? '';
  const headers = result.headers ?? {};
  headers['content-length'] = String(Buffer.byteLength(body));
  try {
    res.writeHead(result.statusCode, headers);
  } catch (error) {
    const message = JSON.stringify({ error: `Local server error: ${String(error)}` });
    res.writeHead(500, {
      'content-type': 'application/json',
      'content-length': String(Buffer.byteLength(message)),
    });
    res.end(message);
    return;
  }
  res.end(body);
}
