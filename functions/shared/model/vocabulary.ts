/**
 * Which inputs of a layers model are ids: an input feeding an Embedding layer (directly, or through
 * layers that only move values) takes integers from 0 to the layer's `input_dim` - 1, and tfjs's
 * gather throws on any other. The signature records it so requests are checked before tfjs.
 */
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { embeddingInputDim } from './tfjs-internals.js';

/** Layers that move an input's values without changing them: an Embedding after them still takes ids. */
const MOVES_VALUES = new Set([
  'Reshape',
  'Flatten',
  'Dropout',
  'Permute',
  'RepeatVector',
  'SpatialDropout1D',
]);

/**
 * The smallest `input_dim` of the Embedding layers an input feeds, directly or through layers that
 * only move values: tfjs's gather throws on an id outside it, so requests are checked against it.
 */
export function vocabularyOf(model: LayersModel, input: LayersModel['inputs'][number]): number | undefined {
  let smallest: number | undefined;
  const pending = [input];
  const seen = new Set(pending);
  while (pending.length > 0) {
    const tensor = pending.pop()!;
    for (const layer of model.layers) {
      for (const node of layer.inboundNodes) {
        if (!node.inputTensors.includes(tensor)) continue;
        const kind = layer.getClassName();
        const dim = embeddingInputDim(layer);
        if (kind === 'Embedding' && typeof dim === 'number') smallest = Math.min(smallest ?? dim, dim);
        if (!MOVES_VALUES.has(kind)) continue;
        for (const out of node.outputTensors) {
          if (!seen.has(out)) {
            seen.add(out);
            pending.push(out);
          }
        }
      }
    }
  }
  return smallest;
}
