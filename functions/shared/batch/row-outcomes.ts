/**
 * Each row's outcome in a batch job, by its index, for the final step (assemble.ts). A row scored
 * `[value]` for one output (nearly every row) is kept as that number in an array, without an object
 * per row; any other as its BatchRowResult in a map. The array holds indexes below a capacity given
 * up front (the rows the results hold); any other index lives in the map. Pure.
 */
import type { BatchRowResult } from './events.js';

export class RowOutcomes {
  /** Rows with an outcome. */
  size = 0;
  /** NaN: no number (JSON has no NaN). */
  private readonly values: Float64Array;
  /** The output the numbers are values of: the first one set. */
  private valueOutput: string | undefined;
  private readonly others = new Map<number, BatchRowResult>();
  private outputNames: readonly string[] = [];
  /** True when the output names are [valueOutput]: a number is then the row's whole outcome. */
  private plain = false;

  constructor(capacity: number) {
    this.values = new Float64Array(capacity).fill(Number.NaN);
  }

  /** The output names, once collectOutcomes has named them. */
  get names(): readonly string[] {
    return this.outputNames;
  }

  nameOutputs(names: readonly string[]): void {
    this.outputNames = names;
    this.plain = names.length === 1 && names[0] === this.valueOutput;
  }

  /** Row `index`'s outcome: the one output's value (see names), or its result. */
  get(index: number): number | BatchRowResult | undefined {
    const value = this.valueAt(index);
    if (Number.isNaN(value)) return this.others.get(index);
    return this.plain ? value : { index, outputs: { [this.valueOutput!]: [value] } };
  }

  has(index: number): boolean {
    return !Number.isNaN(this.valueAt(index)) || this.others.has(index);
  }

  /** Row `index`'s output names, when its outcome has outputs. */
  outputsOf(index: number): readonly string[] | undefined {
    if (!Number.isNaN(this.valueAt(index))) return [this.valueOutput!];
    const other = this.others.get(index);
    return other && 'outputs' in other ? Object.keys(other.outputs) : undefined;
  }

  /** Row `index` scored `[value]` for `output`. */
  setValue(index: number, output: string, value: number): void {
    this.valueOutput ??= output;
    if (index >= this.values.length || output !== this.valueOutput) {
      this.set({ index, outputs: { [output]: [value] } });
      return;
    }
    // A result in the map under this index stays there unread: the number comes first.
    if (!this.has(index)) this.size++;
    this.values[index] = value;
  }

  set(result: BatchRowResult): void {
    const { index } = result;
    if (!this.has(index)) this.size++;
    else if (index < this.values.length) this.values[index] = Number.NaN;
    this.others.set(index, result);
  }

  /** The number kept for row `index`, or NaN. */
  private valueAt(index: number): number {
    return index >= 0 && index < this.values.length ? this.values[index]! : Number.NaN;
  }
}
