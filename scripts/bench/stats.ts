/**
 * The statistics behind `npm run bench`'s ratios. These VMs are noisy (a sample moves by ±30 % and
 * more), so a ratio is the median of back-to-back pairs, and it comes with an interval that says
 * how far that median could be from the one a much longer run would give.
 */

/** The median of samples (the mean of the middle two for an even count). */
export function median(xs: readonly number[]): number {
  if (xs.length === 0) throw new RangeError('median of no samples');
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** a[i] / b[i] for samples taken back to back. */
export function pairedRatios(a: readonly number[], b: readonly number[]): number[] {
  if (a.length !== b.length) throw new RangeError(`unpaired samples: ${a.length} and ${b.length}`);
  return a.map((x, i) => x / b[i]!);
}

/** P(X ≤ k) for X ~ Binomial(n, 1/2). */
function binomialHalfCdf(n: number, k: number): number {
  let term = 0.5 ** n; // P(X = 0)
  let sum = 0;
  for (let i = 0; i <= k; i++) {
    sum += term;
    term = (term * (n - i)) / (i + 1);
  }
  return sum;
}

export interface MedianInterval {
  readonly low: number;
  readonly high: number;
  /** The interval's actual coverage: order statistics give only certain levels. */
  readonly confidence: number;
}

/**
 * A distribution-free confidence interval for the median: the narrowest pair of order statistics
 * x(k), x(n+1-k) that covers the true median with at least `confidence`, as the binomial
 * distribution gives (no assumption about the samples' shape: these are skewed by the VM's
 * stalls). With too few samples for that level, the widest interval, [min, max], and its coverage.
 */
export function medianInterval(xs: readonly number[], confidence = 0.95): MedianInterval {
  if (xs.length === 0) throw new RangeError('interval of no samples');
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  let k = 1;
  // Each step inward drops coverage by 2·P(X = k); stop before it falls below the level asked.
  while (k < Math.ceil(n / 2) && 1 - 2 * binomialHalfCdf(n, k) >= confidence) k++;
  return { low: s[k - 1]!, high: s[n - k]!, confidence: 1 - 2 * binomialHalfCdf(n, k - 1) };
}

/** A figure rounded for the report. */
export const round = (x: number, digits = 2) => Number(x.toFixed(digits));

/** A ratio's 95 % interval (see medianInterval), rounded as the ratio is. */
export const interval = (ratios: readonly number[]) => {
  const { low, high, confidence } = medianInterval(ratios);
  return { low: round(low), high: round(high), confidence: round(confidence, 3) };
};
