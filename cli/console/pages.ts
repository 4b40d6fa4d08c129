/**
 * The console's pages as plain functions of their data, built only with `html` (html.ts), so every
 * registry string — model names, reasons, who, metadata, training details — is escaped. No page
 * needs JavaScript to be read or to act: forms post to the console, which answers with a page (a
 * confirmation page before a promote or rollback); console.js only makes them smoother.
 * The pages read better whole, in one module longer than most, because they share one layout and the same
 * small views (values, aliases, events, forms); split, each part would import all the others.
 */
import type { AliasState } from '../../functions/shared/registry/aliases.js';
import type { AliasEvent, AliasPointer, VersionMetadata } from '../../functions/shared/registry/types.js';
import type { VersionFigures } from '../../functions/shared/rollout/figures.js';
import { type Html, html } from './html.js';
import type { ShownVersion } from './metadata.js';
import type { TryForm } from './try-it.js';

export const ASSET_SCRIPT = '/_console/console.js';
export const ASSET_STYLE = '/_console/console.css';

export const paths = {
  home: () => '/',
  model: (m: string) => `/models/${encodeURIComponent(m)}`,
  version: (m: string, v: number) => `/models/${encodeURIComponent(m)}/versions/${v}`,
  report: (m: string, v: number) => `/models/${encodeURIComponent(m)}/versions/${v}/report.svg`,
  compare: (m: string) => `/models/${encodeURIComponent(m)}/compare`,
  predict: (m: string) => `/models/${encodeURIComponent(m)}/predict`,
  promote: (m: string) => `/models/${encodeURIComponent(m)}/promote`,
  rollback: (m: string) => `/models/${encodeURIComponent(m)}/rollback`,
  openapi: (m: string) => `/models/${encodeURIComponent(m)}/openapi.json`,
};

export interface Frame {
  /** What the console shows (the registry's description). */
  readonly target: string;
  readonly token: string;
}

function layout(frame: Frame, title: string, body: Html): Html {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · aiaas console</title>
<link rel="stylesheet" href="${ASSET_STYLE}">
<script src="${ASSET_SCRIPT}" defer></script>
</head>
<body>
<header><a class="brand" href="/">aiaas registry</a> <span class="target">${frame.target}</span></header>
<main>
${body}
</main>
</body>
</html>
`;
}

const when = (iso: string) => (typeof iso === 'string' ? iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z') : '');
const fixed = (n: unknown) =>
  typeof n === 'number' ? (Number.isInteger(n) ? String(n) : n.toFixed(4)) : String(n ?? '');
const percent = (n: unknown) => (typeof n === 'number' ? String(Number(n.toFixed(4))) : '');
const tokenField = (frame: Frame) => html`<input type="hidden" name="token" value="${frame.token}">`;

/** Any JSON-ish value as nested lists (bounded), every string escaped by `html`. */
export function valueView(value: unknown, depth = 0): Html {
  if (value === null || value === undefined) return html`<span class="muted">none</span>`;
  if (typeof value !== 'object') return html`${typeof value === 'number' ? fixed(value) : String(value)}`;
  if (depth >= 4) return html`<code>${JSON.stringify(value).slice(0, 200)}</code>`;
  if (Array.isArray(value)) {
    if (value.length === 0) return html`<span class="muted">[]</span>`;
    if (value.every((v) => typeof v !== 'object' || v === null) && value.length <= 50)
      return html`${value.map((v) => fixed(v)).join(', ')}`;
    const shown = value.slice(0, 20);
    return html`<ol>${shown.map((v) => html`<li>${valueView(v, depth + 1)}</li>`)}</ol>${
      value.length > shown.length
        ? html`<span class="muted">… ${value.length - shown.length} more</span>`
        : ''
    }`;
  }
  const entries = Object.entries(value as Record<string, unknown>).slice(0, 100);
  if (entries.length === 0) return html`<span class="muted">{}</span>`;
  return html`<dl>${entries.map(([k, v]) => html`<dt>${k}</dt><dd>${valueView(v, depth + 1)}</dd>`)}</dl>`;
}

// ---- models list ---------------------------------------------------------------------------------

export interface ModelSummary {
  readonly name: string;
  readonly description?: string;
  readonly aliases: Readonly<Record<string, AliasState>>;
}

export function modelsPage(frame: Frame, models: readonly ModelSummary[]): Html {
  return layout(
    frame,
    'models',
    html`<h1>Models</h1>
${
  models.length === 0
    ? html`<p>No models yet: <code>aiaas publish &lt;dir|model.json|model.h5&gt; --model &lt;name&gt; --promote</code></p>`
    : html`<table id="models"><thead><tr><th>model</th><th>aliases</th><th>description</th></tr></thead><tbody>
${models.map(
  (m) =>
    html`<tr><td><a href="${paths.model(m.name)}">${m.name}</a></td><td>${Object.entries(m.aliases).map(
      ([alias, state]) =>
        'version' in state
          ? html`<span class="alias">${alias} → <a href="${paths.version(m.name, state.version)}">v${state.version}</a>${routesOf(m.name, state)}</span> `
          : html`<span class="alias damaged">${alias}: damaged (${state.damaged})</span> `,
    )}</td><td>${m.description ?? ''}</td></tr>`,
)}
</tbody></table>`
}`,
  );
}

/** ` (canary v4 10%, shadow v5 5%)` as `aiaas models` writes it, each version a link; nothing without routes. */
function routesOf(
  model: string,
  state: {
    readonly canary?: { version: number; weight: number };
    readonly shadow?: { version: number; sample: number };
  },
): Html | undefined {
  const beside = [
    state.canary
      ? html`canary <a href="${paths.version(model, state.canary.version)}">v${state.canary.version}</a> ${state.canary.weight}%`
      : undefined,
    state.shadow
      ? html`shadow <a href="${paths.version(model, state.shadow.version)}">v${state.shadow.version}</a> ${state.shadow.sample}%`
      : undefined,
  ].filter((part): part is Html => part !== undefined);
  if (beside.length === 0) return undefined;
  return beside.length === 1 ? html` (${beside[0]})` : html` (${beside[0]}, ${beside[1]})`;
}

// ---- model page ----------------------------------------------------------------------------------

export interface AliasView {
  readonly alias: string;
  readonly pointer?: AliasPointer;
  readonly damaged?: string;
  readonly history: readonly AliasEvent[];
  readonly unfinished: readonly AliasEvent[];
}

/** What the try-it form answered (or why it could not ask). */
export interface TryAnswer {
  readonly status?: number;
  readonly version?: string;
  readonly body?: string;
  readonly error?: string;
}

export interface ModelPage {
  readonly model: string;
  readonly description?: string;
  /** The newest versions (the page shows a bounded number). */
  readonly versions: readonly VersionMetadata[];
  /** How many older versions are left out. */
  readonly olderVersions?: number;
  readonly aliases: readonly AliasView[];
  /** The alias promote and rollback move by default (the manifest's, else live). */
  readonly defaultAlias: string;
  readonly figures?: readonly VersionFigures[];
  readonly form: TryForm | undefined;
  /** The function's URL root, or undefined when the console knows none for this model. */
  readonly functionUrl?: string;
  readonly submitted?: URLSearchParams;
  readonly answer?: TryAnswer;
  readonly moved?: AliasEvent;
}

function aliasesOf(page: ModelPage, version: number): string[] {
  return page.aliases.flatMap((a) => [
    ...(a.pointer?.version === version ? [a.alias] : []),
    ...(a.pointer?.canary?.version === version ? [`${a.alias} canary`] : []),
    ...(a.pointer?.shadow?.version === version ? [`${a.alias} shadow`] : []),
  ]);
}

function fingerprint(meta: VersionMetadata): string {
  const fp = meta.training?.dataFingerprint;
  return typeof fp === 'string' ? fp.slice(0, 12) : '';
}

function metricsText(metrics: Readonly<Record<string, number>>): Html {
  const names = ['val_accuracy', 'accuracy', 'val_loss', 'loss'];
  const ordered = [
    ...names.filter((n) => n in metrics),
    ...Object.keys(metrics).filter((n) => !names.includes(n)),
  ];
  return html`${ordered.map((n) => html`<span class="metric">${n} ${fixed(metrics[n])}</span> `)}`;
}

function versionsTable(page: ModelPage): Html {
  const { model } = page;
  return html`<table id="versions"><thead><tr><th>version</th><th>aliases</th><th>metrics</th><th>data</th><th>source</th><th>created</th><th>by</th><th>parent</th></tr></thead><tbody>
${[...page.versions].reverse().map(
  (
    m,
  ) => html`<tr data-version="${m.version}"><td><a href="${paths.version(model, m.version)}">v${m.version}</a></td>
<td>${aliasesOf(page, m.version).map((a) => html`<span class="alias">${a}</span> `)}</td>
<td>${metricsText(m.metrics)}</td><td><code>${fingerprint(m)}</code></td><td>${m.source?.kind}</td>
<td>${when(m.createdAt)}</td><td>${m.createdBy}</td>
<td>${m.parent === null ? '' : html`<a href="${paths.version(model, m.parent)}">v${m.parent}</a>`}</td></tr>`,
)}
</tbody></table>`;
}

function routeView(pointer: AliasPointer | undefined): Html {
  if (!pointer) return html``;
  return html`${
    pointer.canary
      ? html`<p class="route canary">canary: <strong>v${pointer.canary.version}</strong> takes ${percent(pointer.canary.weight)}% of requests since ${when(pointer.canary.since)}</p>`
      : ''
  }${
    pointer.shadow
      ? html`<p class="route shadow">shadow: <strong>v${pointer.shadow.version}</strong> runs beside on ${percent(pointer.shadow.sample)}% of requests since ${when(pointer.shadow.since)}</p>`
      : ''
  }`;
}

function gateView(details: Readonly<Record<string, unknown>> | undefined): Html {
  const gate = details?.gate as Record<string, unknown> | undefined;
  if (!gate || typeof gate !== 'object') return html``;
  return html`<p class="gate">gate ${gate.pass === true ? 'passed' : gate.pass === false ? 'refused' : ''}: ${gate.metric} candidate ${fixed(gate.candidate)}${gate.baseline === null || gate.baseline === undefined ? ', no baseline' : html` vs baseline ${fixed(gate.baseline)} (delta ${fixed(gate.delta)})`}</p>`;
}

function eventView(model: string, e: AliasEvent, unfinished = false): Html {
  const rest = e.details ? Object.fromEntries(Object.entries(e.details).filter(([k]) => k !== 'gate')) : {};
  return html`<li class="event ${e.kind}${unfinished ? ' unfinished' : ''}">
<div class="event-head"><span class="seq">#${e.seq}</span> <span class="kind">${e.kind}</span>
${e.from === null ? 'none' : html`<a href="${paths.version(model, e.from)}">v${e.from}</a>`} → <a href="${paths.version(model, e.to)}">v${e.to}</a>
<time>${when(e.at)}</time> by <span class="who">${e.who}</span>${unfinished ? html` <strong>(unfinished: the next move completes it)</strong>` : ''}</div>
<div class="why">${e.why}</div>
${gateView(e.details)}
${e.canary ? html`<p class="route canary">canary v${e.canary.version} at ${percent(e.canary.weight)}%</p>` : ''}
${e.shadow ? html`<p class="route shadow">shadow v${e.shadow.version} on ${percent(e.shadow.sample)}%</p>` : ''}
${Object.keys(rest).length > 0 ? html`<details><summary>details</summary>${valueView(rest)}</details>` : ''}
</li>`;
}

function aliasSection(frame: Frame, page: ModelPage, a: AliasView): Html {
  const { model } = page;
  return html`<section class="alias-section" id="alias-${a.alias}">
<h3>${a.alias} ${a.pointer ? html`→ <a href="${paths.version(model, a.pointer.version)}">v${a.pointer.version}</a>` : ''}${a.damaged ? html` <span class="damaged">damaged: ${a.damaged}</span>` : ''}</h3>
${routeView(a.pointer)}
<form method="post" action="${paths.rollback(model)}" class="rollback" data-confirm="rollback">
${tokenField(frame)}<input type="hidden" name="alias" value="${a.alias}">
<label>reason <input name="reason" required maxlength="500" placeholder="why roll back"></label>
<button type="submit">Roll back ${a.alias}…</button>
</form>
<ol class="timeline">
${a.unfinished.map((e) => eventView(model, e, true))}
${[...a.history].reverse().map((e) => eventView(model, e))}
</ol>
</section>`;
}

function figuresView(figures: readonly VersionFigures[] | undefined): Html {
  if (!figures || figures.length === 0) return html``;
  return html`<h2>Rollout figures (last hour)</h2>
<table id="figures"><thead><tr><th>version</th><th>role</th><th>requests</th><th>4xx</th><th>5xx</th><th>p50 ms</th><th>p99 ms</th><th>shadow compared</th><th>max |diff|</th><th>top class disagreements</th></tr></thead><tbody>
${figures.map(
  (
    f,
  ) => html`<tr><td>v${f.version}</td><td>${f.role}</td><td>${f.requests}</td><td>${f.clientErrors}</td><td>${f.serverErrors}</td>
<td>${f.p50Ms === undefined ? '' : fixed(f.p50Ms)}</td><td>${f.p99Ms === undefined ? '' : fixed(f.p99Ms)}</td>
<td>${f.shadow?.compared ?? ''}</td><td>${f.shadow ? fixed(f.shadow.maxAbsDiff) : ''}</td>
<td>${f.shadow?.topClassDisagreements !== undefined ? `${f.shadow.topClassDisagreements} / ${f.shadow.topClassRows ?? ''}` : ''}</td></tr>`,
)}
</tbody></table>`;
}

export function answerView(answer: TryAnswer | undefined): Html {
  return html`<div id="answer" class="answer"${answer ? '' : html` hidden`}>
<p>Answered by <strong>version <span id="answer-version">${answer?.version ?? ''}</span></strong>
(HTTP <span id="answer-status">${answer?.status ?? ''}</span>)</p>
<p id="answer-error" class="error">${answer?.error ?? ''}</p>
<pre id="answer-body">${answer?.body ?? ''}</pre>
</div>`;
}

function tryItView(frame: Frame, page: ModelPage): Html {
  const { model, form } = page;
  if (!form) return html`<p class="muted">No version to try yet.</p>`;
  if (!page.functionUrl)
    return html`<p class="muted">The console knows no function URL for ${model}: pass <code>--function-url ${model}=&lt;url&gt;</code> or <code>--outputs cdk-outputs.json</code> to <code>aiaas console</code>.</p>`;
  const fields =
    form.kind === 'fields'
      ? html`<div class="fields">${form.fields.map(
          (name, i) =>
            html`<label>${name} <input name="f${i}" inputmode="decimal" value="${page.submitted?.get(`f${i}`) ?? ''}" required></label>`,
        )}</div>`
      : html`<label>request (JSON) <textarea name="request" rows="8" cols="80" spellcheck="false">${page.submitted?.get('request') ?? form.example}</textarea></label>`;
  return html`<form method="post" action="${paths.predict(model)}" id="try-it">
${tokenField(frame)}${fields}
<button type="submit">Predict</button> <span class="muted">sent to the function at <code>${page.functionUrl}</code> (the version its alias serves)</span>
</form>
${answerView(page.answer)}`;
}

function promoteForm(frame: Frame, page: ModelPage, version?: number): Html {
  const aliases = [...new Set([page.defaultAlias, ...page.aliases.map((a) => a.alias)])];
  return html`<form method="post" action="${paths.promote(page.model)}" class="promote" data-confirm="promote">
${tokenField(frame)}
<label>alias <select name="alias">${aliases.map((a) => html`<option value="${a}"${a === page.defaultAlias ? html` selected` : ''}>${a}</option>`)}</select></label>
${
  version === undefined
    ? html`<label>version <select name="version">${[...page.versions]
        .reverse()
        .map((m) => html`<option value="${m.version}">v${m.version}</option>`)}</select></label>`
    : html`<input type="hidden" name="version" value="${version}">`
}
<label>reason <input name="reason" required maxlength="500" placeholder="why promote"></label>
<button type="submit">Promote${version === undefined ? '' : ` v${version}`}…</button>
</form>`;
}

function compareForm(page: ModelPage): Html {
  const options = (selected: number | undefined) =>
    [...page.versions]
      .reverse()
      .map(
        (m) =>
          html`<option value="${m.version}"${m.version === selected ? html` selected` : ''}>v${m.version}</option>`,
      );
  const newest = page.versions.at(-1)?.version;
  const before = page.versions.at(-2)?.version;
  return html`<form method="get" action="${paths.compare(page.model)}" class="compare">
<label>compare <select name="a">${options(before)}</select></label> <label>with <select name="b">${options(newest)}</select></label>
<button type="submit">Side by side</button></form>`;
}

export function modelPage(frame: Frame, page: ModelPage): Html {
  const { model } = page;
  return layout(
    frame,
    model,
    html`<nav><a href="/">models</a> / ${model}</nav>
<h1>${model}</h1>
${page.description ? html`<p class="description">${page.description}</p>` : ''}
<p><a href="${paths.openapi(model)}">OpenAPI document</a> (<code>GET /v1/models/${model}/openapi.json</code> on the function)</p>
${
  page.moved
    ? html`<p class="flash" id="moved">${page.moved.alias} now serves v${page.moved.to} (${page.moved.kind} from ${page.moved.from === null ? 'none' : `v${page.moved.from}`}): ${page.moved.why}</p>`
    : ''
}
<h2>Versions</h2>
${page.versions.length === 0 ? html`<p>No versions.</p>` : html`${versionsTable(page)}${page.versions.length > 1 ? compareForm(page) : ''}`}
${page.olderVersions ? html`<p class="muted" id="older-versions">The newest ${page.versions.length} versions are shown; ${page.olderVersions} older ones are not (each is at <code>${paths.model(model)}/versions/&lt;n&gt;</code>).</p>` : ''}
${page.versions.length > 0 ? html`<h2>Promote</h2>${promoteForm(frame, page)}` : ''}
<h2>Try it</h2>
${tryItView(frame, page)}
${figuresView(page.figures)}
<h2>Aliases and history</h2>
${page.aliases.length === 0 ? html`<p>No alias set yet.</p>` : page.aliases.map((a) => aliasSection(frame, page, a))}`,
  );
}

// ---- version page --------------------------------------------------------------------------------

/** A version's curves: drawn from its history, its report picture, or none. */
export type CurvesView = { readonly drawn: Html } | { readonly image: string } | { readonly none: string };

export function curvesView(model: string, version: number, view: CurvesView): Html {
  if ('drawn' in view) return html`<div class="curves" data-version="${version}">${view.drawn}</div>`;
  if ('image' in view)
    return html`<div class="curves" data-version="${version}"><img class="report" src="${view.image}" alt="training report of ${model} v${version}" width="720"></div>`;
  return html`<p class="muted curves-none">${view.none}</p>`;
}

export interface VersionPage {
  readonly model: string;
  readonly meta: ShownVersion;
  readonly aliases: readonly string[];
  readonly curves: CurvesView;
  /** The model's page data, for the promote form. */
  readonly context: ModelPage;
}

export function versionPage(frame: Frame, page: VersionPage): Html {
  const { model, meta } = page;
  const signature = meta.signature;
  const rows = (specs: VersionMetadata['signature']['inputs'], kind: string) =>
    specs.map(
      (s) =>
        html`<tr><td>${kind}</td><td>${s.name}</td><td>${s.dtype}</td><td>[${s.shape.map((d) => d ?? -1).join(', ')}]</td></tr>`,
    );
  const training = meta.training
    ? Object.fromEntries(Object.entries(meta.training).filter(([k]) => k !== 'history'))
    : undefined;
  return layout(
    frame,
    `${model} v${meta.version}`,
    html`<nav><a href="/">models</a> / <a href="${paths.model(model)}">${model}</a> / v${meta.version}</nav>
<h1>${model} v${meta.version}</h1>
<p>${page.aliases.map((a) => html`<span class="alias">${a}</span> `)}created ${when(meta.createdAt)} by <span class="who">${meta.createdBy}</span>${
      meta.parent === null
        ? ''
        : html`, parent <a href="${paths.version(model, meta.parent)}">v${meta.parent}</a>`
    }</p>
${
  meta.unreadable.length > 0
    ? html`<p class="error" id="unreadable">The ${meta.unreadable.join(', ')} in the metadata ${meta.unreadable.length === 1 ? 'is' : 'are'} not readable: not shown.</p>`
    : ''
}
<h2>Training curves</h2>
${curvesView(model, meta.version, page.curves)}
${meta.parent !== null ? html`<p><a href="${paths.compare(model)}?a=${meta.parent}&amp;b=${meta.version}">Side by side with its parent v${meta.parent}</a></p>` : ''}
<h2>Metrics</h2>
${valueView(meta.metrics)}
<h2>Promote</h2>
${promoteForm(frame, page.context, meta.version)}
<h2>Signature</h2>
<table id="signature"><thead><tr><th></th><th>name</th><th>dtype</th><th>shape</th></tr></thead><tbody>
${rows(signature.inputs, 'input')}${rows(signature.outputs, 'output')}
</tbody></table>
<h2>Source</h2>
${valueView(meta.source)}
${training ? html`<h2>Training</h2>${valueView(training)}` : ''}
<h2>Files</h2>
${valueView(meta.files)}`,
  );
}

// ---- compare, confirm, error ---------------------------------------------------------------------

export function comparePage(
  frame: Frame,
  model: string,
  sides: readonly { meta: VersionMetadata; curves: CurvesView }[],
): Html {
  const names = [...new Set(sides.flatMap((s) => Object.keys(s.meta.metrics)))];
  return layout(
    frame,
    `${model}: compare`,
    html`<nav><a href="/">models</a> / <a href="${paths.model(model)}">${model}</a> / compare</nav>
<h1>${model}: ${sides.map((s) => `v${s.meta.version}`).join(' and ')}</h1>
<div class="side-by-side">
${sides.map(
  (
    s,
  ) => html`<section class="side"><h2><a href="${paths.version(model, s.meta.version)}">v${s.meta.version}</a></h2>
<p>created ${when(s.meta.createdAt)} by ${s.meta.createdBy}; data <code>${fingerprint(s.meta)}</code></p>
${curvesView(model, s.meta.version, s.curves)}</section>`,
)}
</div>
<h2>Metrics</h2>
<table id="compare-metrics"><thead><tr><th>metric</th>${sides.map((s) => html`<th>v${s.meta.version}</th>`)}</tr></thead><tbody>
${names.map((n) => html`<tr><td>${n}</td>${sides.map((s) => html`<td>${fixed(s.meta.metrics[n])}</td>`)}</tr>`)}
</tbody></table>`,
  );
}

export interface Confirmation {
  readonly model: string;
  readonly action: 'promote' | 'rollback';
  readonly alias: string;
  readonly version?: number;
  readonly reason: string;
  /** What the move would do, e.g. "v2 → v3". */
  readonly move: string;
}

export function confirmPage(frame: Frame, c: Confirmation): Html {
  const title = c.action === 'promote' ? `Promote ${c.model}@${c.alias}` : `Roll back ${c.model}@${c.alias}`;
  return layout(
    frame,
    title,
    html`<nav><a href="/">models</a> / <a href="${paths.model(c.model)}">${c.model}</a></nav>
<h1>${title}?</h1>
<p class="confirm-move">${c.move}</p>
<p>Reason: <span class="why">${c.reason}</span></p>
<form method="post" action="${c.action === 'promote' ? paths.promote(c.model) : paths.rollback(c.model)}" id="confirm">
${tokenField(frame)}<input type="hidden" name="alias" value="${c.alias}">
${c.version !== undefined ? html`<input type="hidden" name="version" value="${c.version}">` : ''}
<input type="hidden" name="reason" value="${c.reason}"><input type="hidden" name="confirm" value="yes">
<button type="submit">Yes, ${c.action === 'promote' ? 'promote' : 'roll back'}</button> <a href="${paths.model(c.model)}">Cancel</a>
</form>`,
  );
}

export function errorPage(frame: Frame, status: number, message: string, back?: string): Html {
  return layout(
    frame,
    `error ${status}`,
    html`<h1>${status === 404 ? 'Not found' : 'Refused'}</h1><p class="error" id="error">${message}</p>${
      back ? html`<p><a href="${back}">Back</a></p>` : html`<p><a href="/">Models</a></p>`
    }`,
  );
}
