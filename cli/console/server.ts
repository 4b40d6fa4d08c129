/**
 * The registry console as one request handler: `createConsole(options)` answers the console's
 * paths (`/`, `/models/...`, `/_console/...`) and resolves false for any other, so the local
 * function-URL server can mount it in front of its own routes (`npm start`) and `aiaas console`
 * can serve it alone (startConsoleServer). Reads and moves go through the same ModelRegistry the
 * CLI uses; predictions through the model's function (functions.ts). Every console request must
 * name the loopback listener in Host; every POST must be same-origin and carry the session token
 * (security.ts). Longer than most modules, it reads better whole: the routes and the actions behind them read best as
 * one table beside the closures over the registry, the token and the frame that they share.
 */
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { AiaasError, ValidationError } from '../../functions/shared/errors.js';
import type { ModelSpec } from '../../functions/shared/manifest.js';
import {
  assertAliasName,
  DEFAULT_ALIAS,
  isFileName,
  keys,
  NAME_PATTERN,
  parseVersion,
} from '../../functions/shared/registry/layout.js';
import { servedVersions } from '../../functions/shared/registry/moves.js';
import type { ModelRegistry } from '../../functions/shared/registry/registry.js';
import type { VersionMetadata } from '../../functions/shared/registry/types.js';
import { hostProblem } from '../loopback-host.js';
import { ROOT } from '../paths.js';
import { curves, historyOf } from './curves.js';
import type { ModelFunctions } from './functions.js';
import {
  type Answer,
  type ConsoleServer,
  HttpError,
  json,
  page,
  readForm,
  redirect,
  send,
  serveOnLoopback,
} from './http.js';
import { type ShownVersion, shownVersion } from './metadata.js';
import {
  type AliasView,
  type CurvesView,
  comparePage,
  confirmPage,
  errorPage,
  type Frame,
  type ModelPage,
  modelPage,
  modelsPage,
  paths,
  type TryAnswer,
  versionPage,
} from './pages.js';
import { newSessionToken, originProblem, PAGE_HEADERS, tokenMatches, UNTRUSTED_HEADERS } from './security.js';
import { requestBody, tryForm } from './try-it.js';

export interface ConsoleOptions {
  readonly registry: ModelRegistry;
  readonly functions: ModelFunctions;
  /** Shown in the header: which registry this is. */
  readonly target: string;
  /** A model's manifest entry (alias, description, definition features), when the manifest has it. */
  readonly spec?: (model: string) => ModelSpec | undefined;
  /** Recorded as `who` of the console's moves. @default `<registry actor> (console)` */
  readonly who?: string;
  /** Where console.js and console.css are. @default cli/console/assets */
  readonly assets?: string;
}

export type ConsoleHandler = (req: IncomingMessage, res: ServerResponse) => Promise<boolean>;

/** Versions shown on a model page (the newest). */
const MAX_VERSIONS = 200;
const MAX_REASON = 500;
/** A registry report picture larger than this is not shown. */
const MAX_REPORT_BYTES = 5_000_000;
const FIGURES_WINDOW_MS = 3_600_000;

function reasonOf(form: URLSearchParams): string {
  const reason = (form.get('reason') ?? '').trim();
  if (reason === '') throw new ValidationError('reason: say why (it is recorded in the alias history)');
  if (reason.length > MAX_REASON) throw new ValidationError(`reason: at most ${MAX_REASON} characters`);
  return reason;
}

const ROUTES: readonly [RegExp, string][] = [
  [/^\/$/, 'home'],
  [/^\/_console\/(console\.js|console\.css)$/, 'asset'],
  [/^\/models\/([^/]+)$/, 'model'],
  [/^\/models\/([^/]+)\/versions\/([^/]+)$/, 'version'],
  [/^\/models\/([^/]+)\/versions\/([^/]+)\/report\.svg$/, 'report'],
  [/^\/models\/([^/]+)\/compare$/, 'compare'],
  [/^\/models\/([^/]+)\/openapi\.json$/, 'openapi'],
  [/^\/models\/([^/]+)\/(predict|promote|rollback)$/, 'action'],
];

/** The console's request handler; resolves false for paths that are not the console's. */
export function createConsole(options: ConsoleOptions): ConsoleHandler {
  const { registry, functions } = options;
  const token = newSessionToken();
  const frame: Frame = { target: options.target, token };
  const who = options.who ?? `${registry.actor} (console)`;
  const assetDir = options.assets ?? join(ROOT, 'cli/console/assets');
  const assets = new Map<string, Answer>(
    [
      ['console.js', 'text/javascript; charset=utf-8'],
      ['console.css', 'text/css; charset=utf-8'],
    ].map(([name, type]) => [
      name!,
      {
        status: 200,
        headers: { ...PAGE_HEADERS, 'content-type': type!, 'cache-control': 'no-cache' },
        body: readFileSync(join(assetDir, name!)),
      },
    ]),
  );
  const aliasOf = (model: string) => options.spec?.(model)?.alias ?? DEFAULT_ALIAS;

  function modelName(segment: string): string {
    if (!NAME_PATTERN.test(segment))
      throw new HttpError(404, `No model ${JSON.stringify(segment.slice(0, 80))}`);
    return segment;
  }
  function versionNumber(segment: string | undefined): number {
    try {
      return parseVersion(segment);
    } catch (error) {
      throw new HttpError(404, (error as Error).message);
    }
  }

  async function versionOf(model: string, version: number): Promise<ShownVersion> {
    return shownVersion(await registry.getMetadata(model, version));
  }

  /** Each alias of a model: its pointer, or why it is damaged, and its history. */
  async function aliasViews(model: string): Promise<AliasView[]> {
    const states = await registry.aliasStates(model);
    return Promise.all(
      Object.entries(states).map(async ([alias, state]): Promise<AliasView> => {
        const [read, history, unfinished] = await Promise.all([
          registry.readPointer(model, alias),
          registry.history(model, alias),
          registry.unfinishedMoves(model, alias),
        ]);
        return {
          alias,
          ...(read.state === 'ok' ? { pointer: read.pointer } : {}),
          ...('damaged' in state ? { damaged: state.damaged } : {}),
          history,
          unfinished,
        };
      }),
    );
  }

  async function loadModelPage(model: string, extra: Partial<ModelPage> = {}): Promise<ModelPage> {
    const all = await registry.listVersions(model);
    const numbers = all.slice(-MAX_VERSIONS);
    const [versions, aliases, figures] = await Promise.all([
      Promise.all(numbers.map((v) => versionOf(model, v))),
      aliasViews(model),
      functions.figures(model, new Date(Date.now() - FIGURES_WINDOW_MS)),
    ]);
    if (versions.length === 0 && aliases.length === 0)
      throw new HttpError(404, `Model ${JSON.stringify(model)} does not exist in the registry`);
    const spec = options.spec?.(model);
    const defaultAlias = aliasOf(model);
    const served = aliases.find((a) => a.alias === defaultAlias)?.pointer?.version;
    const formFrom = versions.find((m) => m.version === served) ?? versions.at(-1);
    const functionUrl = functions.baseUrl(model);
    return {
      model,
      ...(spec?.description ? { description: spec.description } : {}),
      versions,
      ...(all.length > numbers.length ? { olderVersions: all.length - numbers.length } : {}),
      aliases,
      defaultAlias,
      ...(figures ? { figures } : {}),
      form: formFrom ? tryForm(formFrom.signature, spec?.definition?.features) : undefined,
      ...(functionUrl ? { functionUrl } : {}),
      ...extra,
    };
  }

  /** A version's curves; drawn on scales shared with the versions in `alongside` (a comparison). */
  function curvesOf(meta: VersionMetadata, alongside: readonly VersionMetadata[] = []): CurvesView {
    const history = historyOf(meta.training);
    const others = alongside.map((m) => historyOf(m.training)).filter((h) => h !== undefined);
    if (history) return { drawn: curves(history, others) };
    if (reportKey(meta)) return { image: paths.report(meta.model, meta.version) };
    return { none: 'No training report (only retrained versions have one).' };
  }

  /** The report picture's key, when the metadata names one inside the version's report folder. */
  function reportKey(meta: VersionMetadata): string | undefined {
    const key = meta.report?.lossCurve;
    const prefix = keys.reports(meta.model, meta.version);
    // One file name as layout.ts allows it (no '..': a URL path would resolve it out of the folder).
    return typeof key === 'string' && key.startsWith(prefix) && isFileName(key.slice(prefix.length))
      ? key
      : undefined;
  }

  async function predict(
    model: string,
    form: URLSearchParams,
  ): Promise<{ page: ModelPage; answer: TryAnswer }> {
    const base = await loadModelPage(model);
    let answer: TryAnswer;
    if (!base.form) answer = { error: `${model} has no version to try` };
    else {
      try {
        const body = requestBody(base.form, form);
        const reply = await functions.call(model, `v1/models/${model}:predict`, 'POST', body);
        answer = reply
          ? {
              status: reply.status,
              ...(reply.version ? { version: reply.version } : {}),
              body: reply.body,
            }
          : { error: `no function URL is known for ${model}` };
      } catch (error) {
        if (!(error instanceof ValidationError)) throw error;
        answer = { error: error.message };
      }
    }
    return { page: { ...base, submitted: form, answer }, answer };
  }

  async function act(
    req: IncomingMessage,
    model: string,
    action: string,
    wantsJson: boolean,
  ): Promise<Answer> {
    const cross = originProblem(req);
    if (cross) throw new HttpError(403, cross);
    const form = await readForm(req);
    if (!tokenMatches(token, form.get('token')))
      throw new HttpError(403, 'missing or wrong session token: reload the console page and try again');
    if (action === 'predict') {
      const { page: view, answer } = await predict(model, form);
      return wantsJson ? json(200, answer) : page(200, modelPage(frame, view));
    }
    const alias = assertAliasName(form.get('alias') ?? aliasOf(model));
    const reason = reasonOf(form);
    const confirmed = form.get('confirm') === 'yes';
    if (action === 'promote') {
      const version = parseVersion(form.get('version'));
      await registry.getMetadata(model, version); // a version that is not there is named now
      if (!confirmed) {
        const current = (await registry.getAlias(model, alias))?.version;
        return page(
          200,
          confirmPage(frame, {
            model,
            action,
            alias,
            version,
            reason,
            move: `${model}@${alias}: ${current === undefined ? 'none' : `v${current}`} → v${version}`,
          }),
        );
      }
      await registry.setAlias(model, alias, version, { who, why: reason });
    } else {
      if (!confirmed) {
        const served = servedVersions(await registry.history(model, alias));
        const [previous, current] = served.slice(-2);
        const move =
          current === undefined || previous === undefined
            ? `${model}@${alias} has no earlier version to roll back to`
            : `${model}@${alias}: v${current} → v${previous} (the version it served before)`;
        return page(200, confirmPage(frame, { model, action: 'rollback', alias, reason, move }));
      }
      await registry.rollback(model, alias, { who, why: reason });
    }
    return redirect(
      `${paths.model(model)}?moved=${encodeURIComponent(alias)}#alias-${encodeURIComponent(alias)}`,
    );
  }

  async function route(
    req: IncomingMessage,
    path: string,
    query: URLSearchParams,
  ): Promise<Answer | undefined> {
    const owned = path === '/' || path.startsWith('/models/') || path.startsWith('/_console/');
    if (!owned) return undefined;
    const problem = hostProblem(req, 'the console');
    if (problem) throw new HttpError(403, problem);
    let name: string | undefined;
    let match: RegExpExecArray | null = null;
    for (const [pattern, routeName] of ROUTES) {
      match = pattern.exec(path);
      if (match) {
        name = routeName;
        break;
      }
    }
    if (!name || !match) return notFound(path);
    const method = req.method ?? 'GET';
    const isPost = name === 'action';
    if (isPost ? method !== 'POST' : method !== 'GET' && method !== 'HEAD')
      return {
        ...json(405, { error: `${method} is not allowed here` }),
        headers: {
          ...PAGE_HEADERS,
          'content-type': 'application/json',
          allow: isPost ? 'POST' : 'GET, HEAD',
        },
      };

    if (name === 'home') return page(200, modelsPage(frame, await summaries()));
    if (name === 'asset') return assets.get(match[1]!)!;
    const model = modelName(match[1]!);
    switch (name) {
      case 'model': {
        const movedAlias = query.get('moved');
        let extra: Partial<ModelPage> = {};
        if (movedAlias) {
          const last = (await registry.history(model, assertAliasName(movedAlias))).at(-1);
          if (last) extra = { moved: last };
        }
        return page(200, modelPage(frame, await loadModelPage(model, extra)));
      }
      case 'version': {
        // The version and the aliases (for its promote form): not every version of the model.
        const [meta, views] = await Promise.all([
          versionOf(model, versionNumber(match[2])),
          aliasViews(model),
        ]);
        const aliases = views.filter((a) => a.pointer?.version === meta.version).map((a) => a.alias);
        const context: ModelPage = {
          model,
          versions: [],
          aliases: views,
          defaultAlias: aliasOf(model),
          form: undefined,
        };
        return page(200, versionPage(frame, { model, meta, aliases, curves: curvesOf(meta), context }));
      }
      case 'report': {
        const meta = await versionOf(model, versionNumber(match[2]));
        const key = reportKey(meta);
        const object = key ? await registry.store.get(key) : undefined;
        if (!object) throw new HttpError(404, `${model} v${meta.version} has no training report`);
        if (object.body.byteLength > MAX_REPORT_BYTES)
          throw new HttpError(404, 'the training report is too large to show');
        return {
          status: 200,
          headers: { ...UNTRUSTED_HEADERS, 'content-type': 'image/svg+xml' },
          body: object.body,
        };
      }
      case 'compare': {
        const picked = ['a', 'b'].map((k) => versionNumber(query.get(k) ?? undefined));
        const metas = await Promise.all(picked.map((v) => versionOf(model, v)));
        const sides = metas.map((meta) => ({ meta, curves: curvesOf(meta, metas) }));
        return page(200, comparePage(frame, model, sides));
      }
      case 'openapi': {
        const reply = await functions.call(model, `v1/models/${model}/openapi.json`, 'GET');
        if (!reply) throw new HttpError(404, `no function URL is known for ${model}`);
        return {
          status: reply.status,
          headers: { ...UNTRUSTED_HEADERS, 'content-type': 'application/json' },
          body: reply.body,
        };
      }
      default:
        return act(req, model, match[2]!, (req.headers.accept ?? '').includes('application/json'));
    }
  }

  function notFound(path: string): Answer {
    return page(404, errorPage(frame, 404, `Nothing at ${path.slice(0, 200)}`));
  }

  async function summaries() {
    const spec = options.spec;
    return Promise.all(
      (await registry.listModels()).map(async (name) => {
        const description = spec?.(name)?.description;
        return { name, aliases: await registry.aliasStates(name), ...(description ? { description } : {}) };
      }),
    );
  }

  return async (req, res) => {
    const raw = req.url ?? '/';
    const q = raw.indexOf('?');
    const path = q < 0 ? raw : raw.slice(0, q);
    const query = new URLSearchParams(q < 0 ? '' : raw.slice(q + 1));
    let answer: Answer | undefined;
    try {
      answer = await route(req, path, query);
      if (!answer) return false;
    } catch (error) {
      const status = error instanceof AiaasError ? error.status : 500;
      if (status >= 500 && !(error instanceof AiaasError))
        process.stderr.write(`aiaas console: ${(error as Error)?.stack ?? String(error)}\n`);
      const message =
        error instanceof AiaasError ? error.message : "Internal error (details on the console's stderr)";
      const back = path.startsWith('/models/') ? path.split('/').slice(0, 3).join('/') : undefined;
      answer = (req.headers.accept ?? '').includes('application/json')
        ? json(status, { error: message })
        : page(
            status,
            errorPage(frame, status, message, back && NAME_PATTERN.test(back.slice(8)) ? back : undefined),
          );
    }
    send(req, res, answer);
    return true;
  };
}

/** `aiaas console`: the console alone, on 127.0.0.1 only. */
export function startConsoleServer(options: ConsoleOptions & { port?: number }): Promise<ConsoleServer> {
  return serveOnLoopback(createConsole(options), options.port);
}
