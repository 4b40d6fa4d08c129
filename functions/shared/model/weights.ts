/**
 * A faster way to turn layers-model artifacts into a LayersModel than `loadLayersModel`, for big
 * models. What tfjs does with the weights (profiled on the wasm backend):
 *
 *  - builds every weight first with a `zeros` initializer: a fresh JS array the size of all the
 *    weights, copied into the wasm heap, only to be overwritten;
 *  - `io.decodeWeights` slices each weight out of the shards into a fresh ArrayBuffer (a copy);
 *  - `BackendWasm.move` copies that again into the wasm heap.
 *
 * Fresh memory is what costs: the first touch of each page is a page fault, costly on a micro-VM
 * such as Lambda's. Here each float32/int32 weight is copied once, straight from the shard buffers
 * into its tensor (into the wasm heap on the wasm backend; on the cpu backend an aligned weight
 * within one shard is not copied at all: its tensor is a view over the shard), and on wasm the
 * placeholder weights the model is built with are uninitialized heap memory, never touched (on cpu
 * tfjs's zeros already cost nothing: a lazily zeroed array nothing reads). Anything else (quantized
 * weights, other dtypes) is decoded by tfjs. The tfjs internals this needs are in tfjs-internals.ts;
 * where they cannot be trusted, the functions here decline and tfjs's own loader is used. Figures:
 * docs/benchmarks.md, rounds 2 (this path) and 5 (page faults).
 */
import type * as tfc from '@tensorflow/tfjs-core';
import type { io, NamedTensorMap, Tensor } from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { IntegrityError } from '../errors.js';
import type { BodySink } from '../registry/store.js';
import type { TfRuntime } from '../runtime/types.js';
import { buildForLoading, canBuildForLoading, type WasmHeap, wasmHeap } from './tfjs-internals.js';

/** How one weight became a tensor, for tests and logs. */
export type WeightPath =
  /** copied once, straight from the shards into the wasm heap */
  | 'heap'
  /** a typed-array view over one shard: no copy on the JS side */
  | 'view'
  /** crossed a shard boundary or was unaligned: gathered once into a new array */
  | 'copy'
  /** quantized or another dtype: decoded by tfjs */
  | 'tfjs';

export interface DecodedWeights {
  readonly tensors: NamedTensorMap;
  readonly paths: Readonly<Record<string, WeightPath>>;
}

/** Bytes per stored value, by dtype (a quantized weight is stored as its quantization dtype). */
export const VALUE_BYTES: Readonly<Record<string, number>> = {
  float32: 4,
  int32: 4,
  bool: 1,
  complex64: 8,
  uint8: 1,
  uint16: 2,
  float16: 2,
};

function parts(weightData: io.WeightData): Uint8Array[] {
  const buffers = Array.isArray(weightData) ? weightData : [weightData];
  return buffers.map((b: ArrayBuffer | ArrayBufferView) =>
    ArrayBuffer.isView(b) ? new Uint8Array(b.buffer, b.byteOffset, b.byteLength) : new Uint8Array(b),
  );
}

/** Bytes a weight takes in the weight data; undefined when it cannot be known without parsing (strings). */
function byteLengthOf(spec: io.WeightsManifestEntry): number | undefined {
  const size = spec.shape.reduce((n, d) => n * d, 1);
  const per = VALUE_BYTES[spec.quantization ? spec.quantization.dtype : spec.dtype];
  return per === undefined ? undefined : size * per;
}

/** Whether `decodeWeightTensors` can decode these specs (no strings: their length is in the data). */
function canDecode(specs: readonly io.WeightsManifestEntry[]): boolean {
  return specs.every((s) => byteLengthOf(s) !== undefined);
}

/**
 * Decodes weight data (one buffer or shards, in order) into tensors, one per spec, copying each
 * float32/int32 weight at most once. The caller owns (and disposes) the tensors.
 */
export function decodeWeightTensors(
  tf: typeof tfc,
  specs: readonly io.WeightsManifestEntry[],
  weightData: io.WeightData,
): DecodedWeights {
  const shards = parts(weightData);
  const total = shards.reduce((n, s) => n + s.byteLength, 0);
  const heap = wasmHeap(tf);
  const tensors: NamedTensorMap = {};
  const paths: Record<string, WeightPath> = {};
  // Specs are laid out back to back in shard order: one walk over the shards.
  let shard = 0;
  let shardStart = 0;
  let offset = 0;
  /** The pieces of [offset, offset + length) in the shards, in order. */
  const take = (length: number): Uint8Array[] => {
    const pieces: Uint8Array[] = [];
    let remaining = length;
    while (remaining > 0) {
      const current = shards[shard]!;
      const local = offset - shardStart;
      const n = Math.min(remaining, current.byteLength - local);
      if (n > 0) pieces.push(current.subarray(local, local + n));
      remaining -= n;
      offset += n;
      if (offset - shardStart === current.byteLength && shard < shards.length - 1) {
        shardStart += current.byteLength;
        shard++;
      }
    }
    return pieces;
  };
  try {
    for (const spec of specs) {
      const length = byteLengthOf(spec);
      if (length === undefined)
        throw new IntegrityError(`weight ${spec.name}: cannot decode dtype ${spec.dtype}`);
      if (offset + length > total) {
        throw new IntegrityError(
          `weight data holds ${total} bytes, but weight ${spec.name} ends at byte ${offset + length}`,
        );
      }
      const pieces = take(length);
      const shape = [...spec.shape];
      const plain = !spec.quantization && (spec.dtype === 'float32' || spec.dtype === 'int32');
      let tensor: Tensor;
      let path: WeightPath;
      if (!plain) {
        const bytes = gather(pieces, length);
        tensor = tf.io.decodeWeights(bytes.buffer as ArrayBuffer, [spec])[spec.name]!;
        path = 'tfjs';
      } else if (heap && length > 0) {
        tensor = heap.allocate(shape, spec.dtype);
        const bytes = heap.bytesOf(tensor);
        let at = 0;
        for (const piece of pieces) {
          bytes.set(piece, at);
          at += piece.byteLength;
        }
        path = 'heap';
      } else {
        const single = pieces.length <= 1 ? (pieces[0] ?? new Uint8Array(0)) : undefined;
        const aligned = single !== undefined && single.byteOffset % 4 === 0;
        const bytes = aligned ? single : gather(pieces, length);
        const Values = spec.dtype === 'int32' ? Int32Array : Float32Array;
        const values = new Values(bytes.buffer as ArrayBuffer, bytes.byteOffset, length / 4);
        tensor = tf.tensor(values, shape, spec.dtype);
        path = aligned ? 'view' : 'copy';
      }
      tensors[spec.name] = tensor;
      paths[spec.name] = path;
    }
  } catch (error) {
    tf.dispose(Object.values(tensors));
    throw error;
  }
  return { tensors, paths };
}

/** The pieces, in order, in one new array of `length` bytes. */
export function gather(pieces: readonly Uint8Array[], length: number): Uint8Array {
  const out = new Uint8Array(length);
  let at = 0;
  for (const piece of pieces) {
    out.set(piece, at);
    at += piece.byteLength;
  }
  return out;
}

/**
 * Loads a layers model from artifacts like `loadLayersModel(io.fromMemory(artifacts))` does, but
 * faster (see above); undefined when the artifacts need tfjs's own loader (no weights, optimizer
 * weights, string weights) or tfjs's internals cannot be trusted (see tfjs-internals.ts).
 */
export async function loadLayersModelFast(
  runtime: TfRuntime,
  artifacts: io.ModelArtifacts,
): Promise<{ model: LayersModel; paths: Readonly<Record<string, WeightPath>> } | undefined> {
  const { weightSpecs, weightData, modelTopology } = artifacts;
  if (!weightSpecs || !weightData || !modelTopology || modelTopology instanceof ArrayBuffer) return undefined;
  if (weightSpecs.some((s) => s.group === 'optimizer') || !canDecode(weightSpecs)) return undefined;
  if (!canBuildForLoading(runtime, modelTopology)) return undefined;
  // Weights first: on wasm they take the heap memory the previous model freed (its pages already
  // mapped); the placeholders then get fresh memory that nothing ever writes to.
  const { tensors, paths } = decodeWeightTensors(runtime.tf, weightSpecs, weightData);
  const model = await assemble(runtime, artifacts, tensors);
  return model ? { model, paths } : undefined;
}

/**
 * The model the artifacts' topology describes, holding these weights; undefined when it cannot be
 * built here (see `canBuildForLoading`). Takes the tensors: they are disposed whatever happens.
 */
async function assemble(
  runtime: TfRuntime,
  artifacts: Omit<io.ModelArtifacts, 'weightData'>,
  tensors: NamedTensorMap,
): Promise<LayersModel | undefined> {
  const { tf } = runtime;
  let model: LayersModel | undefined;
  try {
    const building = buildForLoading(runtime, artifacts.modelTopology as object, wasmHeap(tf));
    if (!building) return undefined;
    model = await building;
    if (artifacts.trainingConfig) {
      // The same object, typed by core (io) and by layers (keras format).
      model.loadTrainingConfig(artifacts.trainingConfig as Parameters<LayersModel['loadTrainingConfig']>[0]);
    }
    if (artifacts.userDefinedMetadata) model.setUserDefinedMetadata(artifacts.userDefinedMetadata);
    model.loadWeights(tensors, true);
    return model;
  } catch (error) {
    model?.dispose();
    throw error;
  } finally {
    tf.dispose(Object.values(tensors));
  }
}

interface Placed {
  readonly name: string;
  /** Where the weight starts and ends in the shards laid end to end. */
  readonly start: number;
  readonly end: number;
  readonly tensor: Tensor;
}

/**
 * A layers model's weights received straight into their tensors in the wasm heap, as the shards
 * arrive: the bytes are copied once, from the socket's chunks, into memory the heap already has
 * (`decodeWeightTensors` copies them from shard buffers that first had to be allocated and
 * faulted in). Made from model.json before the shards' bodies; `sink(shard)` is where each goes.
 * The caller verifies the shards (sizes and sha256) before `build()`, and calls `dispose()`
 * instead if anything fails.
 */
export class WeightReceiver {
  private readonly placed: Placed[];
  private readonly shards: ReadonlyMap<string, { readonly start: number; readonly length: number }>;
  private disposed = false;

  private constructor(
    private readonly runtime: TfRuntime,
    private readonly artifacts: Omit<io.ModelArtifacts, 'weightData'>,
    shardList: readonly (readonly [name: string, size: number])[],
    private readonly heap: WasmHeap,
  ) {
    const shards = new Map<string, { start: number; length: number }>();
    let total = 0;
    for (const [name, length] of shardList) {
      shards.set(name, { start: total, length });
      total += length;
    }
    this.shards = shards;
    this.placed = [];
    let at = 0;
    try {
      for (const spec of artifacts.weightSpecs ?? []) {
        const length = byteLengthOf(spec) ?? 0;
        if (at + length > total) {
          throw new IntegrityError(
            `weight data holds ${total} bytes, but weight ${spec.name} ends at byte ${at + length}`,
          );
        }
        const tensor = this.heap.allocate([...spec.shape], spec.dtype);
        this.placed.push({ name: spec.name, start: at, end: at + length, tensor });
        at += length;
      }
    } catch (error) {
      this.dispose();
      throw error;
    }
  }

  /**
   * A receiver for these artifacts (all but their weight data), whose weights lie in these shards
   * (file names in order, with their sizes); undefined when the weights need tfjs's own decoding
   * (quantized, other dtypes, optimizer weights), the backend is not wasm, the topology names no
   * registered model class, or tfjs's internals cannot be trusted (see tfjs-internals.ts).
   */
  static for(
    runtime: TfRuntime,
    artifacts: Omit<io.ModelArtifacts, 'weightData'>,
    shards: readonly (readonly [name: string, size: number])[],
  ): WeightReceiver | undefined {
    const { weightSpecs, modelTopology } = artifacts;
    if (!weightSpecs || !modelTopology || modelTopology instanceof ArrayBuffer) return undefined;
    const heap = wasmHeap(runtime.tf);
    if (!heap || !canBuildForLoading(runtime, modelTopology)) return undefined;
    const plain = (s: io.WeightsManifestEntry) =>
      !s.quantization && (s.dtype === 'float32' || s.dtype === 'int32') && s.group !== 'optimizer';
    if (!weightSpecs.every(plain)) return undefined;
    if (new Set(shards.map(([name]) => name)).size !== shards.length) return undefined;
    return new WeightReceiver(runtime, artifacts, shards, heap);
  }

  /** Where shard `name`'s body goes; undefined for a file that is not one of the shards. */
  sink(name: string): BodySink | undefined {
    const shard = this.shards.get(name);
    if (!shard) return undefined;
    return { write: (bytes, offset) => this.write(shard.start, shard.length, bytes, offset) };
  }

  private write(shardStart: number, shardLength: number, bytes: Uint8Array, offset: number): void {
    // Bytes outside the shard's listed size are dropped, not thrown: a sink must not fail a read
    // half way, and such a shard fails its verification (size and sha256) anyway.
    if (this.disposed || offset < 0 || offset >= shardLength) return;
    const from = shardStart + offset;
    const to = from + Math.min(bytes.byteLength, shardLength - offset);
    // The first weight that ends after `from` (weights are sorted and back to back).
    let low = 0;
    let high = this.placed.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (this.placed[mid]!.end <= from) low = mid + 1;
      else high = mid;
    }
    for (let i = low; i < this.placed.length; i++) {
      const weight = this.placed[i]!;
      if (weight.start >= to) break;
      const start = Math.max(from, weight.start);
      const end = Math.min(to, weight.end);
      if (end <= start) continue;
      // Looked up per write: another tensor's allocation may have grown (and so replaced) the heap.
      this.heap.bytesOf(weight.tensor).set(bytes.subarray(start - from, end - from), start - weight.start);
    }
  }

  /** The model, once every shard has arrived and been verified. Frees the receiver's tensors. */
  async build(): Promise<LayersModel> {
    if (this.disposed) throw new Error('WeightReceiver.build after dispose');
    this.disposed = true;
    const tensors: NamedTensorMap = {};
    for (const weight of this.placed) tensors[weight.name] = weight.tensor;
    const model = await assemble(this.runtime, this.artifacts, tensors);
    // `for` checked the model class: assemble cannot decline.
    if (!model) throw new IntegrityError('model.json names no known model class');
    return model;
  }

  /** Frees the weights received so far (a shard failed, or the load was abandoned). */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.runtime.tf.dispose(this.placed.map((w) => w.tensor));
  }
}
