import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { type LayersModel, loadLayersModel } from '@tensorflow/tfjs-layers';
import { strToU8, zipSync } from 'fflate';
import { beforeAll, describe, expect, it } from 'vitest';
import { ValidationError } from '../../functions/shared/errors.js';
import {
  convertKeras,
  type KerasConversion,
  KerasFormatError,
  UnsupportedKerasLayerError,
} from '../../functions/shared/keras/convert.js';

const here = dirname(fileURLToPath(import.meta.url));
const fixtures = resolve(here, '../fixtures/keras');
// ../shared sits beside the repository on developers' machines and CI, not on a fresh clone.
const shared = resolve(here, '../../../shared');

const TOLERANCE = 1e-5;

type Rows = number[][];
interface Reference {
  inputs: unknown[];
  outputs: Rows;
}

function readJson<T>(path: string): T {
  return JSON.parse(readFileSync(path, 'utf8')) as T;
}

function bytes(path: string): Uint8Array {
  return new Uint8Array(readFileSync(path));
}

async function convertAndLoad(path: string): Promise<{ conversion: KerasConversion; model: LayersModel }> {
  const conversion = await convertKeras(bytes(path), path.split('/').pop()!);
  const model = await loadLayersModel(tf.io.fromMemory(conversion.artifacts));
  return { conversion, model };
}

function predict(model: LayersModel, inputs: unknown[]): Rows {
  const tensors = inputs.map((x) => tf.tensor(x as number[]));
  const out = model.predict(tensors.length === 1 ? tensors[0]! : tensors) as tf.Tensor;
  const rows = out.arraySync() as Rows;
  tf.dispose([...tensors, out]);
  return rows;
}

function expectClose(actual: Rows, expected: Rows): void {
  expect(actual.length).toBe(expected.length);
  actual.forEach((row, i) => {
    const want = expected[i]!;
    expect(row.length).toBe(want.length);
    row.forEach((value, j) => {
      const diff = Math.abs(value - want[j]!);
      if (diff > TOLERANCE)
        throw new Error(`row ${i}, output ${j}: got ${value}, expected ${want[j]} (|diff| ${diff})`);
    });
  });
}

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('convertKeras on real Keras files (../shared/models)', () => {
  // Reference outputs: test/fixtures/keras/reference.py, a numpy-only forward pass of these files.
  const reference = readJson<Record<string, Reference & { rounded?: Rows }>>(
    join(fixtures, 'reference-outputs.json'),
  );
  const h5Path = join(shared, 'models/keras-h5-diabetes/model.h5');
  const kerasPath = join(shared, 'models/keras3-bn-diabetes/model.keras');
  const missing = [h5Path, kerasPath].filter((path) => !existsSync(path));
  if (missing.length > 0) {
    console.warn(
      `keras-convert: skipping ${missing.length} real-model case(s), absent: ${missing.join(', ')}`,
    );
  }

  it.runIf(existsSync(h5Path))('converts the Keras 2.2.4 .h5 and reproduces its outputs', async () => {
    const { conversion, model } = await convertAndLoad(h5Path);
    expect(conversion.source).toEqual({
      kind: 'keras-h5',
      kerasVersion: '2.2.4',
      backend: 'tensorflow',
      file: 'model.h5',
    });
    expect(conversion.artifacts.format).toBe('layers-model');
    expect(conversion.artifacts.convertedBy).toBe('aiaas keras import');
    expect(conversion.artifacts.modelTopology).toMatchObject({
      class_name: 'Sequential',
      keras_version: '2.2.4',
    });
    expect(conversion.warnings).toContain('optimizer state ignored: not needed for serving');
    const ref = reference['keras-h5-diabetes']!;
    const out = predict(model, [ref.inputs]);
    expectClose(out, ref.outputs);
    // Its authors' two rows: [1,93,70,31,0,30.4,0.315,23] → 0 and [1,126,60,0,0,30.1,0.349,47] → 1.
    expect(out.slice(0, 2).map((row) => Math.round(row[0]!))).toEqual([0, 1]);
  });

  it.runIf(existsSync(kerasPath))(
    'converts the Keras 3.5 .keras (BatchNormalization, Dropout) and reproduces its outputs',
    async () => {
      const { conversion, model } = await convertAndLoad(kerasPath);
      expect(conversion.source).toEqual({ kind: 'keras-v3', kerasVersion: '3.5.0', file: 'model.keras' });
      expect(conversion.warnings).toContain('optimizer state ignored: not needed for serving');
      // Weights are named after config.json's layers even though the archive keys them by class.
      expect(conversion.artifacts.weightSpecs?.map((w) => w.name)).toContain(
        'batch_normalization_5/moving_variance',
      );
      const ref = reference['keras3-bn-diabetes']!;
      expectClose(predict(model, [ref.inputs]), ref.outputs);
    },
  );
});

describe('convertKeras on generated fixtures', () => {
  // These files were written by test/fixtures/keras/make_fixtures.py with h5py in Keras's documented
  // HDF5 / .keras layouts (not by Keras itself); their expected outputs are numpy forward passes
  // computed by the same script.
  const synthetic = readJson<Record<string, Reference>>(join(fixtures, 'synthetic-outputs.json'));
  const cases: [string, string][] = [
    ['conv2d.h5', 'Sequential ZeroPadding2D/Conv2D/MaxPooling2D/AveragePooling2D/Flatten/Dense'],
    ['rnn.h5', 'Sequential Embedding/SimpleRNN/LSTM/GRU with TF 2 cell weight names'],
    ['functional.h5', 'Keras 2 Functional with two inputs, Add, Concatenate, BatchNormalization, Reshape'],
    ['functional.keras', 'Keras 3 Functional with Conv1D, LSTM, LeakyReLU, BatchNormalization, Concatenate'],
  ];
  for (const [file, what] of cases) {
    it(`${file}: ${what}`, async () => {
      const { model } = await convertAndLoad(join(fixtures, file));
      const ref = synthetic[file]!;
      expectClose(predict(model, ref.inputs), ref.outputs);
    });
  }

  it('reports dropped training state and regularizers as warnings, not errors', async () => {
    const h5 = await convertKeras(bytes(join(fixtures, 'functional.h5')), 'functional.h5');
    expect(h5.warnings).toEqual([
      'training configuration (loss, metrics, optimizer) ignored: not needed for serving',
      'optimizer state ignored: not needed for serving',
    ]);
    const v3 = await convertKeras(bytes(join(fixtures, 'functional.keras')), 'functional.keras');
    expect(v3.source.kind).toBe('keras-v3');
    expect(v3.warnings).toContain('optimizer state ignored: not needed for serving');
  });

  it('detects the format from the bytes, not the extension', async () => {
    const conversion = await convertKeras(bytes(join(fixtures, 'functional.keras')), 'upload.h5');
    expect(conversion.source).toMatchObject({ kind: 'keras-v3', file: 'upload.h5' });
  });
});

describe('convertKeras refusals', () => {
  it('names a custom layer and its class', async () => {
    const error = await convertKeras(bytes(join(fixtures, 'custom.h5')), 'custom.h5').catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(UnsupportedKerasLayerError);
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as Error).message).toMatch(/'my_attention' \(class MyAttention\) is not supported/);
  });

  it('names a Keras 3 registered custom object', async () => {
    const config = {
      module: 'keras',
      class_name: 'Sequential',
      config: {
        name: 'seq',
        layers: [
          {
            module: 'keras.layers',
            class_name: 'InputLayer',
            config: { batch_shape: [null, 2], name: 'in' },
          },
          {
            module: 'my_package',
            class_name: 'Scaler',
            registered_name: 'Custom>Scaler',
            config: { name: 'scale_it' },
          },
        ],
      },
    };
    const archive = zipSync({
      'config.json': strToU8(JSON.stringify(config)),
      'model.weights.h5': new Uint8Array(8),
    });
    await expect(convertKeras(archive, 'custom.keras')).rejects.toThrow(
      /'scale_it' \(class Scaler\) is not supported: it is a custom object \(Custom>Scaler\)/,
    );
  });

  it('refuses GRU with reset_after=True, which TF.js cannot run', async () => {
    const config = {
      class_name: 'Sequential',
      config: {
        name: 'seq',
        layers: [
          {
            class_name: 'GRU',
            config: { name: 'gru', units: 2, reset_after: true, batch_input_shape: [null, 3, 1] },
          },
        ],
      },
    };
    const archive = zipSync({
      'config.json': strToU8(JSON.stringify(config)),
      'model.weights.h5': new Uint8Array(8),
    });
    await expect(convertKeras(archive, 'gru.keras')).rejects.toThrow(/'gru' \(class GRU\).*reset_after/);
  });

  it("refuses Keras 3's hard_sigmoid, which TF.js computes with Keras 2's formula", async () => {
    const config = {
      class_name: 'Sequential',
      config: {
        name: 'seq',
        layers: [
          { class_name: 'InputLayer', config: { batch_shape: [null, 2], name: 'in' } },
          { class_name: 'Dense', config: { name: 'gate', units: 1, activation: 'hard_sigmoid' } },
        ],
      },
    };
    const archive = zipSync({
      'metadata.json': strToU8(JSON.stringify({ keras_version: '3.5.0' })),
      'config.json': strToU8(JSON.stringify(config)),
      'model.weights.h5': new Uint8Array(8),
    });
    await expect(convertKeras(archive, 'gate.keras')).rejects.toThrow(/'gate' \(class Dense\).*hard_sigmoid/);
  });

  it('refuses a file that is not a Keras model', async () => {
    const random = new Uint8Array(256).map((_, i) => (i * 37 + 11) % 251);
    await expect(convertKeras(random, 'notes.h5')).rejects.toThrow(KerasFormatError);
    await expect(convertKeras(random, 'notes.h5')).rejects.toThrow(/notes\.h5 is not a Keras model/);
  });

  it('refuses a zip that is not a Keras 3 archive', async () => {
    const archive = zipSync({ 'readme.txt': strToU8('hello') });
    await expect(convertKeras(archive, 'model.keras')).rejects.toThrow(/not a Keras 3 archive.*readme\.txt/);
  });

  it('refuses an HDF5 file holding weights only', async () => {
    await expect(convertKeras(bytes(join(fixtures, 'weights-only.h5')), 'weights-only.h5')).rejects.toThrow(
      /has no model_config: it holds weights only/,
    );
  });
});
