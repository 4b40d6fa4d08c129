/**
 * A function configured `native` whose tfjs-node does not load (as on an arm64 image with an
 * x86-64 addon) still serves, on wasm, and says so loudly: an ERROR line at load and the metadata's
 * `aiaas.runtime` naming the backend that really runs. Unit level: the runtime module with an
 * injected tfjs-node import that fails, a memory registry, the real handler.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_LIMITS } from '../../functions/inference/api.js';
import { createHandler } from '../../functions/inference/handler.js';
import type { Log } from '../../functions/inference/service.js';
import { ModelRegistry } from '../../functions/shared/registry/registry.js';
import { runtimePreference } from '../../functions/shared/runtime/load.js';
import type { RuntimePreference, TfRuntime } from '../../functions/shared/runtime/types.js';
import { initRuntime } from '../../layers/tfjs-runtime/runtime.js';
import { MemoryObjectStore } from '../support/memory-store.js';
import { publishLinear } from '../support/models.js';

const MODEL = 'lin';
const brokenAddon = () =>
  Promise.reject(
    new Error(
      '/opt/node_modules/@tensorflow/tfjs-node/lib/napi-v8/tfjs_binding.node: wrong ELF class: ELFCLASS64\nRequire stack: ...',
    ),
  );

let store: MemoryObjectStore;

beforeAll(async () => {
  store = new MemoryObjectStore();
  const cpu = await initRuntime('cpu', undefined);
  await publishLinear(cpu, new ModelRegistry(store), MODEL, [1, 2, 3], 0.5, { promote: true });
});

/** The function's answers and log lines, with tfjs-node importing as `importNative` does. */
async function serve(requested: RuntimePreference, importNative = brokenAddon) {
  const runtime: TfRuntime = await initRuntime(requested, undefined, importNative);
  const lines: { level: string; message: string; extra: Record<string, unknown> }[] = [];
  const push = (level: string) => (message: string, extra?: Record<string, unknown>) =>
    lines.push({ level, message, extra: extra ?? {} });
  const log: Log = { info: push('info'), warn: push('warn'), error: push('error') };
  const handler = createHandler(
    // fastPath off: this small dense model would otherwise be served without tfjs at all.
    {
      bucket: 'test',
      model: MODEL,
      alias: 'live',
      aliasCheckSeconds: 60,
      limits: DEFAULT_LIMITS,
      fastPath: 'off',
    },
    { store, runtime: async () => runtime, log },
  );
  const get = (rawPath: string, method = 'GET', body?: string) =>
    handler({ rawPath, ...(body ? { body } : {}), requestContext: { http: { method }, requestId: 'r' } });
  const metadata = await get(`/v1/models/${MODEL}/metadata`);
  const predict = await get(`/v1/models/${MODEL}:predict`, 'POST', '{"instances": [[1, 1, 1]]}');
  return { runtime, lines, metadata, predict };
}

describe('a native function whose tfjs-node does not load', () => {
  it('falls back in the runtime module, recording what was asked for and why it was passed over', async () => {
    const runtime = await initRuntime('native', undefined, brokenAddon);
    expect(runtime.kind).toBe('wasm');
    expect(runtime.requested).toBe('native');
    expect(runtime.notes).toEqual([
      expect.stringMatching(
        /^native runtime unavailable \(@tensorflow\/tfjs-node: .*wrong ELF class: ELFCLASS64\)$/,
      ),
    ]);
  });

  it('keeps serving, logs an ERROR naming both runtimes, and its metadata says what runs', async () => {
    const { lines, metadata, predict } = await serve('native');
    expect(metadata.statusCode).toBe(200);
    expect(JSON.parse(metadata.body).aiaas.runtime).toBe('wasm');
    expect(predict.statusCode).toBe(200);
    expect(JSON.parse(predict.body).predictions[0][0]).toBeCloseTo(6.5, 5);
    const errors = lines.filter((line) => line.level === 'error');
    expect(errors).toEqual([
      {
        level: 'error',
        message: 'configured tfjs runtime did not load',
        extra: {
          requested: 'native',
          runtime: 'wasm',
          notes: [expect.stringContaining('wrong ELF class')],
        },
      },
    ]);
  });

  it('logs no error when the configured runtime runs, or when the choice was left to auto', async () => {
    for (const requested of ['wasm', 'auto'] as const) {
      const { lines, metadata } = await serve(requested);
      expect(JSON.parse(metadata.body).aiaas.runtime).toBe('wasm');
      expect(lines.filter((line) => line.level === 'error')).toEqual([]);
    }
  });
});

describe('AIAAS_RUNTIME', () => {
  it('is checked, so a misspelt value does not quietly run on another backend', () => {
    expect(runtimePreference({})).toBe('auto');
    expect(runtimePreference({ AIAAS_RUNTIME: 'native' })).toBe('native');
    expect(() => runtimePreference({ AIAAS_RUNTIME: 'natve' })).toThrow(
      /AIAAS_RUNTIME must be auto, native, wasm or cpu, got "natve"/,
    );
  });
});
