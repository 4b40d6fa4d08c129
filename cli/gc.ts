/**
 * `aiaas gc`: lists (dry run) or removes (--apply) what killed or losing publishes left in the
 * registry, through functions/shared/registry/gc.ts, which decides what may go.
 */
import { type Command, InvalidArgumentError } from 'commander';
import { collectGarbage, MIN_GC_AGE_MS } from '../functions/shared/registry/gc.js';
import { resolveTarget } from './context.js';

/** A duration such as 90m, 36h or 7d. */
export function parseDuration(text: string): number {
  const match = /^(\d+(?:\.\d+)?)(m|h|d)$/.exec(text.trim());
  if (!match) {
    throw new InvalidArgumentError(
      `"${text}" is not a duration: use a number and m, h or d, e.g. 90m, 36h, 7d`,
    );
  }
  return Number(match[1]) * { m: 60_000, h: 3_600_000, d: 86_400_000 }[match[2] as 'm' | 'h' | 'd'];
}

function bytes(n: number): string {
  return n >= 1e6 ? `${(n / 1e6).toFixed(1)} MB` : n >= 1e3 ? `${(n / 1e3).toFixed(1)} kB` : `${n} B`;
}

const hours = (ms: number) => `${+(ms / 3_600_000).toFixed(2)} h`;

export function gcCommand(
  program: Command,
  io: { out: (line?: string) => void; note: (line: string) => void; modelArg: (v: string) => string },
) {
  program
    .command('gc')
    .description(
      'remove what killed or losing publishes left behind (uncommitted version folders, number claims); dry run unless --apply',
    )
    .option('-m, --model <name>', 'only this model (default: every model)', io.modelArg)
    .option('--apply', 'remove them (default: only list them)')
    .option(
      '--older-than <duration>',
      `leave anything younger (default 24h, at least ${hours(MIN_GC_AGE_MS)})`,
      parseDuration,
    )
    .option('--json', 'machine-readable output')
    .action(async (opts: { model?: string; apply?: boolean; olderThan?: number; json?: boolean }) => {
      const { registry, description } = resolveTarget();
      if (opts.olderThan !== undefined && opts.olderThan < MIN_GC_AGE_MS) {
        io.note(`--older-than raised to ${hours(MIN_GC_AGE_MS)}, so a publish in flight is never touched`);
      }
      const result = await collectGarbage(registry, {
        ...(opts.model ? { model: opts.model } : {}),
        ...(opts.olderThan !== undefined ? { olderThanMs: opts.olderThan } : {}),
        apply: !!opts.apply,
      });
      if (opts.json) return io.out(JSON.stringify(result, null, 2));
      const verb = result.applied ? 'Removed' : 'Would remove';
      if (result.items.length === 0) {
        return io.out(`Nothing to remove in ${description} older than ${hours(result.olderThanMs)}`);
      }
      for (const item of result.items) {
        const what = item.kind === 'uncommitted' ? 'uncommitted version' : 'number claims of committed';
        io.out(
          `${verb} ${item.model} ${what} v${item.version}: ${item.objects.length} objects, ${bytes(item.bytes)} (newest ${item.newest.toISOString()})`,
        );
        for (const object of item.objects) io.out(`  ${object.key}  ${bytes(object.size)}`);
      }
      io.out(
        `${verb} ${result.items.reduce((n, i) => n + i.objects.length, 0)} objects, ${bytes(result.bytes)}${result.applied ? '' : ' (dry run: add --apply to remove them)'}`,
      );
    });
}
