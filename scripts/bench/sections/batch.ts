/**
 * Bench section 3, batch: instances per second by batch size, on the fast path and on each tfjs
 * backend, through the inference service in this process.
 */
import type { TfRuntime } from '../../../functions/shared/runtime/types.js';
import { type BenchContext, exampleService, log } from '../setup.js';
import { round } from '../stats.js';

export async function batch({ runtime, s3, quick }: BenchContext) {
  // Batch: instances per second by batch size and backend.
  log('batch…');
  const batch: Record<string, Record<string, number>> = {};
  // The example model takes the fast path; the tfjs rows turn it off to measure the backends.
  const kinds: ('fast-path' | TfRuntime['kind'])[] = ['fast-path', 'wasm', 'cpu'];
  for (const kind of kinds) {
    const backend = kind === 'fast-path' ? 'wasm' : kind;
    await runtime.tf.setBackend(backend);
    const service = exampleService(
      s3.registry,
      { ...runtime, kind: backend },
      kind === 'fast-path' ? 'auto' : 'off',
    );
    batch[kind] = {};
    for (const size of [1, 100, 10_000]) {
      const request = JSON.stringify({
        instances: Array.from({ length: size }, () => [6, 148, 72, 35, 0, 33.6, 0.627, 50]),
      });
      await service.handle({ kind: 'predict', model: 'diabetes' }, request);
      const iterations = Math.max(3, Math.round((quick ? 20_000 : 60_000) / size / (size === 1 ? 0.02 : 1)));
      const capped = Math.min(iterations, size === 1 ? 3_000 : iterations);
      const started = performance.now();
      for (let i = 0; i < capped; i++) await service.handle({ kind: 'predict', model: 'diabetes' }, request);
      batch[kind]![String(size)] = round((capped * size) / ((performance.now() - started) / 1000), 0);
    }
  }
  await runtime.tf.setBackend('wasm');
  return {
    instancesPerSecond: batch,
    note: 'tfjs-node is not installable here; the native runtime is measured where it is',
  };
}
