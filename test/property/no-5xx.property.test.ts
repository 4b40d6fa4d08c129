/**
 * No request gets a 5xx, whatever the model: random small models of every layer kind `publish`
 * accepts (Dense, Conv1D/2D, pooling, Flatten, Reshape, Dropout, BatchNormalization, Activation,
 * Embedding, SimpleRNN/LSTM/GRU, Concatenate/Add over two inputs, rank-1 and int32 inputs, free
 * dimensions) are published and served by the real handler on an in-memory registry, on the fast
 * path (where the model compiles) and on tfjs (cpu backend), and asked random requests shaped after
 * their signature (NaN and Infinity tokens, ids in and out of an Embedding's range, sizes a
 * convolution cannot take). Every answer is a 200 or a 400 naming the problem, and both runtimes
 * answer alike: an error thrown by the runtime for a request the validator let through is a defect
 * of the validator.
 */
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseJsonWithNonFinite } from '../../functions/inference/json.js';
import type { Signature, TensorSpec } from '../../functions/shared/registry/types.js';
import type { TfRuntime } from '../../functions/shared/runtime/types.js';
import { createRuntime } from '../../layers/tfjs-runtime/runtime.js';
import { type ServedModel, serveModel } from '../support/serve-model.js';

/** Models per run, each served twice and asked 4 requests: a few seconds. */
const RUNS = 80;

type Extra = 'dropout' | 'batchNorm' | 'relu' | 'softmax';
type Recipe =
  | {
      kind: 'dense';
      width: number;
      units: number[];
      rankOne: boolean;
      int32: boolean;
      scalarOut: boolean;
      extras: Extra[];
    }
  | { kind: 'reshape'; rows: number | null; width: number; to: number; extras: Extra[] }
  | {
      kind: 'conv1d';
      length: number | null;
      channels: number;
      filters: number;
      kernel: number;
      strides: number;
      padding: 'valid' | 'same';
      pool: 'max' | 'avg' | 'none';
      head: 'flatten' | 'global';
      extras: Extra[];
    }
  | {
      kind: 'conv2d';
      size: number | null;
      channels: number;
      kernel: number;
      padding: 'valid' | 'same';
      pool: 'max' | 'avg' | 'none';
      head: 'flatten' | 'global';
      extras: Extra[];
    }
  | {
      kind: 'embedding';
      length: number | null;
      vocabulary: number;
      int32: boolean;
      head: 'flatten' | 'global' | 'rnn';
      extras: Extra[];
    }
  | {
      kind: 'rnn';
      steps: number | null;
      features: number;
      cell: 'simpleRNN' | 'lstm' | 'gru';
      sequences: boolean;
      extras: Extra[];
    }
  | { kind: 'merge'; a: number; b: number; op: 'concatenate' | 'add'; extras: Extra[] };

const extras = fc.array(fc.constantFrom<Extra>('dropout', 'batchNorm', 'relu', 'softmax'), { maxLength: 2 });
const small = (max: number) => fc.integer({ min: 1, max });
const freeOr = (max: number) => fc.option(small(max), { nil: null, freq: 3 });
const pool = fc.constantFrom('max' as const, 'avg' as const, 'none' as const);

const recipeArb: fc.Arbitrary<Recipe> = fc.oneof(
  fc.record({
    kind: fc.constant('dense' as const),
    width: small(4),
    units: fc.array(small(4), { minLength: 1, maxLength: 2 }),
    rankOne: fc.boolean(),
    int32: fc.boolean(),
    scalarOut: fc.boolean(),
    extras,
  }),
  fc.record({
    kind: fc.constant('reshape' as const),
    rows: freeOr(3),
    width: small(4),
    to: small(3),
    extras,
  }),
  fc.record({
    kind: fc.constant('conv1d' as const),
    length: freeOr(6),
    channels: small(2),
    filters: small(2),
    kernel: small(3),
    strides: small(2),
    padding: fc.constantFrom('valid' as const, 'same' as const),
    pool,
    head: fc.constantFrom('flatten' as const, 'global' as const),
    extras,
  }),
  fc.record({
    kind: fc.constant('conv2d' as const),
    size: freeOr(5),
    channels: small(2),
    kernel: small(3),
    padding: fc.constantFrom('valid' as const, 'same' as const),
    pool,
    head: fc.constantFrom('flatten' as const, 'global' as const),
    extras,
  }),
  fc.record({
    kind: fc.constant('embedding' as const),
    length: freeOr(4),
    vocabulary: small(6),
    int32: fc.boolean(),
    head: fc.constantFrom('flatten' as const, 'global' as const, 'rnn' as const),
    extras,
  }),
  fc.record({
    kind: fc.constant('rnn' as const),
    steps: freeOr(4),
    features: small(3),
    cell: fc.constantFrom('simpleRNN' as const, 'lstm' as const, 'gru' as const),
    sequences: fc.boolean(),
    extras,
  }),
  fc.record({
    kind: fc.constant('merge' as const),
    a: small(3),
    b: small(3),
    op: fc.constantFrom('concatenate' as const, 'add' as const),
    extras,
  }),
);

type Sym = ReturnType<TfRuntime['layers']['input']>;

/** Builds a recipe as a functional model; undefined when tfjs itself refuses the combination. */
function build(runtime: TfRuntime, recipe: Recipe) {
  const { layers } = runtime;
  const l = layers.layers;
  const apply = (layer: { apply(x: never): unknown }, x: Sym | Sym[]) => layer.apply(x as never) as Sym;
  const finish = (x: Sym, units = 2) => {
    let y = x;
    for (const extra of recipe.extras) {
      if (extra === 'dropout') y = apply(l.dropout({ rate: 0.3 }), y);
      if (extra === 'batchNorm') y = apply(l.batchNormalization({}), y);
      if (extra === 'relu') y = apply(l.activation({ activation: 'relu' }), y);
      if (extra === 'softmax') y = apply(l.activation({ activation: 'softmax' }), y);
    }
    return apply(l.dense({ units }), y);
  };
  const recurrent = { recurrentInitializer: 'glorotUniform' as const };
  let inputs: Sym[];
  let output: Sym;
  switch (recipe.kind) {
    case 'dense': {
      const input = layers.input({
        shape: recipe.rankOne ? [] : [recipe.width],
        dtype: recipe.int32 ? 'int32' : 'float32',
        name: 'x',
      });
      let y = recipe.rankOne ? apply(l.reshape({ targetShape: [1] }), input) : input;
      for (const units of recipe.units.slice(0, -1)) y = apply(l.dense({ units, activation: 'tanh' }), y);
      y = finish(y, recipe.scalarOut ? 1 : recipe.units[recipe.units.length - 1]);
      output = recipe.scalarOut ? apply(l.reshape({ targetShape: [] }), y) : y;
      inputs = [input];
      break;
    }
    case 'reshape': {
      const input = layers.input({ shape: [recipe.rows, recipe.width], name: 'x' });
      const y = apply(l.reshape({ targetShape: [-1, recipe.to] }), input);
      output = finish(apply(l.globalAveragePooling1d({}), y));
      inputs = [input];
      break;
    }
    case 'conv1d': {
      if (recipe.head === 'flatten' && recipe.length === null) return undefined;
      const input = layers.input({ shape: [recipe.length, recipe.channels], name: 'x' });
      let y = apply(
        l.conv1d({
          filters: recipe.filters,
          kernelSize: recipe.kernel,
          strides: recipe.strides,
          padding: recipe.padding,
        }),
        input,
      );
      if (recipe.pool === 'max') y = apply(l.maxPooling1d({ poolSize: 2 }), y);
      if (recipe.pool === 'avg') y = apply(l.averagePooling1d({ poolSize: 2 }), y);
      y = recipe.head === 'flatten' ? apply(l.flatten(), y) : apply(l.globalMaxPooling1d({}), y);
      output = finish(y);
      inputs = [input];
      break;
    }
    case 'conv2d': {
      if (recipe.head === 'flatten' && recipe.size === null) return undefined;
      const input = layers.input({ shape: [recipe.size, recipe.size, recipe.channels], name: 'image' });
      let y = apply(l.conv2d({ filters: 2, kernelSize: recipe.kernel, padding: recipe.padding }), input);
      if (recipe.pool === 'max') y = apply(l.maxPooling2d({ poolSize: 2 }), y);
      if (recipe.pool === 'avg') y = apply(l.averagePooling2d({ poolSize: 2 }), y);
      y = recipe.head === 'flatten' ? apply(l.flatten(), y) : apply(l.globalAveragePooling2d({}), y);
      output = finish(y);
      inputs = [input];
      break;
    }
    case 'embedding': {
      if (recipe.head === 'flatten' && recipe.length === null) return undefined;
      const input = layers.input({
        shape: [recipe.length],
        dtype: recipe.int32 ? 'int32' : 'float32',
        name: 'ids',
      });
      let y = apply(l.embedding({ inputDim: recipe.vocabulary, outputDim: 2 }), input);
      if (recipe.head === 'flatten') y = apply(l.flatten(), y);
      else if (recipe.head === 'global') y = apply(l.globalAveragePooling1d({}), y);
      else y = apply(l.gru({ units: 2, ...recurrent }), y);
      output = finish(y);
      inputs = [input];
      break;
    }
    case 'rnn': {
      const input = layers.input({ shape: [recipe.steps, recipe.features], name: 'series' });
      const options = { units: 2, returnSequences: recipe.sequences, ...recurrent };
      let y = apply(
        recipe.cell === 'lstm'
          ? l.lstm(options)
          : recipe.cell === 'gru'
            ? l.gru(options)
            : l.simpleRNN(options),
        input,
      );
      if (recipe.sequences) y = apply(l.globalAveragePooling1d({}), y);
      output = finish(y);
      inputs = [input];
      break;
    }
    case 'merge': {
      const a = layers.input({ shape: [recipe.a], name: 'a' });
      const b = layers.input({ shape: [recipe.b], name: 'b' });
      const merged =
        recipe.op === 'concatenate'
          ? apply(l.concatenate(), [a, b])
          : apply(l.add(), [apply(l.dense({ units: 2 }), a), apply(l.dense({ units: 2 }), b)]);
      output = finish(merged);
      inputs = [a, b];
      break;
    }
  }
  return layers.model({ inputs, outputs: output });
}

/** A number for a request, in JSON: mostly small ids and plain values, sometimes tokens and extremes. */
function numberArb(spec: TensorSpec): fc.Arbitrary<string> {
  const ids = fc.integer({ min: -1, max: (spec.vocabularySize ?? 5) + 1 }).map(String);
  if (spec.dtype === 'int32') {
    return fc.oneof(
      { weight: 6, arbitrary: ids },
      fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }).map(String),
    );
  }
  return fc.oneof(
    { weight: 6, arbitrary: ids },
    { weight: 4, arbitrary: fc.double({ min: -100, max: 100, noNaN: true }).map((v) => JSON.stringify(v)) },
    fc.constantFrom('NaN', 'Infinity', '-Infinity', '1e30', '-3.4e38', '0.5', '-0.9', '4.999'),
  );
}

/** Nested JSON arrays of the given shape. */
function nested(shape: readonly number[], leaf: () => string): string {
  if (shape.length === 0) return leaf();
  return `[${Array.from({ length: shape[0]! }, () => nested(shape.slice(1), leaf)).join(',')}]`;
}

/** A request shaped after the signature: free dimensions of size 1 to 5, 1 to 3 instances, row or columnar. */
function requestOf(signature: Signature, g: fc.GeneratorValue): string {
  const batch = g(fc.integer, { min: 1, max: 3 });
  const free = g(fc.integer, { min: 1, max: 5 });
  const tensors = signature.inputs.map((spec) => {
    const inner = spec.shape.slice(1).map((d) => d ?? free);
    const leaf = () => g(() => numberArb(spec));
    return { name: spec.name, instances: Array.from({ length: batch }, () => nested(inner, leaf)) };
  });
  const columnar = g(fc.boolean);
  const named = signature.inputs.length > 1 || g(fc.boolean);
  if (columnar) {
    const fields = tensors.map((t) => `"${t.name}": [${t.instances.join(',')}]`);
    return named ? `{"inputs": {${fields.join(', ')}}}` : `{"inputs": [${tensors[0]!.instances.join(',')}]}`;
  }
  const rows = Array.from({ length: batch }, (_, i) =>
    named ? `{${tensors.map((t) => `"${t.name}": ${t.instances[i]}`).join(', ')}}` : tensors[0]!.instances[i],
  );
  return `{"instances": [${rows.join(',')}]}`;
}

describe('no 5xx for any request to any model publish accepts (property, fast path and tfjs)', () => {
  let runtime: TfRuntime;
  beforeAll(async () => {
    runtime = await createRuntime('cpu');
  });

  it('answers 200 or a 400 naming the problem, the same on both runtimes', async () => {
    const kinds = new Set<string>();
    let refused = 0;
    await fc.assert(
      fc.asyncProperty(recipeArb, fc.gen(), async (recipe, g) => {
        const model = build(runtime, recipe);
        fc.pre(model !== undefined);
        try {
          let fast: ServedModel;
          try {
            fast = await serveModel(runtime, model!, { fastPath: 'auto' });
          } catch (error) {
            // What publish refuses (a kernel larger than a fixed input, a layer that cannot take the
            // input's dtype) is never served.
            expect((error as Error).message).toMatch(
              /^The model (can compute nothing: layer ".*" (would make|does not take) shape|fails on every request)/,
            );
            refused++;
            return;
          }
          const tfjs = await serveModel(runtime, model!, { fastPath: 'off' });
          kinds.add(recipe.kind);
          for (let k = 0; k < 4; k++) {
            const request = requestOf(fast.signature, g);
            const answers = [await fast.predict(request), await tfjs.predict(request)];
            for (const res of answers) {
              const logged = [...fast.errors, ...tfjs.errors].join('; ').slice(0, 600);
              expect([200, 400], `${res.body} for ${request}: ${logged}`).toContain(res.statusCode);
              const body = parseJsonWithNonFinite(res.body) as Record<string, unknown>;
              if (res.statusCode === 400) expect(typeof body.error).toBe('string');
            }
            expect(answers[0]!.statusCode, request).toBe(answers[1]!.statusCode);
          }
          expect([...fast.errors, ...tfjs.errors]).toEqual([]);
        } finally {
          model!.dispose();
        }
      }),
      // No shrinking: a counterexample is small already, and shrinking rebuilds models for minutes.
      { numRuns: RUNS, endOnFailure: true },
    );
    expect(refused).toBeLessThan(RUNS / 4);
    // Every layer kind was reached.
    expect([...kinds].sort()).toEqual(['conv1d', 'conv2d', 'dense', 'embedding', 'merge', 'reshape', 'rnn']);
  });
});
