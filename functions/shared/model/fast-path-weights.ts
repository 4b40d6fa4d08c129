/**
 * The fast path's weights: counted from model.json's manifest (float32, unquantized, within the
 * parameter cap), then copied out of the shards by name, with tfjs-layers' own name lookup.
 */

/** Why a model is not for the fast path (it then runs on tfjs): thrown while compiling it. */
export class Unsupported extends Error {}

export interface WeightSpec {
  readonly name: string;
  readonly shape: readonly number[];
  readonly dtype?: string;
  readonly quantization?: unknown;
}

export interface ModelJsonLike {
  readonly modelTopology?: unknown;
  readonly weightsManifest?: readonly {
    readonly paths: readonly string[];
    readonly weights: readonly WeightSpec[];
  }[];
}

/** The weights of a model by name, copied out of the shards (small by construction). */
export class Weights {
  private readonly byName = new Map<string, { shape: readonly number[]; values: Float32Array }>();
  private readonly used = new Set<string>();
  parameters = 0;

  add(name: string, shape: readonly number[], values: Float32Array) {
    this.byName.set(name, { shape, values });
    this.parameters += values.length;
  }

  /** tfjs-layers' own lookup: the exact name, else the name without its second-to-last scope. */
  take(layer: string, weight: string, shape: readonly number[]): Float32Array {
    const full = `${layer}/${weight}`;
    let found = this.byName.get(full) ? full : undefined;
    if (!found) {
      for (const name of this.byName.keys()) {
        const tokens = name.split('/');
        if ([...tokens.slice(0, -2), tokens[tokens.length - 1]].join('/') === full) found = name;
      }
    }
    const entry = found ? this.byName.get(found) : undefined;
    if (!found || !entry) throw new Unsupported(`no weight ${full}`);
    if (entry.shape.length !== shape.length || entry.shape.some((d, i) => d !== shape[i]))
      throw new Unsupported(
        `weight ${full} has shape [${entry.shape.join(', ')}], expected [${shape.join(', ')}]`,
      );
    this.used.add(found);
    return entry.values;
  }

  unused(): string[] {
    return [...this.byName.keys()].filter((n) => !this.used.has(n));
  }
}

export function countWeights(json: ModelJsonLike, maxParameters: number): number {
  const manifest = json?.weightsManifest;
  if (!Array.isArray(manifest)) throw new Unsupported('no weights manifest');
  let total = 0;
  for (const group of manifest as NonNullable<ModelJsonLike['weightsManifest']>) {
    for (const spec of group.weights) {
      if (spec.quantization) throw new Unsupported(`weight ${spec.name} is quantized`);
      if ((spec.dtype ?? 'float32') !== 'float32')
        throw new Unsupported(`weight ${spec.name} is ${spec.dtype}`);
      total += spec.shape.reduce((a, b) => a * b, 1);
    }
  }
  if (total > maxParameters)
    throw new Unsupported(`${total} weights (the fast path takes up to ${maxParameters})`);
  return total;
}

export function readWeights(
  json: ModelJsonLike,
  shards: ReadonlyMap<string, Uint8Array>,
  maxParameters: number,
): Weights {
  countWeights(json, maxParameters);
  const weights = new Weights();
  for (const group of json.weightsManifest ?? []) {
    const parts = group.paths.map((p) => {
      const bytes = shards.get(p.slice(p.lastIndexOf('/') + 1));
      if (!bytes) throw new Unsupported(`weight shard ${p} is missing`);
      return bytes;
    });
    const reader = new ShardReader(parts);
    for (const spec of group.weights) {
      const count = spec.shape.reduce((a, b) => a * b, 1);
      weights.add(spec.name, spec.shape, reader.floats(count, spec.name));
    }
  }
  return weights;
}

/** Reads consecutive float32 weights from shards that split them at arbitrary byte offsets. */
class ShardReader {
  private part = 0;
  private offset = 0;
  constructor(private readonly parts: readonly Uint8Array[]) {}

  floats(count: number, name: string): Float32Array {
    const out = new Float32Array(count);
    const bytes = new Uint8Array(out.buffer);
    let filled = 0;
    while (filled < bytes.length) {
      const part = this.parts[this.part];
      if (!part) throw new Unsupported(`the shards end before weight ${name}`);
      const n = Math.min(part.length - this.offset, bytes.length - filled);
      bytes.set(part.subarray(this.offset, this.offset + n), filled);
      filled += n;
      this.offset += n;
      if (this.offset === part.length) {
        this.part++;
        this.offset = 0;
      }
    }
    return out;
  }
}
