/**
 * Warm Lambda execution environments for local batch jobs: worker threads, each importing the
 * built inference bundle once and keeping its batch handler (and so the version it pinned) warm,
 * as one Lambda execution environment does. Contract:
 * - `invoke` takes the task's input as JSON text and gives its output as JSON text: the handler
 *   sees a parse of the text, as Lambda's runtime hands it one, never the caller's objects;
 * - a thrown error comes back as Lambda reports it: an Error whose name is its errorType, with its
 *   message and the environment's stack;
 * - calls wait for a free environment; at most `size` run at once, each environment one call at a
 *   time (as Lambda sends one event to one environment);
 * - an environment that exits or cannot start fails its call with `Runtime.ExitError` and is
 *   started afresh for the next call; one idle for IDLE_MS is stopped (the next call is a cold
 *   start), and idle ones never keep the process alive.
 */
import { Worker } from 'node:worker_threads';
import type { InferenceConfig } from '../../../functions/inference/config.js';

/** An idle environment is stopped after this long, freeing its model. */
export const IDLE_MS = 5 * 60 * 1000;

export interface LambdaPoolOptions {
  /** The built bundle (its `createBatchHandler`), as a file URL. */
  readonly bundle: string;
  readonly config: InferenceConfig;
  /** Environments at most. */
  readonly size: number;
}

interface Call {
  readonly text: string;
  resolve(text: string): void;
  reject(error: Error): void;
}

/** What an environment posts back for one call. */
type Reply =
  | { readonly text: string }
  | { readonly error: { errorType: string; errorMessage: string; trace: string[] } };

/**
 * The environment's code, an ES module from a data: URL (no loader is needed, whatever runs the
 * parent): the bundle is imported once, then each message is one invocation.
 */
const ENVIRONMENT = `
import { parentPort, workerData } from 'node:worker_threads';
const handler = import(workerData.bundle).then((mod) => {
  if (typeof mod.createBatchHandler !== 'function') {
    throw new Error(workerData.bundle + ' exports no createBatchHandler: run npm run build');
  }
  return mod.createBatchHandler(workerData.config);
});
handler.catch(() => {});
parentPort.on('message', async (text) => {
  try {
    const output = await (await handler)(JSON.parse(text));
    parentPort.postMessage({ text: JSON.stringify(output === undefined ? null : output) });
  } catch (e) {
    const error = e instanceof Error ? e : new Error(String(e));
    parentPort.postMessage({
      error: { errorType: error.name || 'Error', errorMessage: error.message, trace: String(error.stack || '').split('\\n') },
    });
  }
});
`;
const ENVIRONMENT_URL = new URL(`data:text/javascript,${encodeURIComponent(ENVIRONMENT)}`);

/** One environment: its thread and the call it runs. */
interface Environment {
  readonly worker: Worker;
  call: Call | undefined;
  idle: NodeJS.Timeout | undefined;
}

/** See the module comment. */
export class LambdaPool {
  private readonly environments = new Set<Environment>();
  private readonly free: Environment[] = [];
  private readonly waiting: Call[] = [];

  constructor(private readonly options: LambdaPoolOptions) {}

  invoke(text: string): Promise<string> {
    return new Promise<string>((resolve, reject) => {
      this.waiting.push({ text, resolve, reject });
      this.dispatch();
    });
  }

  /** Stops every environment; calls in flight fail. */
  async close(): Promise<void> {
    const all = [...this.environments];
    this.environments.clear();
    this.free.length = 0;
    await Promise.all(all.map((e) => e.worker.terminate()));
  }

  private dispatch(): void {
    while (this.waiting.length > 0) {
      const environment =
        this.free.pop() ?? (this.environments.size < this.options.size ? this.start() : undefined);
      if (!environment) return;
      const call = this.waiting.shift()!;
      clearTimeout(environment.idle);
      environment.call = call;
      environment.worker.ref();
      environment.worker.postMessage(call.text);
    }
  }

  private start(): Environment {
    // No flags of this process (a TypeScript loader, say): the environment runs the built bundle alone.
    const worker = new Worker(ENVIRONMENT_URL, {
      execArgv: [],
      workerData: { bundle: this.options.bundle, config: this.options.config },
    });
    const environment: Environment = { worker, call: undefined, idle: undefined };
    this.environments.add(environment);
    worker.on('message', (reply: Reply) => {
      const call = environment.call;
      environment.call = undefined;
      this.release(environment);
      if (!call) return;
      if ('text' in reply) call.resolve(reply.text);
      else call.reject(lambdaError(reply.error));
    });
    const end = (reason: string) => {
      if (!this.environments.delete(environment)) return;
      clearTimeout(environment.idle);
      const at = this.free.indexOf(environment);
      if (at >= 0) this.free.splice(at, 1);
      const call = environment.call;
      environment.call = undefined;
      call?.reject(lambdaError({ errorType: 'Runtime.ExitError', errorMessage: reason, trace: [] }));
      this.dispatch();
    };
    worker.on('error', (error) => end(`The execution environment failed: ${error.message}`));
    worker.on('exit', (code) => end(`The execution environment exited with code ${code}`));
    return environment;
  }

  /** Back to the free list, not keeping the process alive; stopped after IDLE_MS unused. */
  private release(environment: Environment): void {
    if (!this.environments.has(environment)) return;
    environment.worker.unref();
    this.free.push(environment);
    environment.idle = setTimeout(() => {
      if (environment.call || !this.environments.delete(environment)) return;
      this.free.splice(this.free.indexOf(environment), 1);
      void environment.worker.terminate();
    }, IDLE_MS);
    environment.idle.unref();
    this.dispatch();
  }
}

function lambdaError(reply: { errorType: string; errorMessage: string; trace: string[] }): Error {
  const error = new Error(reply.errorMessage);
  error.name = reply.errorType;
  error.stack = reply.trace.join('\n') || `${reply.errorType}: ${reply.errorMessage}`;
  return error;
}
