import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadManifest } from '../../functions/shared/manifest.js';
import { parseCsv } from '../../functions/shared/training/csv.js';
import { splitDataset } from '../../functions/shared/training/dataset.js';
import { evaluateModel, trainModel } from '../../functions/shared/training/train.js';
import { createRuntime } from '../../layers/tfjs-runtime/runtime.js';

const PIMA = fileURLToPath(new URL('../../../shared/data/pima-indians-diabetes.csv', import.meta.url));
const present = existsSync(PIMA);
if (!present) console.warn(`training-pima: skipped, ${PIMA} is absent (no ../shared on this clone)`);

describe('Pima Indians Diabetes quality anchor', () => {
  it.runIf(present)(
    "the manifest's diabetes network reaches val_accuracy ≥ 0.74 on the held-out split",
    async () => {
      const runtime = await createRuntime('cpu');
      const spec = loadManifest(
        fileURLToPath(new URL('../../models/manifest.json', import.meta.url)),
      ).models.find((m) => m.name === 'diabetes')!;
      const definition = spec.definition!;
      const parsed = parseCsv(readFileSync(PIMA), 'pima-indians-diabetes.csv', definition);
      expect(parsed).toMatchObject({ rows: 768, rejectedRows: 0 });
      const split = splitDataset(
        { x: Float32Array.from(parsed.x), y: Float32Array.from(parsed.y), rows: parsed.rows, features: 8 },
        definition.fit.validationSplit,
        definition.fit.seed,
      );
      const trained = await trainModel({ runtime, definition, train: split.train });
      try {
        const metrics = await evaluateModel(runtime, trained.model, definition, split.validation, 'val_');
        console.info(
          `training-pima: val_accuracy ${metrics.val_accuracy?.toFixed(4)} on ${split.validation.rows} held-out rows ` +
            `(${definition.fit.epochs} epochs, lr ${definition.compile.learningRate})`,
        );
        expect(metrics.val_accuracy).toBeGreaterThanOrEqual(0.74);
      } finally {
        trained.model.dispose();
      }
    },
  );
});
