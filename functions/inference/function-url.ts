/**
 * HTTP as a Lambda function URL speaks it (payload format 2.0): what a request asks (method, path,
 * body) and how an answer is sent (status, headers, body). A model's answer names its version in
 * `x-aiaas-model-version` (an error too, once a version was chosen for the request); an error is `{"error": "..."}` with the status errors.ts gives it, and
 * every 5xx is logged with the request id and its details; a HEAD answer has no body. Nothing is
 * cached: every answer is `no-store`. (Log fields left undefined are not written.)
 */
import { AiaasError, errorAnswer } from '../shared/errors.js';
import { sourceMappedStack } from '../shared/stack.js';
import { jsonText } from './answers.js';
import type { Log } from './log.js';
import { decodeBody, type Limits } from './predict-request.js';
import type { Route } from './routes.js';
import type { ServiceResult } from './service.js';

/** The subset of a function URL event (payload 2.0) that we read. */
export interface FunctionUrlEvent {
  readonly rawPath?: string;
  readonly rawQueryString?: string;
  readonly headers?: Record<string, string | undefined>;
  readonly body?: string;
  readonly isBase64Encoded?: boolean;
  readonly requestContext?: { readonly http?: { readonly method?: string }; readonly requestId?: string };
}

export interface FunctionUrlResult {
  statusCode: number;
  headers: Record<string, string>;
  body: string;
}

/** The request's method, upper-cased; GET when the event has none. */
export function methodOf(event: FunctionUrlEvent): string {
  return (event.requestContext?.http?.method ?? 'GET').toUpperCase();
}

/** The request's path; `/` when the event has none. */
export function pathOf(event: FunctionUrlEvent): string {
  return event.rawPath ?? '/';
}

/** The body a route reads, decoded and within the size limit: only predict reads one. */
export function bodyOf(event: FunctionUrlEvent, target: Route, limits: Limits): string {
  return target.kind === 'predict' ? decodeBody(event.body, event.isBase64Encoded, limits) : '';
}

/** A model's answer: every one names the version that gave it. */
export function answered(result: ServiceResult): FunctionUrlResult {
  if (result.version === undefined) return json(result.status, result.body);
  // One literal, so every answer has the same headers shape (monomorphic for the caller).
  return {
    statusCode: result.status,
    headers: {
      'content-type': 'application/json',
      'cache-control': 'no-store',
      'x-aiaas-model-version': String(result.version),
    },
    body: jsonText(result.body),
  };
}

/**
 * Typed errors become their status (errorAnswer): a 4xx names the problem, a 5xx gives a generic
 * reason and the request id. Every 5xx is logged with that request id and its details (the
 * registry's, the cause), so a caller's id leads to what went wrong. `version`: the version chosen
 * for the request before it failed, named in `x-aiaas-model-version` as on any answer.
 */
export function errorResponse(
  error: unknown,
  log: Log,
  requestId?: string,
  version?: number,
): FunctionUrlResult {
  const answer = errorAnswer(error, requestId);
  if (answer.status >= 500) {
    if (error instanceof AiaasError) {
      log.error('request failed', {
        requestId: requestId || undefined,
        status: answer.status,
        error: error.name,
        reason: error.message,
        cause: error.cause ? describeError(error.cause) : undefined,
        version,
      });
    } else {
      log.error('unexpected error', {
        requestId: requestId || undefined,
        error: error instanceof Error && error.stack ? sourceMappedStack(error.stack) : String(error),
        version,
      });
    }
  }
  const response = json(answer.status, { error: answer.message }, answer.headers);
  if (version !== undefined) response.headers['x-aiaas-model-version'] = String(version);
  return response;
}

/** The answer as sent for `method`: a HEAD answer has the headers of a GET and no body. */
export function forMethod(method: string, response: FunctionUrlResult): FunctionUrlResult {
  if (method === 'HEAD') response.body = '';
  return response;
}

function json(statusCode: number, body: unknown, extra?: Record<string, string>): FunctionUrlResult {
  const headers: Record<string, string> = { 'content-type': 'application/json', 'cache-control': 'no-store' };
  if (extra) Object.assign(headers, extra);
  return { statusCode, headers, body: JSON.stringify(body) };
}

/** An error's name, code and message, then its causes' (a few levels): for the log only. */
function describeError(error: unknown, depth = 0): string {
  const e = error as { name?: string; code?: string; message?: string; cause?: unknown };
  const own = [e?.name, e?.code, e?.message].filter(Boolean).join(': ') || String(error);
  return e?.cause && depth < 3 ? `${own}; cause ${describeError(e.cause, depth + 1)}` : own;
}
