/**
 * `aiaas`: publish, promote, roll back, retrain and call models. Talks to the local stack when it
 * runs (`npm start`), else to the registry named by AIAAS_BUCKET (+ AIAAS_S3_ENDPOINT).
 */

import { readFile, writeFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { SingleBar } from 'cli-progress';
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { parseRequestJson } from '../functions/inference/json.js';
import { AiaasError, ValidationError } from '../functions/shared/errors.js';
import {
  assertAliasName,
  assertModelName,
  DEFAULT_ALIAS,
  parseVersion,
} from '../functions/shared/registry/layout.js';
import type { ModelRegistry } from '../functions/shared/registry/registry.js';
import { describeMove } from '../functions/shared/registry/routes.js';
import { createRuntime } from '../layers/tfjs-runtime/runtime.js';
import { batchCommand } from './batch.js';
import { consoleCommand } from './console-command.js';
import { resolveTarget } from './context.js';
import { gcCommand } from './gc.js';
import { modelsCommand } from './models.js';
import { publishFromDisk } from './publish.js';
import { manifestEntry, retrainCommand } from './retrain.js';
import { rolloutCommands } from './rollout.js';
import { regionOfFunctionUrl, signedFetchInit } from './sign.js';
import { table } from './table.js';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const out = (line = ''): void => {
  process.stdout.write(`${line}\n`);
};
const note = (line: string): void => {
  process.stderr.write(`${line}\n`);
};

/** Turns a registry name check into a commander argument parser (a one-line usage error). */
function cliArg<T>(check: (value: string) => T): (value: string) => T {
  return (value) => {
    try {
      return check(value);
    } catch (error) {
      throw new InvalidArgumentError((error as Error).message);
    }
  };
}
const modelArg = cliArg(assertModelName);
const aliasArg = cliArg(assertAliasName);
const versionArg = cliArg(parseVersion);

/** The alias a model is served under: the manifest's, for models it declares; else live. */
function aliasOf(model: string): string {
  return manifestEntry(model)?.alias ?? DEFAULT_ALIAS;
}

function bytes(n: number): string {
  return n >= 1e6 ? `${(n / 1e6).toFixed(1)} MB` : n >= 1e3 ? `${(n / 1e3).toFixed(1)} kB` : `${n} B`;
}

function progressBar(label: string) {
  const bar = new SingleBar({
    format: `${label} [{bar}] {percentage}% | {value_h}/{total_h}`,
    hideCursor: true,
    stream: process.stderr,
    noTTYOutput: false,
    formatValue: (v, _o, type) => (type === 'value' || type === 'total' ? bytes(v) : String(v)),
  });
  let started = false;
  return {
    update(done: number, total: number) {
      if (!started) {
        bar.start(total, done, { value_h: bytes(done), total_h: bytes(total) });
        started = true;
      }
      bar.update(done, { value_h: bytes(done), total_h: bytes(total) });
    },
    stop: () => started && bar.stop(),
  };
}

async function aliasesByVersion(registry: ModelRegistry, model: string): Promise<Map<number, string[]>> {
  const aliases = await registry.listAliases(model);
  const byVersion = new Map<number, string[]>();
  for (const [alias, version] of Object.entries(aliases))
    byVersion.set(version, [...(byVersion.get(version) ?? []), alias]);
  return byVersion;
}

export function buildProgram(): Command {
  const program = new Command('aiaas')
    .description('Publish, promote, roll back, retrain and call TensorFlow.js models served by aiaas')
    .exitOverride();

  modelsCommand(program, { out });

  program
    .command('publish')
    .description('publish a TF.js model (folder or model.json) or a Keras .h5/.keras file as a new version')
    .argument('<path>', 'model folder, model.json, model.h5 or model.keras')
    .requiredOption('-m, --model <name>', 'model name in the registry', modelArg)
    .option('--promote', 'move the alias to the new version')
    .option(
      '-a, --alias <alias>',
      "alias to move with --promote (default: the manifest's, else live)",
      aliasArg,
    )
    .option('--why <reason>', 'reason recorded in the alias history')
    .action(
      async (path: string, opts: { model: string; promote?: boolean; alias?: string; why?: string }) => {
        const { registry, description } = resolveTarget();
        const runtime = await createRuntime('cpu');
        const bar = progressBar(`uploading ${basename(path)}`);
        const { metadata, event } = await publishFromDisk(registry, runtime, path, {
          model: opts.model,
          alias: opts.alias ?? aliasOf(opts.model),
          ...(opts.promote ? { promote: true } : {}),
          ...(opts.why ? { why: opts.why } : {}),
          onProgress: (done, total) => bar.update(done, total),
          warn: (w) => note(`warning: ${w}`),
        }).finally(() => bar.stop());
        const size = Object.values(metadata.files).reduce((n, f) => n + f.size, 0);
        out(
          `Published ${opts.model} v${metadata.version} to ${description} (${Object.keys(metadata.files).length} files, ${bytes(size)})`,
        );
        const sig = metadata.signature;
        out(
          `  inputs:  ${sig.inputs.map((s) => `${s.name} ${s.dtype}[${s.shape.map((d) => d ?? -1).join(',')}]`).join(', ')}`,
        );
        out(
          `  outputs: ${sig.outputs.map((s) => `${s.name} ${s.dtype}[${s.shape.map((d) => d ?? -1).join(',')}]`).join(', ')}`,
        );
        if (event)
          out(
            `Promoted ${opts.model}@${event.alias}: ${event.from === null ? 'none' : `v${event.from}`} → v${event.to}`,
          );
        else out(`Not promoted; serve it with: aiaas promote ${opts.model} ${metadata.version}`);
      },
    );

  program
    .command('versions')
    .description('list the versions of a model with their metrics and aliases')
    .argument('<model>', 'model name', modelArg)
    .option('--json', 'machine-readable output')
    .action(async (model: string, opts: { json?: boolean }) => {
      const { registry } = resolveTarget();
      const versions = await registry.listVersions(model);
      const [metas, aliases] = await Promise.all([
        Promise.all(versions.map((v) => registry.getMetadata(model, v))),
        aliasesByVersion(registry, model),
      ]);
      const rows = metas.map((m) => ({
        version: m.version,
        createdAt: m.createdAt,
        createdBy: m.createdBy,
        source: m.source,
        parent: m.parent,
        metrics: m.metrics,
        aliases: aliases.get(m.version) ?? [],
        report: m.report ?? {},
        training: m.training,
      }));
      if (opts.json) return out(JSON.stringify({ model, versions: rows }, null, 2));
      if (rows.length === 0) return out(`Model "${model}" has no versions`);
      const metric = (r: (typeof rows)[number]) =>
        ['val_accuracy', 'accuracy', 'val_loss', 'loss']
          .filter((k) => r.metrics[k] !== undefined)
          .map((k) => `${k}=${r.metrics[k]!.toFixed(4)}`)
          .join(' ');
      out(
        table([
          ['VERSION', 'CREATED', 'SOURCE', 'ALIASES', 'METRICS', 'REPORT'],
          ...rows.map((r) => [
            `v${r.version}`,
            r.createdAt.replace('T', ' ').slice(0, 19),
            r.source.kind,
            r.aliases.join(','),
            metric(r),
            Object.values(r.report)[0] ?? '',
          ]),
        ]),
      );
    });

  program
    .command('report')
    .description("save a version's training report (loss and accuracy curves, SVG) to a file")
    .argument('<model>', 'model name', modelArg)
    .argument('[version]', 'version number (default: the live one)', versionArg)
    .option('-o, --out <file>', 'where to write it (default: <model>-v<version>-training-report.svg)')
    .action(async (model: string, version: number | undefined, opts: { out?: string }) => {
      const { registry } = resolveTarget();
      const v = version ?? (await registry.getAlias(model, aliasOf(model)))?.version;
      if (v === undefined)
        throw new ValidationError(`${model} has no live version; name one: aiaas report ${model} <version>`);
      const key = (await registry.getMetadata(model, v)).report?.lossCurve;
      if (!key?.startsWith(`models/${model}/reports/${v}/`)) {
        throw new ValidationError(`${model} v${v} has no training report (only retrained versions have one)`);
      }
      const object = await registry.store.get(key);
      if (!object) throw new ValidationError(`${model} v${v}: the report ${key} is missing`);
      const file = opts.out ?? `${model}-v${v}-training-report.svg`;
      await writeFile(file, object.body);
      out(`Wrote ${file} (${bytes(object.body.byteLength)})`);
    });

  program
    .command('promote')
    .description(
      'point an alias (default: the manifest alias, else live) at a version; functions serve it within their re-check interval',
    )
    .argument('<model>', 'model name', modelArg)
    .argument('<version>', 'version number', versionArg)
    .option('-a, --alias <alias>', "alias to move (default: the manifest's, else live)", aliasArg)
    .option('--why <reason>', 'reason recorded in the alias history')
    .action(async (model: string, version: number, opts: { alias?: string; why?: string }) => {
      const { registry } = resolveTarget();
      const event = await registry.setAlias(model, opts.alias ?? aliasOf(model), version, {
        why: opts.why ?? 'promoted by hand',
      });
      out(`${model}@${event.alias}: ${event.from === null ? 'none' : `v${event.from}`} → v${event.to}`);
    });

  program
    .command('rollback')
    .description('move an alias back to the version it pointed to before')
    .argument('<model>', 'model name', modelArg)
    .option('-a, --alias <alias>', "alias to move (default: the manifest's, else live)", aliasArg)
    .option('--why <reason>', 'reason recorded in the alias history')
    .action(async (model: string, opts: { alias?: string; why?: string }) => {
      const { registry } = resolveTarget();
      const event = await registry.rollback(model, opts.alias ?? aliasOf(model), {
        why: opts.why ?? 'rolled back by hand',
      });
      out(`${model}@${event.alias} rolled back: v${event.from} → v${event.to}`);
    });

  program
    .command('history')
    .description("show an alias's history: every move, when, by whom and why")
    .argument('<model>', 'model name', modelArg)
    .option('-a, --alias <alias>', "alias (default: the manifest's, else live)", aliasArg)
    .option('--json', 'machine-readable output')
    .action(async (model: string, opts: { alias?: string; json?: boolean }) => {
      const { registry } = resolveTarget();
      const alias = opts.alias ?? aliasOf(model);
      const [events, unfinished] = await Promise.all([
        registry.history(model, alias),
        registry.unfinishedMoves(model, alias),
      ]);
      if (opts.json) return out(JSON.stringify({ model, alias, events, unfinished }, null, 2));
      for (const e of unfinished) {
        note(
          `unfinished: ${e.kind} v${e.from ?? 'none'} → v${e.to} by ${e.who} at ${e.at} (its mover stopped before the alias moved; the next move completes it)`,
        );
      }
      if (events.length === 0) return out(`${model}@${alias} has never been set`);
      out(
        table([
          ['SEQ', 'WHEN', 'KIND', 'MOVE', 'WHO', 'WHY'],
          ...events.map((e, i) => [
            String(e.seq),
            e.at.replace('T', ' ').slice(0, 19),
            e.kind,
            describeMove(e, events[i - 1]),
            e.who,
            e.why,
          ]),
        ]),
      );
    });

  program
    .command('predict')
    .description('call a model: the local stack, or a deployed function URL (SigV4-signed for IAM auth)')
    .argument('<model>', 'model name', modelArg)
    .requiredOption(
      '-d, --data <json>',
      'request body: {"instances": [...]}, a bare list of instances, or @file.json',
    )
    .option('--url <functionUrl>', 'a deployed function URL (default: the local stack)')
    .option('--no-sign', 'do not sign (for function URLs with auth NONE)')
    .option('--region <region>', 'region for signing (default: from the URL)')
    .action(async (model: string, opts: { data: string; url?: string; sign: boolean; region?: string }) => {
      const text = opts.data.startsWith('@') ? await readFile(opts.data.slice(1), 'utf8') : opts.data;
      let parsed: unknown;
      try {
        // TF Serving's JSON: NaN and Infinity tokens are valid for float inputs.
        parsed = parseRequestJson(text).value;
      } catch (error) {
        throw new ValidationError(`--data is not valid JSON: ${(error as Error).message}`);
      }
      // Sent as written (JSON.stringify would turn NaN into null); a bare list becomes the instances.
      const body = Array.isArray(parsed) ? `{"instances": ${text}}` : text;
      let url: URL;
      let init: RequestInit;
      if (opts.url) {
        url = new URL(`v1/models/${model}:predict`, opts.url.endsWith('/') ? opts.url : `${opts.url}/`);
        init =
          opts.sign && regionOfFunctionUrl(url) !== undefined
            ? await signedFetchInit(url, 'POST', body, opts.region)
            : { method: 'POST', headers: { 'content-type': 'application/json' }, body };
      } else {
        const { localUrl } = resolveTarget();
        if (!localUrl)
          throw new ValidationError('No local stack: pass --url <functionUrl> of a deployed model');
        url = new URL(`/v1/models/${model}:predict`, localUrl);
        init = { method: 'POST', headers: { 'content-type': 'application/json' }, body };
      }
      const response = await fetch(url, init);
      const answer = await response.text();
      if (!response.ok) {
        let message = answer;
        try {
          message = (JSON.parse(answer) as { error?: string; message?: string }).error ?? message;
        } catch {}
        throw new AiaasError(`${response.status} from ${url.origin}: ${message}`);
      }
      // Printed as the function wrote it: re-serializing would write 4.0 as 4 and NaN as null.
      out(answer);
    });

  retrainCommand(program, { out, note, modelArg });
  batchCommand(program, { out, note, modelArg });
  gcCommand(program, { out, note, modelArg });
  rolloutCommands(program, { out, note, modelArg, aliasArg, versionArg });
  consoleCommand(program, { out });
  return program;
}

/** Runs the CLI; errors become one line on stderr and a non-zero exit. */
export async function main(argv = process.argv): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode;
    const message = error instanceof Error ? error.message : String(error);
    note(`aiaas: ${message}`);
    return error instanceof ValidationError || (error as AiaasError).status === 400 ? 2 : 1;
  }
}

process.exitCode = await main();
