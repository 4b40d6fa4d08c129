/**
 * `aiaas models [--json]`: the models in the registry, each alias with the version it serves, its
 * canary and shadow (in the words `aiaas history` uses), or why its object is damaged. `--json`
 * keeps `aliases` as `{alias: version}` and adds `routes` and `damaged` only where there are some.
 */
import type { Command } from 'commander';
import { type Canary, describeRoutes, type Shadow } from '../functions/shared/registry/routes.js';
import { resolveTarget } from './context.js';
import { table } from './table.js';

export function modelsCommand(program: Command, io: { out: (line?: string) => void }): void {
  const { out } = io;
  program
    .command('models')
    .description('list the models in the registry and their aliases')
    .option('--json', 'machine-readable output')
    .action(async (opts: { json?: boolean }) => {
      const { registry } = resolveTarget();
      const models = await Promise.all(
        (await registry.listModels()).map(async (name) => {
          const states = Object.entries(await registry.aliasStates(name));
          const aliases: Record<string, number> = {};
          // An alias's canary and shadow, beside `aliases` (whose shape scripts rely on): only
          // the aliases that have one, the key left out when none has.
          const routes: Record<string, { canary?: Canary; shadow?: Shadow }> = {};
          const damaged: Record<string, string> = {};
          for (const [alias, state] of states) {
            if (!('version' in state)) {
              damaged[alias] = state.damaged;
              continue;
            }
            aliases[alias] = state.version;
            const { canary, shadow } = state;
            if (canary || shadow)
              routes[alias] = { ...(canary ? { canary } : {}), ...(shadow ? { shadow } : {}) };
          }
          return {
            name,
            aliases,
            ...(Object.keys(routes).length ? { routes } : {}),
            ...(Object.keys(damaged).length ? { damaged } : {}),
          };
        }),
      );
      if (opts.json) return out(JSON.stringify(models, null, 2));
      if (models.length === 0)
        return out('No models yet: aiaas publish <dir|model.json|model.h5> --model <name> --promote');
      out(
        table([
          ['MODEL', 'ALIASES'],
          ...models.map((m) => [
            m.name,
            [
              ...Object.entries(m.aliases).map(
                ([a, v]) => `${a}→${describeRoutes({ to: v, ...m.routes?.[a] })}`,
              ),
              ...Object.entries(m.damaged ?? {}).map(([a, why]) => `${a}→damaged: ${why}`),
            ].join(' '),
          ]),
        ]),
      );
    });
}
