/**
 * Synthetic fleets for the synth bench and tests: N models cloned from a template entry.
 */
import type { ModelSpec } from '../functions/shared/manifest.js';

export interface FleetOptions {
  /** @default 'aiaas' */
  readonly app?: string;
  /** Every `retrainEvery`-th model gets a retraining schedule; 0 for none. @default 5 */
  readonly retrainEvery?: number;
  /** Every `nativeEvery`-th model uses the native (container) runtime; 0 for none. @default 0 */
  readonly nativeEvery?: number;
}

/** A manifest (raw JSON, to be validated by parseManifest) declaring `count` models. */
export function fleetManifest(
  count: number,
  options: FleetOptions = {},
): { app: string; models: Partial<ModelSpec>[] } {
  const retrainEvery = options.retrainEvery ?? 5;
  const nativeEvery = options.nativeEvery ?? 0;
  const models = Array.from({ length: count }, (_, i): Partial<ModelSpec> => {
    const n = i + 1;
    const name = `model-${String(n).padStart(3, '0')}`;
    const retrain = retrainEvery > 0 && n % retrainEvery === 0;
    return {
      name,
      runtime: nativeEvery > 0 && n % nativeEvery === 0 ? 'native' : 'wasm',
      memoryMiB: 1024,
      timeoutSeconds: 30,
      auth: 'AWS_IAM',
      ...(retrain
        ? {
            retrain: { schedule: 'rate(7 days)', timeoutSeconds: 900, memoryMiB: 2048 },
            definition: {
              features: ['a', 'b', 'c'],
              label: 'y',
              standardize: true,
              layers: [{ type: 'dense', units: 1, activation: 'sigmoid' }],
              compile: {
                optimizer: 'adam',
                learningRate: 0.01,
                loss: 'binaryCrossentropy',
                metrics: ['accuracy'],
              },
              fit: { epochs: 10, batchSize: 32, validationSplit: 0.2, seed: 42 },
              gate: { metric: 'val_accuracy', minImprovement: 0, maxRegression: 0 },
            },
          }
        : {}),
    };
  });
  return { app: options.app ?? 'aiaas', models };
}
