/**
 * The limits on what a Keras file may make the converter read into memory, apart from the
 * converter so the CLI can name and set them without loading h5wasm.
 */

/** How much a Keras file may make the converter read into memory. */
export interface KerasLimits {
  /**
   * Weights read, in all (model.weights.h5 inflated, and the weight datasets' declared sizes), and
   * every entry of a .keras archive together. @default 2 GiB
   */
  readonly maxBytes: number;
  /** config.json and metadata.json of a .keras archive, each. @default 64 MiB */
  readonly maxJsonBytes: number;
  /** Declared inflated : compressed ratio of a .keras entry over 1 MiB. @default 100 */
  readonly maxRatio: number;
}

export const DEFAULT_KERAS_LIMITS: KerasLimits = {
  maxBytes: 2 * 2 ** 30,
  maxJsonBytes: 64 * 2 ** 20,
  maxRatio: 100,
};

/** Where the CLI reads `maxBytes` from (the environment contract's name), named in the refusals. */
