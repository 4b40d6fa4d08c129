import type { io } from '@tensorflow/tfjs-core';

const float = { type: 'DT_FLOAT' };
const shape = (...dims: number[]) => ({ dim: dims.map((size) => ({ size: String(size) })) });

/**
 * A TF.js GraphModel (the format `tensorflowjs_converter` makes from a SavedModel), written by
 * hand as a GraphDef: y = sigmoid(x · w + b) on 3 features. There is no TensorFlow here to
 * convert one, and this is the documented JSON layout such a conversion produces.
 */
export function linearGraphModel(w: readonly [number, number, number], b: number): io.ModelArtifacts {
  return {
    format: 'graph-model',
    generatedBy: 'aiaas test (hand-written GraphDef)',
    convertedBy: null,
    modelTopology: {
      node: [
        { name: 'x', op: 'Placeholder', attr: { dtype: float, shape: { shape: shape(-1, 3) } } },
        {
          name: 'w',
          op: 'Const',
          attr: { dtype: float, value: { tensor: { dtype: 'DT_FLOAT', tensorShape: shape(3, 1) } } },
        },
        {
          name: 'b',
          op: 'Const',
          attr: { dtype: float, value: { tensor: { dtype: 'DT_FLOAT', tensorShape: shape(1) } } },
        },
        {
          name: 'MatMul',
          op: 'MatMul',
          input: ['x', 'w'],
          attr: { T: float, transpose_a: { b: false }, transpose_b: { b: false } },
        },
        { name: 'BiasAdd', op: 'BiasAdd', input: ['MatMul', 'b'], attr: { T: float } },
        { name: 'y', op: 'Sigmoid', input: ['BiasAdd'], attr: { T: float } },
      ],
      versions: { producer: 1 },
    },
    weightSpecs: [
      { name: 'w', shape: [3, 1], dtype: 'float32' },
      { name: 'b', shape: [1], dtype: 'float32' },
    ],
    weightData: new Float32Array([...w, b]).buffer,
  };
}
