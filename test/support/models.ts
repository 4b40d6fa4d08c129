import { artifactsToFiles, captureIOHandler, signatureOf } from '../../functions/shared/model/artifacts.js';
import type { ModelRegistry } from '../../functions/shared/registry/registry.js';
import type { VersionMetadata } from '../../functions/shared/registry/types.js';
import type { TfRuntime } from '../../functions/shared/runtime/types.js';

/**
 * A linear model y = w·x + b on 3 features, with weights chosen by the test so the expected output
 * is known exactly.
 */
export async function publishLinear(
  runtime: TfRuntime,
  registry: ModelRegistry,
  model: string,
  weights: readonly [number, number, number],
  bias: number,
  options: { promote?: boolean } = {},
): Promise<VersionMetadata> {
  const { tf, layers } = runtime;
  const net = layers.sequential({
    layers: [layers.layers.dense({ units: 1, inputShape: [3] })],
  });
  net.layers[0]!.setWeights([tf.tensor2d([...weights], [3, 1]), tf.tensor1d([bias])]);
  const capture = captureIOHandler();
  await net.save(capture);
  const signature = signatureOf(runtime, net);
  net.dispose();
  const metadata = await registry.publish(model, artifactsToFiles(capture.artifacts!), {
    format: 'layers-model',
    signature,
    metrics: {},
    source: { kind: 'publish', test: true },
    parent: null,
  });
  if (options.promote) await registry.setAlias(model, 'live', metadata.version);
  return metadata;
}

export const linear = (w: readonly number[], b: number, x: readonly number[]) =>
  w.reduce((s, wi, i) => s + wi * x[i]!, b);
