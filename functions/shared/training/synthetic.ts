import { createRng, normal, type Rng } from './random.js';

/** The Pima Indians Diabetes header, in the column order of the public data set. */
export const PIMA_HEADER = [
  'pregnancies',
  'glucose',
  'blood_pressure',
  'skin_thickness',
  'insulin',
  'bmi',
  'diabetes_pedigree',
  'age',
  'outcome',
] as const;

const clamp = (x: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, x));

function poisson(rng: Rng, lambda: number): number {
  // Knuth's method: fine for the small rates used here.
  const limit = Math.exp(-lambda);
  let k = 0;
  let p = rng();
  while (p > limit) {
    k++;
    p *= rng();
  }
  return k;
}

/**
 * A deterministic synthetic stand-in for the Pima Indians Diabetes data set, for tests and the
 * local stack where the real file is absent (a user's clone has no `../shared`).
 *
 * Marginals follow the real set (ranges, means, skew of age, pedigree and insulin, and its
 * "0 means not measured" entries for skin thickness and insulin). The outcome is drawn from a
 * logistic relation close to a logistic regression fitted on the real data (mostly glucose, BMI,
 * pedigree and age), so a small network can learn it to roughly the real data's accuracy and
 * about 35% of rows are positive.
 */
export function generateDiabetesCsv(rows = 768, seed = 42): string {
  const rng = createRng(seed);
  const lines: string[] = [PIMA_HEADER.join(',')];
  for (let i = 0; i < rows; i++) {
    const age = Math.round(clamp(21 + Math.exp(2.2 + 0.75 * normal(rng)), 21, 81));
    const pregnancies = Math.min(17, poisson(rng, 1.2 + (age - 21) * 0.22));
    const glucose = Math.round(clamp(121 + 30 * normal(rng), 44, 199));
    const bloodPressure = Math.round(clamp(72 + 12 * normal(rng) + 0.15 * (age - 33), 24, 122));
    const bmi = Math.round(clamp(32.3 + 6.9 * normal(rng), 18.2, 67.1) * 10) / 10;
    const skinThickness =
      rng() < 0.3 ? 0 : Math.round(clamp(29 + 0.9 * (bmi - 32.3) + 8 * normal(rng), 7, 99));
    const insulin =
      rng() < 0.48
        ? 0
        : Math.round(clamp(125 * (glucose / 121) ** 1.5 * Math.exp(0.5 * normal(rng)), 14, 846));
    const pedigree =
      Math.round(clamp(Math.exp(Math.log(0.38) + 0.6 * normal(rng)), 0.078, 2.42) * 1000) / 1000;

    const logit =
      -9.3 +
      0.038 * glucose +
      0.095 * bmi +
      1.0 * pedigree +
      0.02 * age +
      0.1 * pregnancies -
      0.01 * bloodPressure;
    const outcome = rng() < 1 / (1 + Math.exp(-logit)) ? 1 : 0;

    lines.push(
      [pregnancies, glucose, bloodPressure, skinThickness, insulin, bmi, pedigree, age, outcome].join(','),
    );
  }
  return `${lines.join('\n')}\n`;
}
