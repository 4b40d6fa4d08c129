/**
 * How the console reaches a model's function: the local function-URL server (`npm start`, or
 * `aiaas console` against the local stack), or a deployed function URL, signed with SigV4 when it
 * is an IAM function URL (`*.lambda-url.<region>.on.aws`) with the caller's credentials. Deployed
 * URLs come from `--function-url <model>=<url>` or a `cdk deploy --outputs-file` JSON (each model
 * stack's `FunctionUrl` output). A model without a known URL has no function here: the console
 * says so instead of guessing.
 */
import { readFileSync } from 'node:fs';
import { ConfigurationError } from '../../functions/shared/errors.js';
import { NAME_PATTERN } from '../../functions/shared/registry/layout.js';
import type { VersionFigures } from '../../functions/shared/rollout/figures.js';
import { LocalFigures } from '../../functions/shared/rollout/local.js';
import { regionOfFunctionUrl, signedFetchInit } from '../sign.js';

/** A function's answer as received. */
export interface FunctionAnswer {
  readonly status: number;
  readonly contentType: string;
  readonly version: string | undefined;
  readonly body: string;
}

export interface ModelFunctions {
  /** Where a model's function is, for the page (undefined: unknown). */
  baseUrl(model: string): string | undefined;
  /** A request to the model's function at `path` (e.g. `v1/models/m:predict`); undefined when it has none. */
  call(
    model: string,
    path: string,
    method: 'GET' | 'POST',
    body?: string,
  ): Promise<FunctionAnswer | undefined>;
  /** Per-version figures of a model's rollout (undefined: none to show). */
  figures(model: string, since: Date): Promise<readonly VersionFigures[] | undefined>;
}

const TIMEOUT_MS = 30_000;

async function send(url: URL, init: RequestInit, fetchImpl: typeof fetch = fetch): Promise<FunctionAnswer> {
  const response = await fetchImpl(url, {
    ...init,
    signal: AbortSignal.timeout(TIMEOUT_MS),
    redirect: 'error',
  });
  return {
    status: response.status,
    contentType: response.headers.get('content-type') ?? '',
    version: response.headers.get('x-aiaas-model-version') ?? undefined,
    body: await response.text(),
  };
}

/** The local function-URL server at `localUrl`: `/fn/<model>/` is each model's function URL root. */
export function localFunctions(localUrl: string): ModelFunctions {
  const base = (model: string) => new URL(`/fn/${encodeURIComponent(model)}/`, localUrl).href;
  const figures = new LocalFigures(localUrl);
  return {
    baseUrl: base,
    call: (model, path, method, body) =>
      send(new URL(path, base(model)), {
        method,
        ...(body !== undefined ? { body, headers: { 'content-type': 'application/json' } } : {}),
      }),
    async figures(model, since) {
      try {
        return await figures.figures(model, since, new Date());
      } catch {
        return undefined; // the rollouts' figures are an extra: without them the section is left out
      }
    },
  };
}

/** Deployed function URLs by model; IAM ones are signed with the caller's AWS credentials. */
export function deployedFunctions(
  urls: ReadonlyMap<string, string>,
  fetchImpl: typeof fetch = fetch,
): ModelFunctions {
  const base = (model: string) => urls.get(model);
  return {
    baseUrl: base,
    async call(model, path, method, body) {
      const root = base(model);
      if (!root) return undefined;
      const url = new URL(path, root);
      const payload = body ?? '';
      const init =
        regionOfFunctionUrl(url) !== undefined
          ? await signedFetchInit(url, method, payload)
          : {
              method,
              ...(body !== undefined ? { body, headers: { 'content-type': 'application/json' } } : {}),
            };
      return send(url, init, fetchImpl);
    },
    figures: async () => undefined,
  };
}

/** A function URL as given: http(s), no query; answered with a trailing '/'. */
function functionUrl(value: string, what: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigurationError(`${what}: ${JSON.stringify(value)} is not a URL`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:')
    throw new ConfigurationError(`${what}: ${JSON.stringify(value)} must be an http(s) URL`);
  if (url.search || url.hash)
    throw new ConfigurationError(`${what}: ${JSON.stringify(value)} must not have a query or fragment`);
  return url.href.endsWith('/') ? url.href : `${url.href}/`;
}

/** `--function-url <model>=<url>` values. */
export function parseFunctionUrlFlags(values: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const value of values) {
    const at = value.indexOf('=');
    const model = value.slice(0, Math.max(at, 0));
    if (at < 1 || !NAME_PATTERN.test(model))
      throw new ConfigurationError(
        `--function-url ${JSON.stringify(value)}: expected <model>=<function URL>, the model a registry name`,
      );
    out.set(model, functionUrl(value.slice(at + 1), `--function-url ${model}`));
  }
  return out;
}

/**
 * The `FunctionUrl` outputs of a `cdk deploy --outputs-file` JSON: stack `<app>-Model-<name>` (as
 * infra/aiaas.ts names them, `_` written `-`) gives the URL of each model in `models`.
 */
export function functionUrlsFromOutputs(
  file: string,
  app: string,
  models: readonly string[],
): Map<string, string> {
  let outputs: unknown;
  try {
    outputs = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new ConfigurationError(`--outputs ${file}: cannot read it as JSON (${(error as Error).message})`);
  }
  if (typeof outputs !== 'object' || outputs === null || Array.isArray(outputs))
    throw new ConfigurationError(`--outputs ${file}: expected an object of stacks and their outputs`);
  const stacks = outputs as Record<string, unknown>;
  const out = new Map<string, string>();
  for (const model of models) {
    const stack = stacks[`${app}-Model-${model}`.replace(/_/g, '-')];
    const url = (stack as Record<string, unknown> | undefined)?.FunctionUrl;
    if (typeof url === 'string') out.set(model, functionUrl(url, `--outputs ${file} (${model})`));
  }
  return out;
}
