/**
 * The local function-URL server, for `npm start`, the tests and the benchmarks: turns HTTP requests
 * into the payload-2.0 events a real function URL sends and invokes the built inference bundle, one
 * handler instance per model (as one Lambda function per model would). Only models the registry
 * holds get a function; its own errors are generic 500s and registry outages 503s, as a function's.
 * Every request must name this loopback listener in its Host header (cli/loopback-host.ts, the
 * console's guard too): a page of another site whose name resolves to 127.0.0.1 gets a 403.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { hostProblem } from '../../cli/loopback-host.js';
import { DIST } from '../../cli/paths.js';
import { MAX_BODY_BYTES } from '../../functions/inference/api.js';
import type { InferenceConfig } from '../../functions/inference/config.js';
import type { FunctionUrlResult, Handler, HandlerDeps } from '../../functions/inference/handler.js';
import { VersionCounters } from '../../functions/inference/version-counters.js';
import { RETRY_AFTER_SECONDS, RegistryUnavailableError } from '../../functions/shared/errors.js';
import { keys, NAME_PATTERN } from '../../functions/shared/registry/layout.js';
import type { ModelRegistry } from '../../functions/shared/registry/registry.js';
import { nextRequestId, toEvent } from './event.js';
import { readBody, write } from './http-io.js';
import { LOCAL_CREDENTIALS } from './s3.js';

export interface FunctionUrlServerOptions {
  readonly port?: number;
  readonly endpoint: string;
  readonly bucket: string;
  /** Seconds between alias checks in each function. @default 2 */
  readonly aliasCheckSeconds?: number;
  /** The built inference bundle. @default dist/functions/inference/index.mjs */
  readonly bundle?: string;
  /** Lists the models for GET /v1/models. */
  readonly registry: ModelRegistry;
  readonly env?: Partial<Pick<InferenceConfig, 'limits'>>;
  /** The alias each model's function serves, from the manifest. @default live */
  readonly aliases?: Readonly<Record<string, string>>;
  /** Fast path setting per model (the manifest's `fastPath`); models not listed use `auto`. */
  readonly fastPath?: Readonly<Record<string, 'auto' | 'off'>>;
  /**
   * Memory per model (the manifest's `memoryMiB`, as Lambda gives it): a canary or shadow that
   * would not fit beside the live version is not loaded. Models not listed: no limit.
   */
  readonly memoryMiB?: Readonly<Record<string, number | undefined>>;
}

export interface FunctionUrlServer {
  readonly url: string;
  readonly server: Server;
  /** The models that have a function (a handler instance) so far: only models the registry holds. */
  functions(): string[];
  close(): Promise<void>;
}

const MODEL_IN_PATH = /^\/v1\/models\/([^/:?]+)/;
/** The local stack's per-version figures (figuresAnswer). */
export const FIGURES_PATH = '/_aiaas/figures/';
const FUNCTION_PREFIX = /^\/fn\/([^/]+)(\/.*)?$/;

/**
 * Serves every model of the registry the way its function URL would: `/v1/models/<model>...` goes
 * to that model's function, `/fn/<model>/<path>` gives the function's own URL root (so `POST /`
 * works too), `GET /v1/models` lists the models, `GET /_aiaas/figures/<model>` gives its
 * per-version figures (figuresAnswer).
 */
export async function startFunctionUrlServer(options: FunctionUrlServerOptions): Promise<FunctionUrlServer> {
  // Lambda gives the function its credentials in the environment; so does the local stack.
  process.env.AWS_ACCESS_KEY_ID = LOCAL_CREDENTIALS.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = LOCAL_CREDENTIALS.secretAccessKey;
  delete process.env.AWS_SESSION_TOKEN;
  process.env.AWS_REGION ??= 'us-east-1';
  process.env.POWERTOOLS_METRICS_DISABLED ??= 'true';
  const bundle = options.bundle ?? join(DIST, 'functions/inference/index.mjs');
  const mod = (await import(pathToFileURL(bundle).href)) as {
    createHandler: (config: InferenceConfig, deps?: Pick<HandlerDeps, 'counters'>) => Handler;
  };
  const handlers = new Map<string, Handler>();
  // Each function's per-version counters: what CloudWatch holds when deployed (FIGURES_PATH).
  const counters = new Map<string, VersionCounters>();
  const handlerFor = (model: string) => {
    let handler = handlers.get(model);
    if (!handler) {
      const counted = new VersionCounters();
      counters.set(model, counted);
      handler = mod.createHandler(
        {
          bucket: options.bucket,
          model,
          alias: options.aliases?.[model] ?? 'live',
          fastPath: options.fastPath?.[model] ?? 'auto',
          endpoint: options.endpoint,
          aliasCheckSeconds: options.aliasCheckSeconds ?? 2,
          ...(options.memoryMiB?.[model] !== undefined ? { memoryMiB: options.memoryMiB[model] } : {}),
          limits: {
            maxInstances: 10_000,
            maxElements: 1_000_000,
            maxBodyBytes: MAX_BODY_BYTES,
            ...options.env?.limits,
          },
        },
        { counters: counted },
      );
      handlers.set(model, handler);
    }
    return handler;
  };
  // Whether a model has a function is decided by one listing of its own prefix (a deployed stack
  // has a function per manifest model; here, per model in the registry). Only a model found gets a
  // handler, kept for good as a deployed function is; an unknown name is asked about again each
  // time (it may be published later), concurrent asks for one name sharing one listing. A listing
  // that fails decides nothing: that request gets a 503 and no handler is made.
  const asking = new Map<string, Promise<boolean>>();
  const modelExists = (model: string): Promise<boolean> => {
    let pending = asking.get(model);
    if (!pending) {
      pending = options.registry.store
        .list(keys.model(model))
        .then((objects) => objects.length > 0)
        .finally(() => asking.delete(model));
      asking.set(model, pending);
    }
    return pending;
  };

  // Answers go out together, at the end of the event-loop turn that produced them. Each write to
  // a socket whose reader sleeps wakes that reader; one by one, under load, every answer paid a
  // wake-up of the client, which on a busy 2-vCPU VM cost more than serving the request (profiled:
  // docs/benchmarks.md, round 6). Together, the client is woken once per turn.
  let ready: [ServerResponse, FunctionUrlResult][] = [];
  const flush = () => {
    const batch = ready;
    ready = [];
    for (const [res, result] of batch) write(res, result);
  };
  const send = (res: ServerResponse, result: FunctionUrlResult) => {
    if (ready.push([res, result]) === 1) setImmediate(flush);
  };
  // Like a function's, the local server's own 5xx bodies are generic; the details go to stderr.
  function fail(res: ServerResponse, error: unknown) {
    const requestId = nextRequestId();
    complain(`local server error (request ${requestId}): ${(error as Error)?.stack ?? String(error)}`);
    send(res, jsonResult(500, { error: `Local server error (request ${requestId})` }));
  }
  function registryDown(res: ServerResponse, what: string, error: unknown) {
    const requestId = nextRequestId();
    complain(`${what} (request ${requestId}): ${(error as Error)?.message ?? String(error)}`);
    send(res, {
      statusCode: 503,
      headers: { 'content-type': 'application/json', 'retry-after': String(RETRY_AFTER_SECONDS) },
      body: JSON.stringify({
        error: `The model registry is unavailable; retry later (request ${requestId})`,
      }),
    });
  }
  function missing(res: ServerResponse, name: string) {
    send(
      res,
      jsonResult(404, { error: `Model ${JSON.stringify(name.slice(0, 80))} does not exist in the registry` }),
    );
  }
  const server = createServer((req, res) => {
    try {
      serve(req, res);
    } catch (error) {
      fail(res, error);
    }
  });
  server.keepAliveTimeout = 65_000;
  // The registry console (cli/console) answers first on paths outside /v1/, /fn/ and /_aiaas/;
  // made at its first request, when this server's own URL is known.
  let registryConsole: Promise<(req: IncomingMessage, res: ServerResponse) => Promise<boolean>> | undefined;
  const consoleFor = (req: IncomingMessage) =>
    (registryConsole ??= import('../../cli/console/mount.js').then((m) =>
      m.localConsole(options.registry, `http://127.0.0.1:${req.socket.localPort}`),
    ));

  // Callbacks rather than async functions on the request path: each promise and microtask hop
  // showed up in the warm profile (docs/benchmarks.md, round 2).
  function serve(req: IncomingMessage, res: ServerResponse): void {
    // Before any route, the console's included: DNS rebinding would let a page of another site
    // call a model, read the registry or move an alias.
    const foreignHost = hostProblem(req, 'The local function-URL server');
    if (foreignHost) {
      send(res, jsonResult(403, { error: foreignHost }));
      return;
    }
    // The raw path and query, as a function URL passes them (no URL normalisation).
    const raw = req.url ?? '/';
    if (!raw.startsWith('/v1/') && !raw.startsWith('/fn/') && !raw.startsWith('/_aiaas/')) {
      consoleFor(req)
        .then((handle) => handle(req, res))
        .then(
          (handled) =>
            handled ||
            send(
              res,
              jsonResult(404, {
                error: `No route for ${raw.split('?')[0]}: use /v1/models/<model>:predict, /v1/models/<model>, /v1/models, /fn/<model>/ or the console at /`,
              }),
            ),
          (error) => fail(res, error),
        );
      return;
    }
    const q = raw.indexOf('?');
    let path = q < 0 ? raw : raw.slice(0, q);
    const query = q < 0 ? '' : raw.slice(q + 1);
    let model: string | undefined;
    const fn = path.startsWith('/fn/') ? FUNCTION_PREFIX.exec(path) : null;
    if (path.startsWith(FIGURES_PATH)) {
      send(res, figuresAnswer(req, path.slice(FIGURES_PATH.length), query, counters));
      return;
    }
    if (fn) {
      model = safeDecode(fn[1] ?? '');
      path = fn[2] ?? '/';
    } else if (path === '/v1/models' || path === '/v1/models/') {
      listModels(options.registry).then(
        (result) => send(res, result),
        (error) =>
          error instanceof RegistryUnavailableError
            ? registryDown(res, 'cannot list the models', error)
            : fail(res, error),
      );
      return;
    } else {
      const match = MODEL_IN_PATH.exec(path);
      model = match ? safeDecode(match[1] ?? '') : undefined;
    }
    if (!model) {
      send(
        res,
        jsonResult(404, {
          error: `No route for ${path}: use /v1/models/<model>:predict, /v1/models/<model>, /v1/models or /fn/<model>/`,
        }),
      );
      return;
    }
    if (handlers.has(model)) {
      receive(req, res, model, path, query);
      return;
    }
    if (!NAME_PATTERN.test(model)) {
      missing(res, model);
      return;
    }
    const name = model;
    modelExists(name).then(
      (found) => (found ? receive(req, res, name, path, query) : missing(res, name)),
      (error) =>
        error instanceof RegistryUnavailableError
          ? registryDown(res, `cannot tell whether model ${JSON.stringify(name)} exists`, error)
          : fail(res, error),
    );
  }

  function receive(req: IncomingMessage, res: ServerResponse, model: string, path: string, query: string) {
    readBody(
      req,
      (body) => {
        if (body === 'too-large') {
          // What a real function URL answers before the function runs.
          send(
            res,
            jsonResult(413, {
              error: `Request body is larger than ${MAX_BODY_BYTES} bytes, the function URL limit`,
            }),
          );
          return;
        }
        const event = toEvent(req, path, query, body);
        handlerFor(model)(event, { awsRequestId: event.requestContext?.requestId ?? '' }).then(
          (result) => send(res, result),
          (error) => fail(res, error),
        );
      },
      (error) => fail(res, error),
    );
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    server,
    functions: () => [...handlers.keys()],
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * `GET /_aiaas/figures/<model>?since=<ISO>&until=<ISO>` (until defaults to now): the model's
 * per-version figures over [since, until), `{ model, figures: VersionFigures[] }`, from its
 * function's counters (none yet: an empty list). The local stack's FiguresSource reads it. Answered
 * to loopback callers only.
 */
function figuresAnswer(
  req: IncomingMessage,
  rawModel: string,
  query: string,
  counters: ReadonlyMap<string, VersionCounters>,
): FunctionUrlResult {
  if (!isLoopback(req.socket.remoteAddress)) {
    return jsonResult(403, { error: 'The figures are served to loopback callers only' });
  }
  if (req.method !== 'GET') return jsonResult(405, { error: `Use GET for ${FIGURES_PATH}<model>` });
  const model = safeDecode(rawModel);
  if (!NAME_PATTERN.test(model)) {
    return jsonResult(404, {
      error: `No model ${JSON.stringify(model.slice(0, 80))}: use ${FIGURES_PATH}<model>`,
    });
  }
  const params = new URLSearchParams(query);
  const since = readDate(params, 'since');
  const until = params.has('until') ? readDate(params, 'until') : new Date();
  if (typeof since === 'string') return jsonResult(400, { error: since });
  if (typeof until === 'string') return jsonResult(400, { error: until });
  if (until.getTime() < since.getTime()) {
    return jsonResult(400, { error: 'Query parameter "until" is before "since"' });
  }
  return jsonResult(200, { model, figures: counters.get(model)?.figures(since, until) ?? [] });
}

/** A query parameter as a date (ISO 8601), or why it is not one. */
function readDate(params: URLSearchParams, name: string): Date | string {
  const raw = params.get(name);
  if (raw === null || raw === '') return `Query parameter "${name}" is required (an ISO 8601 time)`;
  const date = new Date(raw);
  return Number.isNaN(date.getTime())
    ? `Query parameter "${name}" is not an ISO 8601 time: ${JSON.stringify(raw.slice(0, 80))}`
    : date;
}

function isLoopback(address: string | undefined): boolean {
  return address === '127.0.0.1' || address === '::1' || address === '::ffff:127.0.0.1';
}

/** The models and their aliases; a damaged alias object is listed under `damaged` with the reason. */
async function listModels(registry: ModelRegistry): Promise<FunctionUrlResult> {
  const names = await registry.listModels();
  const models = await Promise.all(
    names.map(async (name) => {
      const aliases: Record<string, string> = {};
      const damaged: Record<string, string> = {};
      for (const [alias, state] of Object.entries(await registry.aliasStates(name))) {
        if ('version' in state) aliases[alias] = String(state.version);
        else damaged[alias] = state.damaged;
      }
      return { name, aliases, ...(Object.keys(damaged).length > 0 ? { damaged } : {}) };
    }),
  );
  return jsonResult(200, { models });
}

// Under load the same fault repeats per request: one line per few seconds says it, with a count.
let complained = { at: 0, skipped: 0 };
function complain(line: string): void {
  const now = Date.now();
  if (now - complained.at < 5_000) {
    complained.skipped++;
    return;
  }
  const skipped = complained.skipped ? ` (and ${complained.skipped} more since the last such line)` : '';
  complained = { at: now, skipped: 0 };
  process.stderr.write(`aiaas local server: ${line}${skipped}\n`);
}

/** A path segment decoded, or '' when its percent-encoding is malformed (then: 404, not 500). */
function safeDecode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return '';
  }
}

function jsonResult(statusCode: number, body: unknown): FunctionUrlResult {
  return { statusCode, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) };
}
