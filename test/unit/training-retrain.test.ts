import { beforeAll, describe, expect, it } from 'vitest';
import { ConfigurationError } from '../../functions/shared/errors.js';
import { type ModelSpec, parseManifest } from '../../functions/shared/manifest.js';
import { ModelRegistry } from '../../functions/shared/registry/registry.js';
import type { TfRuntime } from '../../functions/shared/runtime/types.js';
import { parseCsv } from '../../functions/shared/training/csv.js';
import { splitDataset } from '../../functions/shared/training/dataset.js';
import { renderTrainingReport } from '../../functions/shared/training/report.js';
import { type RetrainResult, retrain } from '../../functions/shared/training/retrain.js';
import { generateDiabetesCsv, PIMA_HEADER } from '../../functions/shared/training/synthetic.js';
import { evaluateModel, kerasMetricName, trainModel } from '../../functions/shared/training/train.js';
import { createRuntime } from '../../layers/tfjs-runtime/runtime.js';
import { MemoryObjectStore } from '../support/memory-store.js';

function specWith(gate: Record<string, unknown> = {}, fit: Record<string, unknown> = {}): ModelSpec {
  return parseManifest({
    models: [
      {
        name: 'diabetes',
        retrain: { schedule: 'rate(1 day)' },
        definition: {
          features: PIMA_HEADER.filter((c) => c !== 'outcome'),
          label: 'outcome',
          layers: [
            { type: 'dense', units: 10, activation: 'relu' },
            { type: 'dense', units: 1, activation: 'sigmoid' },
          ],
          compile: { optimizer: 'adam', learningRate: 0.01 },
          fit: { epochs: 6, batchSize: 32, ...fit },
          gate: { metric: 'val_accuracy', minImprovement: 0, maxRegression: 0.01, ...gate },
        },
      },
    ],
  }).models[0]!;
}

/** A minimal well-formedness check: every tag closes, in order, and the root is <svg>. */
function assertWellFormedXml(xml: string) {
  const body = xml.replace(/^<\?xml[^>]*\?>\s*/, '');
  const stack: string[] = [];
  let root: string | undefined;
  for (const [, close, name, , selfClose] of body.matchAll(
    /<(\/?)([A-Za-z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>/g,
  )) {
    if (close) expect(stack.pop()).toBe(name);
    else {
      root ??= name;
      if (!selfClose) stack.push(name!);
    }
  }
  expect(stack).toEqual([]);
  expect(root).toBe('svg');
  // No stray markup characters outside tags.
  expect(body.replace(/<[^>]*>/g, '')).not.toMatch(/[<>]/);
}

let runtime: TfRuntime;
beforeAll(async () => {
  runtime = await createRuntime('cpu');
});

describe('training', () => {
  it('names metrics as Keras does', () => {
    expect(kerasMetricName('acc')).toBe('accuracy');
    expect(kerasMetricName('val_acc')).toBe('val_accuracy');
    expect(kerasMetricName('val_loss')).toBe('val_loss');
    expect(kerasMetricName('binaryAccuracy')).toBe('binary_accuracy');
  });

  it('is deterministic, reports every epoch, serves raw features and leaks no tensors', async () => {
    const definition = specWith({}, { epochs: 3 }).definition!;
    const parsed = parseCsv(generateDiabetesCsv(300, 5), 'x.csv', definition);
    const split = splitDataset(
      { x: Float32Array.from(parsed.x), y: Float32Array.from(parsed.y), rows: parsed.rows, features: 8 },
      0.2,
      42,
    );
    const before = runtime.tf.memory().numTensors;
    const epochs: number[] = [];
    const a = await trainModel({ runtime, definition, ...split, onEpoch: (p) => void epochs.push(p.epoch) });
    const b = await trainModel({ runtime, definition, ...split });
    expect(epochs).toEqual([1, 2, 3]);
    expect(Object.keys(a.history).sort()).toEqual(['accuracy', 'loss', 'val_accuracy', 'val_loss']);
    expect(a.history).toEqual(b.history);
    const layer = a.model.getLayer('standardize');
    expect(layer.trainable).toBe(false);
    expect(a.model.inputs[0]!.shape).toEqual([null, 8]);
    const metrics = await evaluateModel(runtime, a.model, definition, split.validation, 'val_');
    expect(metrics.val_accuracy).toBeCloseTo(a.history.val_accuracy!.at(-1)!, 5);
    const modelTensors = runtime.tf.memory().numTensors - before;
    a.model.dispose();
    b.model.dispose();
    // What is left belongs to the two models and their optimizers, now disposed; nothing per epoch.
    expect(runtime.tf.memory().numTensors).toBeLessThanOrEqual(before + Math.max(0, modelTensors - 2 * 6));
  });
});

describe('training report', () => {
  it('is a well-formed SVG with both panels, a legend and the version in the title', () => {
    const svg = renderTrainingReport({
      model: 'diabetes',
      version: 7,
      history: {
        loss: [0.7, 0.5, 0.45],
        val_loss: [0.72, 0.55, 0.5],
        accuracy: [0.6, 0.7, 0.75],
        val_accuracy: [0.6, 0.68, 0.7],
      },
      subtitle: 'rows <&> "quoted"',
    });
    assertWellFormedXml(svg);
    expect(svg).toContain('diabetes v7 · training report');
    expect(svg).toContain('rows &lt;&amp;&gt; &quot;quoted&quot;');
    expect(svg.match(/<polyline/g)).toHaveLength(4);
    expect(svg).toContain('val_loss (validation): 0.5');
    expect(svg).toContain('>epoch</text>');
    assertWellFormedXml(renderTrainingReport({ model: 'm', version: 1, history: { loss: [0.3] } }));
    assertWellFormedXml(renderTrainingReport({ model: 'm', version: 1, history: {} }));
  });
});

describe('retrain', () => {
  it('publishes, promotes, refuses by gate, stays idempotent and records everything', async () => {
    const store = new MemoryObjectStore();
    const registry = new ModelRegistry(store, { actor: 'test' });
    const spec = specWith();
    await expect(retrain({ registry, spec, runtime })).rejects.toThrow(ConfigurationError);
    await registry.putDataset(
      'diabetes',
      'part-1.csv',
      new TextEncoder().encode(generateDiabetesCsv(400, 1)),
    );

    const events: string[] = [];
    const first = await retrain({ registry, spec, runtime, log: (e) => events.push(e.event) });
    expect(first.status).toBe('promoted');
    if (first.status === 'unchanged') throw new Error('unreachable');
    expect(first).toMatchObject({ version: 1, parent: null, rows: 400 });
    expect(first.decision).toMatchObject({ promoted: true, from: null, to: 1 });
    expect(events).toEqual(['dataset', 'training', 'evaluated', 'published', 'decision']);
    const meta = await registry.getMetadata('diabetes', 1);
    expect(Object.keys(meta.metrics).sort()).toEqual(['accuracy', 'loss', 'val_accuracy', 'val_loss']);
    expect(meta.source).toMatchObject({ kind: 'retrain', alias: 'live' });
    expect(meta.training).toMatchObject({
      rows: 400,
      rejectedRows: 0,
      dataFingerprint: first.dataFingerprint,
    });
    expect(meta.signature.inputs[0]).toMatchObject({ shape: [null, 8] });
    assertWellFormedXml(store.text(first.reportKey)!);
    expect(first.reportKey).toBe('models/diabetes/reports/1/training-report.svg');

    // Same data, same settings: nothing new.
    const again = await retrain({ registry, spec, runtime });
    expect(again).toMatchObject({ status: 'unchanged', version: 1 });
    expect(await registry.listVersions('diabetes')).toEqual([1]);

    // New data, but a gate no model can pass: published, not promoted, decision recorded.
    await registry.putDataset(
      'diabetes',
      'part-2.csv',
      new TextEncoder().encode(generateDiabetesCsv(100, 2)),
    );
    const refused = await retrain({
      registry,
      spec: specWith({ minImprovement: 0.5, maxRegression: 0 }),
      runtime,
    });
    if (refused.status === 'unchanged') throw new Error('unreachable');
    expect(refused).toMatchObject({ status: 'published', version: 2, parent: 1, baseline: { version: 1 } });
    expect(refused.decision).toMatchObject({ promoted: false, from: 1, to: 1 });
    expect(refused.decision.reason).toMatch(/gate refused: val_accuracy .* < required \+0\.5000/);
    expect((await registry.getMetadata('diabetes', 2)).training).toMatchObject({ gate: { pass: false } });
    expect((await registry.getAlias('diabetes'))?.version).toBe(1);

    // Forced, with a tolerant gate: promoted, and the history has the numbers.
    const forced = await retrain({
      registry,
      spec: specWith({ maxRegression: 1 }),
      runtime,
      force: true,
      who: 'ci',
    });
    expect(forced).toMatchObject({ status: 'promoted', version: 3, parent: 1 });
    const history = await registry.history('diabetes');
    expect(history.map((e) => [e.kind, e.from, e.to, e.who])).toEqual([
      ['retrain', null, 1, 'test'],
      ['retrain', 1, 3, 'ci'],
    ]);
    expect(history[1]!.details).toMatchObject({
      gate: { metric: 'val_accuracy', pass: true, baseline: expect.any(Number) },
    });
  });

  it('refuses a job larger than a Lambda run', async () => {
    const store = new MemoryObjectStore();
    const registry = new ModelRegistry(store);
    await registry.putDataset('diabetes', 'a.csv', new TextEncoder().encode(generateDiabetesCsv(200)));
    const huge = specWith({}, { epochs: 10_000, batchSize: 1 });
    await expect(retrain({ registry, spec: huge, runtime })).rejects.toThrow(/would take about \d+ s/);
    await expect(
      retrain({ registry, spec: specWith(), runtime, limits: { memoryMiB: 0.01 } }),
    ).rejects.toThrow(/reads at most/);
    expect(await registry.listVersions('diabetes')).toEqual([]);
  });

  it('two runs at once lose no version and leave a consistent alias', async () => {
    const store = new MemoryObjectStore();
    const registry = new ModelRegistry(store, { retry: { minDelayMs: 1, maxDelayMs: 5 } });
    await registry.putDataset('diabetes', 'a.csv', new TextEncoder().encode(generateDiabetesCsv(300, 9)));
    const spec = specWith({}, { epochs: 3 });
    const results: RetrainResult[] = await Promise.all([
      retrain({ registry, spec, runtime, force: true }),
      retrain({ registry, spec, runtime, force: true }),
    ]);
    const versions = results.map((r) => (r.status === 'unchanged' ? 0 : r.version)).sort();
    expect(versions).toEqual([1, 2]);
    expect(await registry.listVersions('diabetes')).toEqual([1, 2]);
    const pointer = await registry.getAlias('diabetes');
    const promoted = results
      .filter((r) => r.status === 'promoted')
      .map((r) => (r.status === 'unchanged' ? 0 : r.version));
    expect(promoted.length).toBeGreaterThanOrEqual(1);
    expect(promoted).toContain(pointer?.version);
    for (const r of results) {
      if (r.status === 'published') expect(r.decision.conflict || !r.decision.gate.pass).toBe(true);
    }
    const history = await registry.history('diabetes');
    expect(history.map((e) => e.to)).toEqual(
      promoted.length === 2 ? [history[0]!.to, pointer?.version] : [pointer?.version],
    );
  });
});
