/**
 * Shapes a layers model can and cannot take, from its layers' own shape rules: tfjs builds a model
 * whose layer makes a dimension of size zero or less (a kernel larger than a fixed input) and then
 * throws on every prediction; with a free dimension (a sequence's length, an image's size) it
 * throws mid-computation on a request too small for a convolution or that a reshape cannot split.
 * Both are found here, before tfjs computes anything.
 */
import type { LayersModel } from '@tensorflow/tfjs-layers';

type Shape = (number | null)[];

/**
 * Runs the request's shapes through the layers' own shape rules (what the model's computeOutputShape
 * does), stopping at the first layer that would make a dimension of size zero or less, or that
 * refuses the shape. Undefined when every layer takes it.
 */
export function requestShapeProblem(
  model: LayersModel,
  inputs: readonly (readonly number[])[],
): string | undefined {
  const shapes = new Map<number, Shape>();
  model.inputs.forEach((t, k) => {
    const input = inputs[k];
    if (input) shapes.set(t.id, [...input]);
  });
  for (const layer of model.layers) {
    for (const node of layer.inboundNodes) {
      const given = node.inputTensors.map((t) => shapes.get(t.id));
      // An input layer, or a call of a shared layer outside this model.
      if (given.length === 0 || given.some((g) => g === undefined)) continue;
      let made: Shape | Shape[];
      try {
        made = layer.computeOutputShape(given.length === 1 ? given[0]! : (given as Shape[]));
      } catch (error) {
        return `layer "${layer.name}" does not take shape ${given.map(show).join(' and ')}: ${(error as Error).message}`;
      }
      const outs = (Array.isArray(made[0]) ? made : [made]) as Shape[];
      for (const [k, out] of outs.entries()) {
        if (out.some((d) => d !== null && d <= 0)) {
          return `layer "${layer.name}" would make shape ${show(out)} from ${given.map(show).join(' and ')}`;
        }
        const tensor = node.outputTensors[k];
        if (tensor) shapes.set(tensor.id, out);
      }
    }
  }
  return undefined;
}

const show = (shape: Shape | undefined) => `[${(shape ?? []).map((d) => d ?? -1).join(', ')}]`;

/**
 * Why no input can go through the model, for a model whose inputs have no free dimension after the
 * batch (a kernel larger than the input, a reshape that does not divide it): tfjs builds such a
 * model, as its shape rules leave the batch size open, and then throws on every prediction.
 */
export function staticShapeProblem(model: LayersModel): string | undefined {
  const shapes = model.inputs.map((t) => t.shape);
  if (shapes.some((shape) => shape.slice(1).some((d) => d === null))) return undefined;
  return requestShapeProblem(
    model,
    shapes.map((shape) => shape.map((d) => d ?? 1)),
  );
}
