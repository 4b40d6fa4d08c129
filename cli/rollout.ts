/**
 * `aiaas canary`, `aiaas shadow` and `aiaas rollout status`: change an alias's canary and shadow
 * (race-safe moves recorded in its history, through the registry's changeRoutes) and show each
 * routed version's figures: from the local stack when it runs, else from CloudWatch.
 */
import { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import { ValidationError } from '../functions/shared/errors.js';
import { DEFAULT_MEMORY_MIB, type RolloutPlan } from '../functions/shared/manifest.js';
import { DEFAULT_ALIAS } from '../functions/shared/registry/layout.js';
import type { RegistryReader } from '../functions/shared/registry/registry.js';
import { describeRoutes, isPercent, type RouteChange } from '../functions/shared/registry/routes.js';
import type { AliasEvent, AliasPointer } from '../functions/shared/registry/types.js';
import { CloudWatchFigures } from '../functions/shared/rollout/cloudwatch.js';
import { decideRollout } from '../functions/shared/rollout/decide.js';
import type { FiguresSource, VersionFigures } from '../functions/shared/rollout/figures.js';
import { LocalFigures } from '../functions/shared/rollout/local.js';
import { routedVersions } from '../functions/shared/rollout/tick.js';
import { resolveTarget } from './context.js';
import { manifestEntry } from './retrain.js';
import { table } from './table.js';

/** `rollout status` without a canary or --since: the last hour. */
const DEFAULT_WINDOW_MS = 3_600_000;

interface Io {
  out: (line?: string) => void;
  note: (line: string) => void;
  modelArg: (v: string) => string;
  aliasArg: (v: string) => string;
  versionArg: (v: string) => number;
}

/** A percentage from 0 to 100 written in decimal (a usage error otherwise: not `0x10`, `1e1` or `10%`). */
function percentArg(value: string): number {
  const n = Number(value);
  if (!/^\s*\d+(\.\d+)?\s*$/.test(value) || !isPercent(n)) {
    throw new InvalidArgumentError(`"${value}" is not a percentage: use a number from 0 to 100, e.g. 10`);
  }
  return n;
}

/** A window start: a duration back from now (30s, 15m, 2h, 1d) or an ISO time. */
export function parseSince(text: string, now = Date.now()): Date {
  const match = /^(\d+(?:\.\d+)?)(s|m|h|d)$/.exec(text.trim());
  if (match) {
    const unit = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }[match[2] as 's' | 'm' | 'h' | 'd'];
    return new Date(now - Number(match[1]) * unit);
  }
  const at = Date.parse(text);
  if (!/^\d{4}-\d\d-\d\d/.test(text) || !Number.isFinite(at)) {
    throw new InvalidArgumentError(`"${text}" is not a duration (30s, 15m, 2h, 1d) or an ISO time`);
  }
  return new Date(at);
}

/** `--since`, checked as it is read (a usage error before the registry is asked); resolved when the status is read. */
function sinceArg(text: string): string {
  parseSince(text);
  return text;
}

const aliasOf = (model: string) => manifestEntry(model)?.alias ?? DEFAULT_ALIAS;
const memoryOf = (model: string) => manifestEntry(model)?.memoryMiB ?? DEFAULT_MEMORY_MIB;

function said(model: string, event: AliasEvent): string {
  return `${model}@${event.alias}: ${describeRoutes(event)} (history #${event.seq})`;
}

const ALIAS_HELP = "alias (default: the manifest's, else live)";

/** A move asked for on the command line, and the reason recorded when --why does not give one. */
interface RouteRequest {
  readonly change: RouteChange;
  readonly why: string;
}

/** The options every route command takes besides its own (`O`). */
interface RouteOptions {
  alias?: string;
  why?: string;
}

/**
 * A command that moves an alias's routes: `<model> [version]`, its own options, then --alias and
 * --why. Its action reads the request (a usage error before the registry is asked), makes the move
 * through the registry's changeRoutes and prints the event.
 */
function routeCommand<O>(
  program: Command,
  io: Io,
  spec: {
    name: string;
    description: string;
    versionHelp: string;
    options: (command: Command) => Command;
    request: (version: number | undefined, opts: O) => RouteRequest;
  },
): void {
  const command = program
    .command(spec.name)
    .description(spec.description)
    .argument('<model>', 'model name', io.modelArg)
    .argument('[version]', spec.versionHelp, io.versionArg);
  spec
    .options(command)
    .option('-a, --alias <alias>', ALIAS_HELP, io.aliasArg)
    .option('--why <reason>', 'reason recorded in the alias history')
    .action(async (model: string, version: number | undefined, opts: O & RouteOptions) => {
      const { change, why } = spec.request(version, opts);
      const { registry } = resolveTarget();
      const event = await registry.changeRoutes(model, opts.alias ?? aliasOf(model), change, {
        why: opts.why ?? why,
        memoryMiB: memoryOf(model),
      });
      io.out(said(model, event));
    });
}

/** `aiaas canary`: exactly one of --weight (with a version: start or change the canary), --promote, --abort. */
function canaryRequest(
  version: number | undefined,
  opts: { weight?: number; promote?: boolean; abort?: boolean },
): RouteRequest {
  const chosen = [opts.weight !== undefined, !!opts.promote, !!opts.abort].filter(Boolean).length;
  if (chosen !== 1) {
    throw new ValidationError(
      'say one of: --weight <percent> (with a version to start a canary), --promote or --abort',
    );
  }
  if (version !== undefined && opts.weight === undefined) {
    throw new ValidationError(
      `--${opts.promote ? 'promote' : 'abort'} acts on the running canary: leave out the version`,
    );
  }
  if (opts.promote) return { change: { op: 'promote-canary' }, why: 'canary promoted by hand' };
  if (opts.abort) return { change: { op: 'abort-canary' }, why: 'canary aborted by hand' };
  const change: RouteChange =
    version !== undefined
      ? { op: 'set-canary', version, weight: opts.weight! }
      : { op: 'canary-weight', weight: opts.weight! };
  return { change, why: 'canary set by hand' };
}

/** `aiaas shadow`: a version with --sample (start or change the shadow), or --stop without one. */
function shadowRequest(version: number | undefined, opts: { sample?: number; stop?: boolean }): RouteRequest {
  if ((opts.sample !== undefined) === !!opts.stop) {
    throw new ValidationError('say one of: <version> --sample <percent>, or --stop');
  }
  if (opts.sample !== undefined && version === undefined) {
    throw new ValidationError('name the shadow version: aiaas shadow <model> <version> --sample <percent>');
  }
  if (opts.stop && version !== undefined) {
    throw new ValidationError('--stop acts on the running shadow: leave out the version');
  }
  return opts.stop
    ? { change: { op: 'stop-shadow' }, why: 'shadow stopped by hand' }
    : { change: { op: 'set-shadow', version: version!, sample: opts.sample! }, why: 'shadow set by hand' };
}

export function rolloutCommands(program: Command, io: Io) {
  routeCommand(program, io, {
    name: 'canary',
    description:
      'run a second version on a share of the requests (with <version> --weight), change its weight, promote it or abort it',
    versionHelp: 'the canary version (to start one, or change which)',
    options: (command) =>
      command
        .option('-w, --weight <percent>', 'share of the requests the canary answers, 0-100', percentArg)
        .option('--promote', 'make the canary the served version (the canary ends; a shadow goes on)')
        .option('--abort', 'end the canary: every request goes to the served version'),
    request: canaryRequest,
  });
  routeCommand(program, io, {
    name: 'shadow',
    description:
      'run a version beside the served one on a sample of requests, comparing answers (never returned)',
    versionHelp: 'the shadow version',
    options: (command) =>
      command
        .option('-s, --sample <percent>', 'share of the requests the shadow also runs on, 0-100', percentArg)
        .option('--stop', 'end the shadow'),
    request: shadowRequest,
  });

  const rollout = program.command('rollout').description("an alias's canary and shadow, and their figures");
  rollout
    .command('status')
    .description(
      'per version of the alias: role, requests, errors, p50/p99 latency, shadow disagreement (local stack, else CloudWatch)',
    )
    .argument('<model>', 'model name', io.modelArg)
    .option('-a, --alias <alias>', ALIAS_HELP, io.aliasArg)
    .option(
      '--since <when>',
      "window start: 30s, 15m, 2h, 1d or an ISO time (default: the canary's step, else 1h)",
      sinceArg,
    )
    .option('--json', 'machine-readable output')
    .action(async (model: string, opts: { alias?: string; since?: string; json?: boolean }) => {
      const target = resolveTarget();
      const status = await rolloutStatus({
        registry: target.registry,
        model,
        alias: opts.alias ?? aliasOf(model),
        ...(opts.since ? { since: (now: Date) => parseSince(opts.since!, now.getTime()) } : {}),
        source: target.localUrl
          ? { name: 'local stack', figures: () => new LocalFigures(target.localUrl!) }
          : {
              name: 'CloudWatch',
              figures: (pointer) =>
                new CloudWatchFigures({
                  client: new CloudWatchClient({}),
                  routes: async () => routedVersions(pointer),
                }),
            },
        plan: manifestEntry(model)?.rollout,
      });
      if (opts.json) return io.out(JSON.stringify(status, null, 2));
      for (const line of describeStatus(status)) io.out(line);
    });
}

/** What `aiaas rollout status` reports. */
export interface RolloutStatus {
  readonly model: string;
  readonly alias: string;
  readonly served: number;
  readonly canary: { version: number; weight: number; since: string } | null;
  readonly shadow: { version: number; sample: number; since: string } | null;
  readonly window: { since: string; until: string };
  readonly source: string;
  /** Each routed version's figures (zeros when none were counted), served first. */
  readonly versions: readonly VersionFigures[];
  /** What the rollout function would do now, when the model has a rollout plan and a canary runs. */
  readonly next?: { action: string; reason: string };
  readonly hint?: string;
}

/**
 * Reads an alias's routes and their figures over the window (default: since the canary's step
 * began, else the last hour), and what the rollout function would decide on them.
 */
export async function rolloutStatus(options: {
  registry: RegistryReader;
  model: string;
  alias: string;
  source: { name: string; figures: (pointer: AliasPointer) => FiguresSource };
  since?: (now: Date) => Date;
  plan?: RolloutPlan | undefined;
  now?: Date;
}): Promise<RolloutStatus> {
  const { registry, model, alias, plan } = options;
  const pointer = await registry.getAlias(model, alias);
  if (!pointer) throw new ValidationError(`${model}@${alias} has never been set`);
  const now = options.now ?? new Date();
  const since = options.since
    ? options.since(now)
    : pointer.canary
      ? new Date(pointer.canary.since)
      : new Date(now.getTime() - DEFAULT_WINDOW_MS);
  const figures = await options.source.figures(pointer).figures(model, since, now);
  const versions = routedVersions(pointer).map(
    (route) =>
      figures.find((f) => f.version === route.version && f.role === route.role) ?? {
        ...route,
        requests: 0,
        clientErrors: 0,
        serverErrors: 0,
      },
  );
  const { canary, shadow } = pointer;
  const next =
    canary && plan
      ? decideRollout({
          plan,
          canary,
          live: versions.find((v) => v.role === 'live'),
          canaryFigures: versions.find((v) => v.role === 'canary'),
          now,
        })
      : undefined;
  return {
    model,
    alias,
    served: pointer.version,
    canary: canary ? { version: canary.version, weight: canary.weight, since: canary.since } : null,
    shadow: shadow ? { version: shadow.version, sample: shadow.sample, since: shadow.since } : null,
    window: { since: since.toISOString(), until: now.toISOString() },
    source: options.source.name,
    versions,
    ...(next ? { next: { action: next.action, reason: next.reason } } : {}),
    ...(canary && !plan
      ? {
          hint: `${model} has no rollout plan in the manifest: step the canary by hand (aiaas canary ${model} --weight <percent>)`,
        }
      : {}),
  };
}

/** The status for people: the routes, a table of versions, the rollout's next move. */
export function describeStatus(status: RolloutStatus): string[] {
  const routes = { canary: status.canary ?? undefined, shadow: status.shadow ?? undefined };
  return [
    `${status.model}@${status.alias}: ${describeRoutes({ to: status.served, ...routes })}`,
    `figures from the ${status.source}, ${status.window.since} → ${status.window.until}`,
    table([
      ['VERSION', 'ROLE', 'SHARE', 'REQUESTS', 'ERRORS', 'P50', 'P99', 'SHADOW'],
      ...status.versions.map((v) => row(v.version, v.role, share(status, v.role), v)),
    ]),
    ...(status.next
      ? [
          `rollout: ${status.next.action === 'wait' ? 'waiting' : `next look: ${status.next.action}`} — ${status.next.reason}`,
        ]
      : []),
    ...(status.hint ? [`rollout: ${status.hint}`] : []),
  ];
}

function share(status: RolloutStatus, role: string): string {
  if (role === 'canary') return `${status.canary?.weight ?? 0}%`;
  if (role === 'shadow') return `${status.shadow?.sample ?? 0}% sampled`;
  return `${100 - (status.canary?.weight ?? 0)}%`;
}

function row(version: number, role: string, weight: string, f: VersionFigures | undefined): string[] {
  const msText = (n: number | undefined) => (n === undefined ? '-' : `${n.toFixed(1)} ms`);
  const errors = (f?.clientErrors ?? 0) + (f?.serverErrors ?? 0);
  const requests = f?.requests ?? 0;
  const s = f?.shadow;
  const shadow = s
    ? `${s.compared} compared, max |diff| ${s.maxAbsDiff.toPrecision(3)}` +
      (s.topClassRows ? `, top class differs ${s.topClassDisagreements ?? 0}/${s.topClassRows}` : '') +
      (s.slow ? `, ${s.slow} slow` : '')
    : '';
  return [
    `v${version}`,
    role,
    weight,
    String(requests),
    requests > 0 ? `${errors} (${((errors / requests) * 100).toFixed(1)}%)` : String(errors),
    msText(f?.p50Ms),
    msText(f?.p99Ms),
    shadow,
  ];
}
