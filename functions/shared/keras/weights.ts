/**
 * Maps the weights stored in a Keras file onto the layers of its config, in the order TF.js loads
 * them: Keras 2 keys them by layer name and lists their names, Keras 3 numbers groups by class.
 * Every layer's first weight is checked against its config, so a wrong match is refused rather
 * than served as wrong outputs.
 */
import h5wasm from 'h5wasm';
import { KerasWeightsError } from './errors.js';
import { type Budget, type H5File, readDataset, stringListAttr } from './hdf5.js';
import { expectedWeights, kernelWidth, type LayerInfo, RECURRENT } from './layer-catalog.js';

export interface NamedWeight {
  name: string;
  shape: number[];
  data: Float32Array;
}

/** Keras 2 HDF5: one group per layer name (under `root`), its weights listed in `weight_names`. */
export function h5Weights(
  h5: H5File,
  root: string,
  layers: LayerInfo[],
  file: string,
  budget: Budget,
): NamedWeight[][] {
  return layers.map((layer) => {
    const expected = expectedWeights(layer);
    if (expected.length === 0) return [];
    const groupPath = root ? `${root}/${layer.name}` : layer.name;
    const group = h5.get(groupPath);
    if (!(group instanceof h5wasm.Group)) {
      throw new KerasWeightsError(`${file}: no weights stored for layer '${layer.name}' (${groupPath})`);
    }
    const stored = stringListAttr(group, 'weight_names');
    if (stored.length !== expected.length) {
      throw new KerasWeightsError(
        `${file}: layer '${layer.name}' (${layer.className}) has ${stored.length} stored weights, expected ${expected.length} (${expected.join(', ')})`,
      );
    }
    // Keras 2 stores `layer.weights` order, which is what `expected` lists; match by the short
    // name when every one is there, so a file with an unusual order still loads right.
    const short = stored.map((name) => name.split('/').pop()?.replace(/:\d+$/, '') ?? name);
    const byName = expected.every((name) => short.includes(name));
    const ws = expected.map((name, i) => {
      const storedName = byName ? stored[short.indexOf(name)]! : stored[i]!;
      return {
        name: `${layer.name}/${name}`,
        ...readDataset(h5, `${groupPath}/${storedName}`, file, budget),
      };
    });
    checkKernel(layer, ws, file);
    return ws;
  });
}

/**
 * Keras 3 model.weights.h5: weights are not keyed by layer name; Keras walks the model's layers in
 * order and names each group after the snake-cased class, numbered per name (dense, dense_1, ...).
 */
export function kerasV3Weights(
  h5: H5File,
  layers: LayerInfo[],
  file: string,
  budget: Budget,
): NamedWeight[][] {
  const used = new Map<string, number>();
  return layers.map((layer) => {
    const base = snakeCase(layer.className);
    const n = used.get(base);
    used.set(base, n === undefined ? 0 : n + 1);
    const key = n === undefined ? base : `${base}_${n + 1}`;
    const expected = expectedWeights(layer);
    // Recurrent layers keep their variables in the cell they wrap.
    const varsPath = RECURRENT.has(layer.className) ? `layers/${key}/cell/vars` : `layers/${key}/vars`;
    const vars = h5.get(varsPath);
    const stored = vars instanceof h5wasm.Group ? vars.keys() : [];
    if (stored.length !== expected.length) {
      throw new KerasWeightsError(
        `${file}: layer '${layer.name}' (${layer.className}) has ${stored.length} stored weights at ${varsPath}, expected ${expected.length}${expected.length ? ` (${expected.join(', ')})` : ''}`,
      );
    }
    const ws = expected.map((name, i) => ({
      name: `${layer.name}/${name}`,
      ...readDataset(h5, `${varsPath}/${i}`, file, budget),
    }));
    // A wrong guess of Keras 3's group order would otherwise show only as wrong outputs.
    checkKernel(layer, ws, file);
    return ws;
  });
}

function checkKernel(layer: LayerInfo, weights: NamedWeight[], file: string): void {
  const want = kernelWidth(layer);
  const shape = weights[0]?.shape;
  if (want === undefined || !shape) return;
  if (shape[shape.length - 1] !== want) {
    throw new KerasWeightsError(
      `${file}: layer '${layer.name}' (${layer.className}) got a stored weight of shape [${shape.join(', ')}], which does not fit its config (last dimension ${want})`,
    );
  }
}

/** Keras 3's `naming.to_snake_case`, which names the weight groups in model.weights.h5. */
function snakeCase(name: string): string {
  return name
    .replace(/\W+/g, '')
    .replace(/(.)([A-Z][a-z]+)/g, '$1_$2')
    .replace(/([a-z])([A-Z])/g, '$1_$2')
    .toLowerCase();
}
