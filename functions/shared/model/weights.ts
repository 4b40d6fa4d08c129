/**
 * A faster way to turn layers-model artifacts into a LayersModel than `loadLayersModel`, for big
 * models. What tfjs does for 50 MB of weights (profiled on the wasm backend):
 *
 *  - builds every weight first with a `zeros` initializer: a fresh 50 MB JS array, copied into the
 *    wasm heap, only to be overwritten;
 *  - `io.decodeWeights` slices each weight out of the shards into a fresh ArrayBuffer (a copy);
 *  - `BackendWasm.move` copies that again into the wasm heap.
 *
 * Fresh memory is what costs: the first touch of each page is a page fault, several ms per MB on
 * a micro-VM such as Lambda's. Here each float32/int32 weight is copied once, straight from the
 * shard buffers into its tensor (into the wasm heap on the wasm backend; on the cpu backend an
 * aligned weight within one shard is not copied at all: its tensor is a view over the shard), and
 * on wasm the placeholder weights the model is built with are uninitialized heap memory, never
 * touched (on cpu tfjs's zeros already cost nothing: a lazily zeroed array nothing reads). Anything
 * else (quantized weights, other dtypes) is decoded by tfjs.
 *
 * Measured (Dense 3200→4096→1, 52.5 MB in 13 shards, wasm, Node 20, in memory): `loadLayersModel`
 * ~330 ms warm and ~700-850 ms on a fresh process; `loadLayersModelFast` ~5 ms warm and ~230-340 ms
 * on a fresh process (the first touch of the heap pages the weights land in).
 */
import type * as tfc from '@tensorflow/tfjs-core';
import type { DataType, io, NamedTensorMap, Tensor, TensorInfo } from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { IntegrityError } from '../errors.js';
import type { BodySink } from '../registry/store.js';
import type { TfRuntime } from '../runtime/types.js';

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

const VALUE_BYTES: Readonly<Record<string, number>> = {
  float32: 4,
  int32: 4,
  bool: 1,
  complex64: 8,
  uint8: 1,
  uint16: 2,
  float16: 2,
};

/** The wasm backend's own way to allocate a tensor in its heap and reach its bytes (what its kernels use). */
interface HeapBackend extends tfc.KernelBackend {
  makeOutput(shape: number[], dtype: DataType): TensorInfo;
  typedArrayFromHeap(info: TensorInfo): Float32Array | Int32Array | Uint8Array;
}

function heapBackend(tf: typeof tfc): HeapBackend | undefined {
  if (tf.getBackend() !== 'wasm') return undefined;
  const backend = tf.backend() as Partial<HeapBackend>;
  return typeof backend.makeOutput === 'function' && typeof backend.typedArrayFromHeap === 'function'
    ? (backend as HeapBackend)
    : undefined;
}

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
  const heap = heapBackend(tf);
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
        tensor = tf.engine().makeTensorFromTensorInfo(heap.makeOutput(shape, spec.dtype), heap);
        const target = heap.typedArrayFromHeap(tensor);
        const bytes = new Uint8Array(target.buffer, target.byteOffset, target.byteLength);
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

type ClassEntry = tfc.serialization.SerializationMap['classNameMap'][string];
type FromConfig = (
  cls: ClassEntry[0],
  config: tfc.serialization.ConfigDict,
  customObjects?: tfc.serialization.ConfigDict,
  fastWeightInit?: boolean,
) => tfc.serialization.Serializable;
type Initializing = new (...args: unknown[]) => { apply(shape: number[], dtype?: DataType): Tensor };

/** Set only while `buildForLoading` builds a model, synchronously. */
let placeholder: ((shape: number[], dtype: DataType) => Tensor | undefined) | undefined;
const placeholderClasses = new WeakMap<object, ClassEntry[0]>();

/**
 * A subclass of the `zeros` initializer that, while a model is being built here, makes an
 * uninitialized tensor instead. Same class name and config as its parent, so a layer that keeps
 * it (a bias initializer) serializes exactly as if built by tfjs; outside a build it is `zeros`.
 */
function placeholderClass(cls: ClassEntry[0]): ClassEntry[0] {
  let sub = placeholderClasses.get(cls);
  if (!sub) {
    const Base = cls as unknown as Initializing;
    sub = class extends Base {
      override apply(shape: number[], dtype?: DataType): Tensor {
        return placeholder?.(shape, dtype ?? 'float32') ?? super.apply(shape, dtype);
      }
    } as unknown as ClassEntry[0];
    placeholderClasses.set(cls, sub);
  }
  return sub;
}

/** The registered model class the topology names (`Sequential`, `Model`...), if any. */
function modelClassOf(runtime: TfRuntime, modelTopology: object): string | undefined {
  const config = modelTopology as { model_config?: { class_name?: unknown }; class_name?: unknown };
  const className = (config.model_config ?? config).class_name;
  const map = runtime.tf.serialization.SerializationMap.getMap().classNameMap;
  return typeof className === 'string' && map[className] ? className : undefined;
}

/**
 * Builds a model from its topology the way `loadLayersModel` does when weights follow: with tfjs's
 * "fast weight init", every weight created by the `zeros` initializer whatever the layer's own
 * (no random initializers on millions of weights), for `loadWeights` to replace. On wasm the zeros
 * become uninitialized heap memory, never touched: no 50 MB JS array of zeros copied into the heap.
 *
 * tfjs exposes that build only inside `loadLayersModel`, which then decodes the weights its own
 * way; `models.modelFromJSON` does the same build (same topology conversion, same deserializer)
 * without the flag. So for the duration of the build, synchronous (`modelFromJSON` without a
 * weights manifest builds the model before its first await), the serialization registry's entry
 * for the model class passes the flag, and the one for `Zeros` makes placeholders. Undefined when
 * the topology names no registered model class (tfjs's loader then says what is wrong).
 */
function buildForLoading(runtime: TfRuntime, modelTopology: object): Promise<LayersModel> | undefined {
  const { tf, layers } = runtime;
  const className = modelClassOf(runtime, modelTopology);
  const map = tf.serialization.SerializationMap.getMap().classNameMap;
  const modelEntry = className ? map[className] : undefined;
  if (!className || !modelEntry) return undefined;
  const heap = heapBackend(tf);
  const zerosEntry = heap ? map.Zeros : undefined;
  const fromConfig = modelEntry[1] as unknown as FromConfig;
  try {
    map[className] = [
      modelEntry[0],
      ((cls, conf, customObjects) =>
        fromConfig(cls, conf, customObjects, true)) as FromConfig as ClassEntry[1],
    ];
    if (heap && zerosEntry) {
      map.Zeros = [placeholderClass(zerosEntry[0]), zerosEntry[1]];
      placeholder = (shape, dtype) =>
        dtype === 'float32' || dtype === 'int32' || dtype === 'bool'
          ? tf.engine().makeTensorFromTensorInfo(heap.makeOutput(shape, dtype), heap)
          : undefined;
    }
    return layers.models.modelFromJSON({ modelTopology } as Parameters<
      typeof layers.models.modelFromJSON
    >[0]);
  } finally {
    map[className] = modelEntry;
    if (zerosEntry) map.Zeros = zerosEntry;
    placeholder = undefined;
  }
}

/**
 * Loads a layers model from artifacts like `loadLayersModel(io.fromMemory(artifacts))` does, but
 * faster (see above); undefined when the artifacts need tfjs's own loader (no weights, optimizer
 * weights, string weights).
 */
export async function loadLayersModelFast(
  runtime: TfRuntime,
  artifacts: io.ModelArtifacts,
): Promise<{ model: LayersModel; paths: Readonly<Record<string, WeightPath>> } | undefined> {
  const { weightSpecs, weightData, modelTopology } = artifacts;
  if (!weightSpecs || !weightData || !modelTopology || modelTopology instanceof ArrayBuffer) return undefined;
  if (weightSpecs.some((s) => s.group === 'optimizer') || !canDecode(weightSpecs)) return undefined;
  // Weights first: on wasm they take the heap memory the previous model freed (its pages already
  // mapped); the placeholders then get fresh memory that nothing ever writes to.
  const { tensors, paths } = decodeWeightTensors(runtime.tf, weightSpecs, weightData);
  const model = await assemble(runtime, artifacts, tensors);
  return model ? { model, paths } : undefined;
}

/**
 * The model the artifacts' topology describes, holding these weights; undefined when the topology
 * names no registered model class. Takes the tensors: they are disposed whatever happens.
 */
async function assemble(
  runtime: TfRuntime,
  artifacts: Omit<io.ModelArtifacts, 'weightData'>,
  tensors: NamedTensorMap,
): Promise<LayersModel | undefined> {
  const { tf } = runtime;
  let model: LayersModel | undefined;
  try {
    const building = buildForLoading(runtime, artifacts.modelTopology as object);
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
  private readonly heap: HeapBackend;
  private disposed = false;

  private constructor(
    private readonly runtime: TfRuntime,
    private readonly artifacts: Omit<io.ModelArtifacts, 'weightData'>,
    shardList: readonly (readonly [name: string, size: number])[],
  ) {
    const { tf } = runtime;
    this.heap = heapBackend(tf) as HeapBackend;
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
        const info = this.heap.makeOutput([...spec.shape], spec.dtype);
        const tensor = tf.engine().makeTensorFromTensorInfo(info, this.heap);
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
   * (quantized, other dtypes, optimizer weights), the backend is not wasm, or the topology names
   * no registered model class.
   */
  static for(
    runtime: TfRuntime,
    artifacts: Omit<io.ModelArtifacts, 'weightData'>,
    shards: readonly (readonly [name: string, size: number])[],
  ): WeightReceiver | undefined {
    const { weightSpecs, modelTopology } = artifacts;
    if (!weightSpecs || !modelTopology || modelTopology instanceof ArrayBuffer) return undefined;
    if (!heapBackend(runtime.tf) || !modelClassOf(runtime, modelTopology)) return undefined;
    const plain = (s: io.WeightsManifestEntry) =>
      !s.quantization && (s.dtype === 'float32' || s.dtype === 'int32') && s.group !== 'optimizer';
    if (!weightSpecs.every(plain)) return undefined;
    if (new Set(shards.map(([name]) => name)).size !== shards.length) return undefined;
    return new WeightReceiver(runtime, artifacts, shards);
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
      const values = this.heap.typedArrayFromHeap(weight.tensor);
      new Uint8Array(values.buffer, values.byteOffset, values.byteLength).set(
        bytes.subarray(start - from, end - from),
        start - weight.start,
      );
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
