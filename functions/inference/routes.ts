/**
 * TF Serving's REST paths, for the one model a function serves, and aiaas's OpenAPI document beside
 * them (`/openapi.json`, wherever `/metadata` may be): method and path to a `Route`, or a
 * NotFoundError / MethodNotAllowedError naming what is wrong. Pure.
 */
import { MethodNotAllowedError, NotFoundError } from '../shared/errors.js';
import { NAME_PATTERN } from '../shared/registry/layout.js';
import { truncate } from './error-text.js';

export type Route =
  | { readonly kind: 'predict'; readonly model: string; readonly version?: number; readonly label?: string }
  | { readonly kind: 'status'; readonly model: string; readonly version?: number; readonly label?: string }
  | { readonly kind: 'metadata'; readonly model: string; readonly version?: number; readonly label?: string }
  | { readonly kind: 'openapi'; readonly model: string; readonly version?: number; readonly label?: string };

const MODEL_PATH =
  /^\/v1\/models\/([^/:]+)(?:\/versions\/([^/:]+)|\/labels\/([^/:]+))?(?:\/(metadata|openapi\.json)|:([A-Za-z]+))?\/?$/;

/**
 * Maps method and path to a route of this function's model. `POST /` is predict and `GET /` the
 * status of the function's own model.
 */
export function route(method: string, rawPath: string, servedModel: string): Route {
  // Trailing slashes trimmed with a loop: /\/+$/ is quadratic on a long run of '/' not at the end.
  let end = rawPath.length;
  if (end > 1) while (end > 0 && rawPath.charCodeAt(end - 1) === 47) end--;
  const path = rawPath.slice(0, end);
  if (path === '' || path === '/') {
    if (method === 'POST') return { kind: 'predict', model: servedModel };
    if (method === 'GET' || method === 'HEAD') return { kind: 'status', model: servedModel };
    throw new MethodNotAllowedError(
      `Method ${method} is not allowed on /; use POST to predict or GET for status`,
      ['GET', 'POST'],
    );
  }
  const match = MODEL_PATH.exec(path);
  if (!match) {
    throw new NotFoundError(
      `No route for ${truncate(path)}: use POST /v1/models/<model>:predict, GET /v1/models/<model>, GET /v1/models/<model>/metadata or GET /v1/models/<model>/openapi.json`,
    );
  }
  const [, rawName, rawVersion, rawLabel, document, verb] = match;
  const model = decodeSegment(rawName ?? '');
  // The served model's name is valid by construction; anything else is a 404 whatever its form.
  if (model !== servedModel) {
    throw new NotFoundError(
      `Model ${JSON.stringify(truncate(model))} is not served here (this function serves "${servedModel}")`,
    );
  }
  let version: number | undefined;
  if (rawVersion !== undefined) {
    // TF Serving reads the version as a decimal integer (http_rest_api_util.cc: `\d+`, SimpleAtoi),
    // so `/versions/01` is version 1.
    const digits = rawVersion.replace(/^0+(?=[0-9])/, '');
    if (!/^[1-9][0-9]{0,9}$/.test(digits)) {
      throw new NotFoundError(
        `Version ${JSON.stringify(truncate(rawVersion))} of "${model}" does not exist: versions are positive integers`,
      );
    }
    version = Number(digits);
  }
  const label = rawLabel === undefined ? undefined : decodeSegment(rawLabel);
  if (label !== undefined && !NAME_PATTERN.test(label)) {
    throw new NotFoundError(`Label ${JSON.stringify(truncate(label))} of "${model}" does not exist`);
  }
  const target = { model, ...(version ? { version } : {}), ...(label ? { label } : {}) };
  if (verb !== undefined) {
    if (verb !== 'predict') {
      throw new NotFoundError(`:${truncate(verb)} is not supported; aiaas serves :predict`);
    }
    if (method !== 'POST') throw new MethodNotAllowedError(`Use POST for :predict, not ${method}`, ['POST']);
    return { kind: 'predict', ...target };
  }
  const kind = document === 'metadata' ? 'metadata' : document === 'openapi.json' ? 'openapi' : 'status';
  if (method !== 'GET' && method !== 'HEAD') {
    const what = { metadata: 'metadata', openapi: 'the OpenAPI document', status: 'model status' }[kind];
    throw new MethodNotAllowedError(`Use GET for ${what}, not ${method}`, ['GET']);
  }
  return { kind, ...target };
}

function decodeSegment(segment: string): string {
  if (!segment.includes('%')) return segment;
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

/**
 * `route` for `servedModel`, remembering the last (method, path): a warm function sees the same
 * pair again and again, and routing costs more than the comparison (docs/benchmarks.md, "Round 3").
 */
export function lastRouteMemo(servedModel: string): (method: string, path: string) => Route {
  let last: { readonly method: string; readonly path: string; readonly target: Route } | undefined;
  return (method, path) => {
    if (last?.path === path && last.method === method) return last.target;
    const target = route(method, path, servedModel);
    last = { method, path, target };
    return target;
  };
}
