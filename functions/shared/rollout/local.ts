/**
 * Figures from the local stack (`npm start`): its function-URL server counts every version's
 * requests as the deployed function's metrics would, and answers
 * `GET /_aiaas/figures/<model>?since=<ISO>&until=<ISO>` with `{ model, figures: VersionFigures[] }`.
 * The answer is checked like any input: an entry that is not well formed is an error naming it,
 * never a figure the rollout decides on.
 */

import { AiaasError } from '../errors.js';
import type { FiguresSource, ShadowFigures, VersionFigures, VersionRole } from './figures.js';

/** The local stack's answer should be quick: it reads counters held in memory. */
const TIMEOUT_MS = 5_000;
const ROLES: readonly VersionRole[] = ['live', 'canary', 'shadow'];

export class LocalFigures implements FiguresSource {
  constructor(
    /** The local function-URL server (`http://127.0.0.1:8080`). */
    private readonly baseUrl: string,
    private readonly fetchImpl: typeof fetch = fetch,
  ) {}

  async figures(model: string, since: Date, until: Date): Promise<readonly VersionFigures[]> {
    const url = new URL(`/_aiaas/figures/${encodeURIComponent(model)}`, this.baseUrl);
    url.searchParams.set('since', since.toISOString());
    url.searchParams.set('until', until.toISOString());
    let response: Response;
    let text: string;
    try {
      response = await this.fetchImpl(url, { signal: AbortSignal.timeout(TIMEOUT_MS) });
      text = await response.text();
    } catch (cause) {
      throw new AiaasError(
        `cannot read ${model}'s figures from the local stack at ${url.origin}: ${(cause as Error).message}`,
        {
          cause,
        },
      );
    }
    if (!response.ok) {
      throw new AiaasError(
        `the local stack answered ${response.status} for ${model}'s figures (${url.pathname}): ${text.slice(0, 200)}`,
      );
    }
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      throw new AiaasError(`the local stack's figures for ${model} are not JSON: ${text.slice(0, 200)}`);
    }
    return parseFigures(body, model);
  }
}

/**
 * `{ model, figures }` as the local stack answers it, checked; throws naming the first bad field.
 * The answer must be for `model`, and name each version in a role once: a second entry would be
 * a figure the rollout never looks at.
 */
export function parseFigures(body: unknown, model: string): VersionFigures[] {
  const where = `the local stack's figures for ${model}`;
  const answered = (body as { model?: unknown } | null)?.model;
  if (answered !== model)
    throw new AiaasError(`${where}: the answer is for model ${JSON.stringify(answered)}`);
  const list = (body as { figures?: unknown }).figures;
  if (!Array.isArray(list)) throw new AiaasError(`${where}: no "figures" list`);
  const seen = new Set<string>();
  return list.map((entry, index) => {
    const figures = parseEntry(entry, `${where}, entry ${index}`);
    const key = `v${figures.version} as ${figures.role}`;
    if (seen.has(key)) throw new AiaasError(`${where}, entry ${index}: a second entry for ${key}`);
    seen.add(key);
    return figures;
  });
}

function parseEntry(value: unknown, where: string): VersionFigures {
  if (typeof value !== 'object' || value === null) throw new AiaasError(`${where} is not an object`);
  const e = value as Record<string, unknown>;
  const bad = (field: string, what: string) =>
    new AiaasError(`${where}: "${field}" must be ${what}, got ${JSON.stringify(e[field])}`);
  if (!Number.isSafeInteger(e.version) || (e.version as number) < 1) throw bad('version', 'a version number');
  if (!ROLES.includes(e.role as VersionRole)) throw bad('role', 'live, canary or shadow');
  const count = (field: string) => {
    const n = e[field];
    if (typeof n !== 'number' || !Number.isFinite(n) || n < 0) throw bad(field, 'a count (0 or more)');
    return n;
  };
  const optionalMs = (field: string) => {
    const n = e[field];
    if (n === undefined || n === null) return undefined;
    if (typeof n !== 'number' || !Number.isFinite(n) || n < 0) throw bad(field, 'milliseconds (0 or more)');
    return n;
  };
  const p50Ms = optionalMs('p50Ms');
  const p99Ms = optionalMs('p99Ms');
  return {
    version: e.version as number,
    role: e.role as VersionRole,
    requests: count('requests'),
    clientErrors: count('clientErrors'),
    serverErrors: count('serverErrors'),
    ...(p50Ms !== undefined ? { p50Ms } : {}),
    ...(p99Ms !== undefined ? { p99Ms } : {}),
    ...(e.shadow !== undefined && e.shadow !== null
      ? { shadow: parseShadow(e.shadow, `${where}, shadow`) }
      : {}),
  };
}

function parseShadow(value: unknown, where: string): ShadowFigures {
  if (typeof value !== 'object' || value === null) throw new AiaasError(`${where} is not an object`);
  const s = value as Record<string, unknown>;
  const number = (field: string, optional = false) => {
    const n = s[field];
    if (optional && (n === undefined || n === null)) return undefined;
    if (typeof n !== 'number' || !Number.isFinite(n) || n < 0)
      throw new AiaasError(`${where}: "${field}" must be a number (0 or more), got ${JSON.stringify(n)}`);
    return n;
  };
  const topClassDisagreements = number('topClassDisagreements', true);
  const topClassRows = number('topClassRows', true);
  return {
    compared: number('compared')!,
    slow: number('slow')!,
    maxAbsDiff: number('maxAbsDiff')!,
    meanMaxAbsDiff: number('meanMaxAbsDiff')!,
    ...(topClassDisagreements !== undefined ? { topClassDisagreements } : {}),
    ...(topClassRows !== undefined ? { topClassRows } : {}),
  };
}
