/**
 * The console as the local function-URL server mounts it (`npm start`): the server's registry,
 * predictions and rollout figures from the server itself at `localUrl`, model details from the
 * manifest the CLI reads.
 */
import type { ModelRegistry } from '../../functions/shared/registry/registry.js';
import { manifestEntry } from '../retrain.js';
import { localFunctions } from './functions.js';
import { type ConsoleHandler, createConsole } from './server.js';

export function localConsole(registry: ModelRegistry, localUrl: string): ConsoleHandler {
  return createConsole({
    registry,
    functions: localFunctions(localUrl),
    target: `local stack (${registry.store.description})`,
    spec: (model) => manifestEntry(model),
  });
}
