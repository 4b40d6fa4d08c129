/**
 * Bench section 7, memory: RSS and the tfjs tensor count over 10,000 predictions, on the fast path
 * and on tfjs, through the inference service in this process.
 */
import { type BenchContext, exampleService, log } from '../setup.js';
import { round } from '../stats.js';

export async function memory({ runtime, s3, body }: BenchContext) {
  // Memory over 10,000 predictions.
  log('memory over 10,000 predictions…');
  // Both executors: the fast path (the example's default) and tfjs on wasm, whose tensors must
  // all be freed.
  const memory: Record<string, { rssMB: number[]; tensorCount: number[] }> = {};
  for (const fastPath of ['auto', 'off'] as const) {
    const service = exampleService(s3.registry, runtime, fastPath);
    await service.handle({ kind: 'predict', model: 'diabetes' }, body);
    const rss: number[] = [];
    const tensors: number[] = [];
    for (let i = 0; i < 10_000; i++) {
      await service.handle({ kind: 'predict', model: 'diabetes' }, body);
      if (i % 2_000 === 0 || i === 9_999) {
        rss.push(round(process.memoryUsage().rss / 1e6, 1));
        tensors.push(runtime.tf.memory().numTensors);
      }
    }
    memory[fastPath === 'auto' ? 'fastPath' : 'tfjs'] = { rssMB: rss, tensorCount: tensors };
  }
  const tfjs = memory.tfjs!;
  // Flat: no tensor left behind, and RSS within 10 % of where it started.
  const flat = (m: { rssMB: number[]; tensorCount: number[] }) =>
    m.tensorCount.every((t) => t === m.tensorCount[0]) && Math.max(...m.rssMB) <= 1.1 * m.rssMB[0]!;
  return {
    rssMB: tfjs.rssMB,
    tensorCount: tfjs.tensorCount,
    fastPathRssMB: memory.fastPath!.rssMB,
    flat: flat(tfjs) && flat(memory.fastPath!),
  };
}
