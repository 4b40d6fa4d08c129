/**
 * What fits in one Lambda run (15 minutes, at most 10 GB), and how a job is sized against it
 * before any training starts, so a job that cannot fit is refused with a clear message.
 *
 * Time. For networks of this size tfjs spends its time on per-batch overhead (a dozen kernels
 * forward and backward, each dispatched from JavaScript), not arithmetic. So a step costs a fixed
 * time (`secondsPerStep`: the example network's measured time per step on a laptop core, doubled
 * for a slower Lambda vCPU) plus the arithmetic at a conservative single-threaded matmul rate:
 * forward + backward ≈ 3× the forward multiply-adds per training row, 1× per validation row,
 * every epoch. Of the function's timeout, `reservedSeconds` are kept for reading data, loading the
 * live version, publishing and the alias move, and training gets `trainingShare` of the rest;
 * training also stops itself at that deadline, so an underestimate fails cleanly instead of being
 * killed mid-run. The measurement behind the constants: docs/benchmarks.md, "Retraining".
 *
 * Memory. Parsing a CSV with csv-parse/sync holds every field as a JS string plus the row arrays,
 * then the numbers accumulated and their float32 copies (train/validation split, the tensors, the
 * per-epoch shuffled copy). `heapBytesPerCsvByte` bounds all of it, so the data may total
 * memoryMiB / 16 (128 MiB of CSV at the default 2,048 MiB).
 *
 * Larger jobs: train outside Lambda, on an AWS Batch or ECS Fargate task or a SageMaker training
 * job (hours, up to 120 GB on Fargate, GPUs on SageMaker) running the same `retrain()` with
 * `limits` raised, or stream the data in with `model.fitDataset` there; the registry, gate and
 * alias move are the same wherever it runs.
 */
import type { ModelDefinition } from '../manifest.js';

export const BUDGET = {
  /** Per-batch overhead: the example network's step on a laptop core, doubled for a Lambda vCPU. */
  secondsPerStep: 0.002,
  /** Single-threaded JavaScript/WebAssembly matmul, conservatively. */
  multiplyAddsPerSecond: 2.5e8,
  reservedSeconds: 60,
  trainingShare: 0.8,
  /** Heap per byte of CSV, parsing and copies together (docs/benchmarks.md, "Retraining"). */
  heapBytesPerCsvByte: 16,
} as const;

export interface TrainingLimits {
  /** The function's timeout. @default spec.retrain.timeoutSeconds ?? 900 */
  readonly timeoutSeconds: number;
  /** The function's memory. @default spec.retrain.memoryMiB ?? 2048 */
  readonly memoryMiB: number;
}

/** Multiply-adds of one forward pass of the definition's network (standardization included). */
export function forwardMultiplyAdds(definition: ModelDefinition): number {
  let inputs = definition.features.length;
  let total = definition.standardize ? inputs * inputs : 0;
  for (const layer of definition.layers) {
    total += inputs * layer.units;
    inputs = layer.units;
  }
  return total;
}

/** Estimated training seconds for this many train and validation rows (see BUDGET). */
export function estimateTrainingSeconds(
  definition: ModelDefinition,
  trainRows: number,
  validationRows: number,
): number {
  const { epochs, batchSize } = definition.fit;
  const macs = forwardMultiplyAdds(definition);
  const perEpoch =
    Math.ceil(trainRows / batchSize) * BUDGET.secondsPerStep +
    (trainRows * 3 * macs + validationRows * macs) / BUDGET.multiplyAddsPerSecond;
  return epochs * perEpoch;
}

/** Seconds of the timeout given to training. */
export function trainingBudgetSeconds(limits: TrainingLimits): number {
  return (limits.timeoutSeconds - BUDGET.reservedSeconds) * BUDGET.trainingShare;
}
