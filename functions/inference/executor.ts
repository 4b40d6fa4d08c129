import type { Tensor } from '@tensorflow/tfjs-core';
import { type AnyModel, disposeModel } from '../shared/model/artifacts.js';
import type { FastModel } from '../shared/model/fast-path.js';
import type { Signature } from '../shared/registry/types.js';
import type { TfRuntime } from '../shared/runtime/types.js';
import type { InputTensor, OutputTensor } from './api.js';

/** What computes a loaded version's predictions: the fast path, or a tfjs backend. */
export type ExecutorRuntime = 'fast-path' | TfRuntime['kind'];

/** A loaded version, ready to predict. */
export interface Executor {
  readonly runtime: ExecutorRuntime;
  readonly signature: Signature;
  /** Synchronous, so no swap to a new version can dispose the model mid-flight. */
  predict(inputs: readonly InputTensor[]): OutputTensor[];
  dispose(): void;
}

/** A model compiled by the fast path: plain arrays in and out, nothing to free. */
export function fastPathExecutor(model: FastModel): Executor {
  const executor: Executor = {
    runtime: 'fast-path',
    signature: model.signature,
    predict: (inputs) => model.predict(inputs),
    dispose() {},
  };
  return executor;
}

/** A model loaded by tfjs; every prediction frees the tensors it made and reports any it leaked. */
export function tfjsExecutor(
  runtime: TfRuntime,
  loaded: AnyModel & { signature: Signature },
  onLeak: (leaked: number) => void,
): Executor {
  const { tf } = runtime;
  const names = loaded.signature.outputs.map((o) => o.name);
  const executor: Executor = {
    runtime: runtime.kind,
    signature: loaded.signature,
    predict(request) {
      const before = tf.memory().numTensors;
      const inputs = request.map((i) => tf.tensor(i.values, i.shape, i.dtype));
      let outputs: Tensor[] = [];
      try {
        if (loaded.format === 'layers-model') {
          const out = loaded.model.predict(inputs.length === 1 ? inputs[0]! : inputs);
          outputs = Array.isArray(out) ? out : [out];
        } else {
          const feed = Object.fromEntries(request.map((spec, k) => [spec.name, inputs[k]!]));
          const out = loaded.model.execute(feed, names);
          outputs = Array.isArray(out) ? out : [out];
        }
        return outputs.map((t, k) => ({
          name: names[k] ?? `output_${k}`,
          shape: t.shape,
          values: t.dataSync() as Float32Array,
        }));
      } finally {
        for (const t of inputs) t.dispose();
        for (const t of outputs) t.dispose();
        const leaked = tf.memory().numTensors - before;
        if (leaked > 0) onLeak(leaked);
      }
    },
    dispose: () => disposeModel(loaded),
  };
  return executor;
}

/**
 * One prediction on zeros, so the first real request does not pay for kernel setup or JIT.
 * Answers why it failed, if it did (a model with free dimensions may reject ones).
 */
export function warmUp(executor: Executor): string | undefined {
  const inputs = executor.signature.inputs.map((s): InputTensor => {
    const shape = s.shape.map((d) => d ?? 1);
    const size = shape.reduce((a, b) => a * b, 1);
    return s.dtype === 'int32'
      ? { name: s.name, dtype: 'int32', shape, values: new Int32Array(size) }
      : { name: s.name, dtype: 'float32', shape, values: new Float32Array(size) };
  });
  try {
    executor.predict(inputs);
    return undefined;
  } catch (error) {
    return (error as Error).message;
  }
}
