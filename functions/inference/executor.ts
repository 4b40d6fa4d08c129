/**
 * Executors: what computes a loaded version's predictions, the fast path or a tfjs backend, behind
 * one synchronous `predict` (so no swap can dispose a model mid-flight). A tfjs executor frees
 * every tensor a prediction made and checks a request's shapes against the model's layers first.
 */
import type { Tensor } from '@tensorflow/tfjs-core';
import { ConfigurationError, ValidationError } from '../shared/errors.js';
import { type AnyModel, disposeModel } from '../shared/model/artifacts.js';
import type { FastModel } from '../shared/model/fast-model.js';
import { requestShapeProblem } from '../shared/model/shapes.js';
import type { Signature } from '../shared/registry/types.js';
import type { TfRuntime } from '../shared/runtime/types.js';
import type { OutputTensor } from './answers.js';
import type { InputTensor } from './predict-request.js';

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
  // tfjs's predict() reshapes a rank-1 input ([n], one number per instance) to [n, 1] and then
  // refuses it; predictOnBatch() takes it as it is. predict() stays for the rest: it runs a large
  // batch 32 instances at a time, which bounds the memory a convolution's activations take.
  const rankOne = loaded.signature.inputs.some((s) => s.shape.length === 1);
  // A free dimension after the batch (a sequence's length, an image's size) may be too small for a
  // convolution or not fit a reshape: tfjs would throw mid-computation, so the sizes of such a
  // request are first run through the layers' shape rules.
  const free = loaded.signature.inputs.some((s) => s.shape.slice(1).some((d) => d === null));
  const checkShapes = loaded.format === 'layers-model' && free ? loaded.model : undefined;
  const executor: Executor = {
    runtime: runtime.kind,
    signature: loaded.signature,
    predict(request) {
      if (checkShapes) {
        const problem = requestShapeProblem(
          checkShapes,
          request.map((i) => i.shape),
        );
        if (problem) {
          const shapes = request.map((i) => `"${i.name}" [${i.shape.join(', ')}]`).join(', ');
          throw new ValidationError(`This model cannot take inputs of these shapes (${shapes}): ${problem}`);
        }
      }
      const before = tf.memory().numTensors;
      const inputs = request.map((i) => tf.tensor(i.values, i.shape, i.dtype));
      let outputs: Tensor[] = [];
      try {
        if (loaded.format === 'layers-model') {
          const x = inputs.length === 1 ? inputs[0]! : inputs;
          const out = rankOne ? loaded.model.predictOnBatch(x) : loaded.model.predict(x);
          outputs = Array.isArray(out) ? out : [out];
        } else {
          const feed = Object.fromEntries(request.map((spec, k) => [spec.name, inputs[k]!]));
          const out = loaded.model.execute(feed, names);
          outputs = Array.isArray(out) ? out : [out];
        }
        return outputs.map((t, k) => ({
          name: names[k] ?? `output_${k}`,
          dtype: t.dtype,
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
 * A model whose inputs are all numeric and fixed in size takes zeros as it takes any request, so
 * failing on them means failing on every request: that throws a ConfigurationError, after freeing
 * the model, and the version is not served (nor published). Otherwise answers why it failed, if it
 * did (a free dimension of 1 may be too small for the model).
 */
export function warmUp(executor: Executor): string | undefined {
  const inputs = executor.signature.inputs.map((s): InputTensor => {
    const shape = s.shape.map((d) => d ?? 1);
    const size = shape.reduce((a, b) => a * b, 1);
    return s.dtype === 'int32'
      ? { name: s.name, dtype: 'int32', shape, values: new Int32Array(size) }
      : s.dtype === 'bool'
        ? { name: s.name, dtype: 'bool', shape, values: new Uint8Array(size) }
        : { name: s.name, dtype: 'float32', shape, values: new Float32Array(size) };
  });
  try {
    executor.predict(inputs);
    return undefined;
  } catch (error) {
    const message = (error as Error).message;
    const likeAnyRequest = executor.signature.inputs.every(
      (s) => ['float32', 'int32', 'bool'].includes(s.dtype) && s.shape.slice(1).every((d) => d !== null),
    );
    if (!likeAnyRequest) return message;
    executor.dispose();
    throw new ConfigurationError(`The model fails on every request (here, one of zeros): ${message}`, {
      cause: error,
    });
  }
}
