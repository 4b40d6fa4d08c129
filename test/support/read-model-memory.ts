/**
 * Run in a fresh process (`node --import tsx`): reads model files, one after the other, the way
 * `aiaas publish` does, and prints one JSON line per file: how the read ended and how far the
 * process's peak RSS rose above its RSS just before. The peak only ever rises, so each figure is
 * an upper bound on that read's growth: a read that took more memory would show in it.
 */
import { readArtifacts } from '../../cli/publish.js';

// Loaded before measuring: the converter's own code and wasm are not what is measured.
await import('../../functions/shared/keras/convert.js');
for (const file of process.argv.slice(2)) {
  const before = process.memoryUsage();
  let outcome: Record<string, unknown>;
  try {
    const { artifacts } = await readArtifacts(file);
    outcome = { ok: true, weightSpecs: artifacts.weightSpecs?.length ?? 0 };
  } catch (error) {
    outcome = { ok: false, name: (error as Error).name, message: (error as Error).message };
  }
  const after = process.memoryUsage();
  process.stdout.write(
    `${JSON.stringify({
      file,
      ...outcome,
      growth: process.resourceUsage().maxRSS * 1024 - before.rss,
      arrayBuffersGrowth: after.arrayBuffers - before.arrayBuffers,
    })}\n`,
  );
}
