/**
 * `aiaas console [--port]`: the registry console (cli/console) on 127.0.0.1 for the registry the
 * CLI targets. Against the local stack, predictions go to its function-URL server; against a
 * deployed registry (AIAAS_BUCKET), to each model's function URL, SigV4-signed with the caller's
 * AWS credentials — URLs from `--function-url <model>=<url>` and/or a `cdk deploy --outputs-file`
 * JSON (`--outputs`). Nothing is deployed and nothing listens beyond loopback.
 */
import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import { ConfigurationError } from '../functions/shared/errors.js';
import { loadManifest } from '../functions/shared/manifest.js';
import {
  deployedFunctions,
  functionUrlsFromOutputs,
  localFunctions,
  parseFunctionUrlFlags,
} from './console/functions.js';
import { startConsoleServer } from './console/server.js';
import { resolveTarget } from './context.js';
import { manifestEntry, manifestPath } from './retrain.js';

export const DEFAULT_CONSOLE_PORT = 8090;

interface ConsoleFlags {
  readonly port: number;
  readonly functionUrl: string[];
  readonly outputs?: string;
}

function portArg(value: string): number {
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65_535)
    throw new InvalidArgumentError('must be a port number (0-65535; 0 picks a free one)');
  return port;
}

/** Function URLs by model: the outputs file's, then the flags' (a flag wins). */
async function functionUrls(
  flags: ConsoleFlags,
  models: () => Promise<string[]>,
): Promise<Map<string, string>> {
  const urls = flags.outputs
    ? functionUrlsFromOutputs(flags.outputs, loadManifest(manifestPath()).app, await models())
    : new Map<string, string>();
  for (const [model, url] of parseFunctionUrlFlags(flags.functionUrl)) urls.set(model, url);
  return urls;
}

export function consoleCommand(program: Command, io: { out: (line?: string) => void }): void {
  program
    .command('console')
    .description(
      'serve the registry console (models, versions, curves, history, try it, promote) on 127.0.0.1',
    )
    .option(
      '-p, --port <port>',
      `port on 127.0.0.1 (default ${DEFAULT_CONSOLE_PORT})`,
      portArg,
      DEFAULT_CONSOLE_PORT,
    )
    .option(
      '--function-url <model=url>',
      'a deployed model\'s function URL, for "try it" and its OpenAPI document (repeatable)',
      (value: string, previous: string[]) => [...previous, value],
      [] as string[],
    )
    .option('--outputs <file>', "a `cdk deploy --outputs-file` JSON: each model stack's FunctionUrl output")
    .action(async (flags: ConsoleFlags) => {
      const target = resolveTarget();
      // The local stack's own server, unless function URLs are given (then those, as deployed).
      const named = flags.functionUrl.length > 0 || flags.outputs !== undefined;
      const functions =
        target.localUrl && !named
          ? localFunctions(target.localUrl)
          : deployedFunctions(await functionUrls(flags, () => target.registry.listModels()));
      const server = await startConsoleServer({
        registry: target.registry,
        functions,
        target: target.description,
        spec: (model) => manifestEntry(model),
        port: flags.port,
      }).catch((error: NodeJS.ErrnoException) => {
        if (error.code !== 'EADDRINUSE') throw error;
        throw new ConfigurationError(`port ${flags.port} on 127.0.0.1 is taken: pass another with --port`);
      });
      io.out(`aiaas console for ${target.description}: ${server.url}/  (Ctrl-C stops it)`);
      await new Promise<void>((resolve) => {
        const stop = () => void server.close().then(resolve);
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
    });
}
