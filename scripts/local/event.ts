/**
 * The payload-2.0 event a function URL sends for an HTTP request: headers lower-cased and joined,
 * text bodies passed as they are and others base64-encoded, a unique request id and the time.
 * Per-request work here is kept to the minimum (see docs/benchmarks.md, the local server).
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { LambdaFunctionURLEvent } from 'aws-lambda';
import type { FunctionUrlEvent } from '../../functions/inference/handler.js';

const TEXT_TYPES = /^(text\/|application\/(json|xml|x-www-form-urlencoded|javascript)|[^;]*\+json)/i;
// Clients send the same content type again and again: remember the last answer.
let lastType = { type: '', text: false };
const isTextType = (type: string) => {
  if (type !== lastType.type) lastType = { type, text: TEXT_TYPES.test(type) };
  return lastType.text;
};

// A crypto UUID and a date formatted anew per request showed in the warm profile (docs/benchmarks.md,
// round 2, "Warm path trimming"): ids are a random per-process prefix and a counter, in UUID form,
// unique all the same; the time string is formatted once per millisecond.
const REQUEST_ID_PREFIX = randomUUID().slice(0, 24);
let requestCount = 0;
export const nextRequestId = () => REQUEST_ID_PREFIX + (++requestCount).toString(16).padStart(12, '0');
const clock = { ms: 0, iso: '' };

/** The payload-2.0 event a function URL would send for this request. */
export function toEvent(req: IncomingMessage, path: string, query: string, body: Buffer): FunctionUrlEvent {
  // Node has already lower-cased the names and joined repeated headers.
  const headers: Record<string, string> = {};
  for (const key in req.headers) {
    const value = req.headers[key];
    if (value !== undefined) headers[key] = Array.isArray(value) ? value.join(',') : value;
  }
  const contentType = headers['content-type'] ?? '';
  // Function URLs pass text bodies as they are and base64-encode everything else.
  const isBase64 = body.length > 0 && !isTextType(contentType);
  const now = Date.now();
  if (now !== clock.ms) {
    clock.ms = now;
    clock.iso = new Date(now).toISOString();
  }
  const event: LambdaFunctionURLEvent = {
    version: '2.0',
    routeKey: '$default',
    rawPath: path,
    rawQueryString: query,
    headers,
    requestContext: {
      accountId: 'anonymous',
      apiId: 'local',
      domainName: headers.host ?? 'localhost',
      domainPrefix: 'local',
      http: {
        method: req.method ?? 'GET',
        path,
        protocol: `HTTP/${req.httpVersion}`,
        sourceIp: req.socket.remoteAddress ?? '127.0.0.1',
        userAgent: headers['user-agent'] ?? '',
      },
      requestId: nextRequestId(),
      routeKey: '$default',
      stage: '$default',
      time: clock.iso,
      timeEpoch: now,
    },
    isBase64Encoded: isBase64,
  };
  // Set after the literal, not spread into it: a spread builds a throwaway object per request.
  if (query) event.queryStringParameters = Object.fromEntries(new URLSearchParams(query));
  if (body.length > 0) event.body = isBase64 ? body.toString('base64') : body.toString('utf8');
  return event;
}
