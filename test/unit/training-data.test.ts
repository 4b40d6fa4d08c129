import { describe, expect, it } from 'vitest';
import { ConfigurationError, ValidationError } from '../../functions/shared/errors.js';
import { parseManifest } from '../../functions/shared/manifest.js';
import { parseCsv } from '../../functions/shared/training/csv.js';
import { loadDataset, splitDataset } from '../../functions/shared/training/dataset.js';
import { generateDiabetesCsv, PIMA_HEADER } from '../../functions/shared/training/synthetic.js';
import { MemoryObjectStore } from '../support/memory-store.js';

const definition = parseManifest({
  models: [
    {
      name: 'diabetes',
      definition: {
        features: PIMA_HEADER.slice(0, 8),
        label: 'outcome',
        layers: [{ type: 'dense', units: 1, activation: 'sigmoid' }],
        compile: {},
        fit: { epochs: 1 },
      },
    },
  ],
}).models[0]!.definition!;

describe('synthetic data', () => {
  it('is deterministic, has the Pima header and about 35% positives', () => {
    const csv = generateDiabetesCsv();
    expect(generateDiabetesCsv()).toBe(csv);
    expect(generateDiabetesCsv(768, 7)).not.toBe(csv);
    const lines = csv.trim().split('\n');
    expect(lines[0]).toBe(
      'pregnancies,glucose,blood_pressure,skin_thickness,insulin,bmi,diabetes_pedigree,age,outcome',
    );
    expect(lines).toHaveLength(769);
    const positive = lines.slice(1).filter((l) => l.endsWith(',1')).length / 768;
    expect(positive).toBeGreaterThan(0.28);
    expect(positive).toBeLessThan(0.42);
    const parsed = parseCsv(csv, 'synthetic.csv', definition);
    expect(parsed).toMatchObject({ rows: 768, rejectedRows: 0 });
  });
});

describe('CSV parsing', () => {
  it('counts and reports rows that do not fit, and uses only the rest', () => {
    const csv = [
      'age,outcome,glucose,pregnancies,blood_pressure,skin_thickness,insulin,bmi,diabetes_pedigree,note',
      '50,1,148,6,72,35,0,33.6,0.627,ok',
      '31,0,85,1,66,29,0,26.6,0.351', // a field short
      '32,0,,1,66,29,0,26.6,0.351,x', // empty
      '33,0,abc,1,66,29,0,26.6,0.351,x', // not a number
      '34,0,1e999,1,66,29,0,26.6,0.351,x', // not finite
      '35,2,90,1,66,29,0,26.6,0.351,x', // label not 0/1
      '36,0,0x10,1,66,29,0,26.6,0.351,x', // hex is not a number here
      '',
      '21,0,89,1,66,23,94,28.1,0.167,"quoted, fine"',
    ].join('\n');
    const parsed = parseCsv(csv, 'data.csv', definition);
    expect(parsed.rows).toBe(2);
    expect(parsed.rejectedRows).toBe(6);
    expect(parsed.rejectedByKind).toEqual({
      'field-count': 1,
      empty: 1,
      'not-a-number': 2,
      'not-finite': 1,
      label: 1,
    });
    expect(parsed.rejections[0]).toMatchObject({ key: 'data.csv', line: 3, kind: 'field-count' });
    expect(parsed.rejections.map((r) => r.reason).join('\n')).toMatch(/outcome must be 0 or 1/);
    // Columns come out in the definition's order, whatever the file's.
    expect(parsed.x.slice(0, 8)).toEqual([6, 148, 72, 35, 0, 33.6, 0.627, 50]);
    expect(parsed.y).toEqual([1, 0]);
  });

  it('refuses a file whose header lacks a column', () => {
    expect(() => parseCsv('glucose,outcome\n1,0\n', 'bad.csv', definition)).toThrow(ValidationError);
    expect(() => parseCsv('glucose,outcome\n1,0\n', 'bad.csv', definition)).toThrow(
      /lacks columns pregnancies/,
    );
  });
});

describe('loading a dataset', () => {
  it('reads the CSV objects in key order and fingerprints them', async () => {
    const store = new MemoryObjectStore();
    const csv = generateDiabetesCsv(100, 1);
    const [header, ...rows] = csv.trim().split('\n');
    await store.put('datasets/diabetes/b.csv', `${header}\n${rows.slice(50).join('\n')}\n`);
    await store.put('datasets/diabetes/a.csv', `${header}\n${rows.slice(0, 50).join('\n')}\nx,1,2\n`);
    await store.put('datasets/diabetes/README.txt', 'not data');
    const data = await loadDataset(store, 'datasets/diabetes/', definition);
    expect(data.objects.map((o) => o.key)).toEqual(['datasets/diabetes/a.csv', 'datasets/diabetes/b.csv']);
    expect(data).toMatchObject({ rows: 100, rejectedRows: 1, features: 8 });
    const again = await loadDataset(store, 'datasets/diabetes/', definition);
    expect(again.fingerprint).toBe(data.fingerprint);
    await store.put('datasets/diabetes/c.csv', `${header}\n${rows[0]}\n`);
    expect((await loadDataset(store, 'datasets/diabetes/', definition)).fingerprint).not.toBe(
      data.fingerprint,
    );
  });

  it('refuses clearly when there is no data or too much', async () => {
    const store = new MemoryObjectStore();
    await expect(loadDataset(store, 'datasets/diabetes/', definition)).rejects.toThrow(ConfigurationError);
    await store.put('datasets/diabetes/a.csv', generateDiabetesCsv(100));
    await expect(loadDataset(store, 'datasets/diabetes/', definition, { maxBytes: 1000 })).rejects.toThrow(
      /reads at most/,
    );
  });
});

describe('train/validation split', () => {
  const parsed = parseCsv(generateDiabetesCsv(1000, 3), 'x.csv', definition);
  const data = {
    x: Float32Array.from(parsed.x),
    y: Float32Array.from(parsed.y),
    rows: parsed.rows,
    features: 8,
  };

  it('is deterministic for a seed, differs across seeds, and holds out about the asked share', () => {
    const a = splitDataset(data, 0.2, 42);
    const b = splitDataset(data, 0.2, 42);
    expect(a.validation.x).toEqual(b.validation.x);
    expect(a.train.y).toEqual(b.train.y);
    expect(a.train.rows + a.validation.rows).toBe(1000);
    expect(a.validation.rows).toBeGreaterThan(160);
    expect(a.validation.rows).toBeLessThan(240);
    expect(splitDataset(data, 0.2, 43).validation.x).not.toEqual(a.validation.x);
  });

  it('keeps every row on its side when data is appended', () => {
    const head = { ...data, rows: 600, x: data.x.slice(0, 600 * 8), y: data.y.slice(0, 600) };
    const rowsOf = (e: { x: Float32Array; rows: number }) =>
      new Set(Array.from({ length: e.rows }, (_, r) => e.x.slice(r * 8, r * 8 + 8).join(',')));
    const before = rowsOf(splitDataset(head, 0.2, 42).validation);
    const after = rowsOf(splitDataset(data, 0.2, 42).validation);
    for (const row of before) expect(after.has(row)).toBe(true);
  });
});
