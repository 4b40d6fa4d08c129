/**
 * tfjs internals, behind one door. Contract: every use aiaas makes of tfjs beyond its public API
 * lives in this module and nowhere else. Callers get small typed functions that answer undefined
 * when the internals cannot be trusted; the caller then takes tfjs's public route
 * (`loadLayersModel` with an IOHandler: slower, the same model). What is relied on:
 *
 *  - the serialization registry (`serialization.SerializationMap.getMap().classNameMap`), whose
 *    entries are swapped for the duration of a synchronous build: a model class's `fromConfig`
 *    takes tfjs-layers' `fastWeightInit` as its fourth argument, and fast weight init makes every
 *    weight through the `Zeros` entry (its instances' `apply(shape, dtype)` makes the tensor);
 *  - `models.modelFromJSON` without a weights manifest builds the model before its first await;
 *  - the wasm backend's `makeOutput(shape, dtype)` (a tensor's memory in the heap, uninitialized)
 *    and `typedArrayFromHeap(tensorInfo)` (that memory, found by the tensor's dataId), with
 *    `engine().makeTensorFromTensorInfo` to make a tensor own it;
 *  - the Embedding layer's `inputDim` field (its config, the public way, when the field is gone).
 *
 * Version guard: these were checked against the tfjs versions in TESTED_VERSIONS. On another
 * version of tfjs-core or tfjs-layers (read from the runtime: a native image brings its own), or
 * when a member is missing, the fast route is refused and the reason logged once per process; a
 * load never fails for it. test/unit/tfjs-internals.test.ts probes each assumption on the installed
 * tfjs and fails, naming the member, when an upgrade breaks one.
 */
import type * as tfc from '@tensorflow/tfjs-core';
import type { DataType, Tensor, TensorInfo } from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import type { TfRuntime } from '../runtime/types.js';

/** tfjs releases (major.minor; patch releases keep internals) whose internals were checked here. */
export const TESTED_VERSIONS: readonly string[] = ['4.22'];

const said = new Set<string>();

/** Says once per process why the fast route is refused; always undefined, for callers to return. */
function refuse(reason: string): undefined {
  if (!said.has(reason)) {
    said.add(reason);
    console.warn(`aiaas: ${reason}; models load through tfjs's public loader instead (slower, same model)`);
  }
  return undefined;
}

function versionProblem(pkg: string, version: unknown): string | undefined {
  const minor = typeof version === 'string' ? version.split('.').slice(0, 2).join('.') : undefined;
  if (minor !== undefined && TESTED_VERSIONS.includes(minor)) return undefined;
  const tested = TESTED_VERSIONS.map((v) => `${v}.x`).join(', ');
  return `${pkg} ${String(version)} is not a version aiaas's use of tfjs internals was checked against (${tested})`;
}

type ClassNameMap = tfc.serialization.SerializationMap['classNameMap'];
type ClassEntry = ClassNameMap[string];

const isEntry = (entry: unknown): entry is ClassEntry =>
  Array.isArray(entry) && typeof entry[0] === 'function' && typeof entry[1] === 'function';

/** Why the model-building internals cannot be used on this runtime; undefined when they can. */
function buildProblem(runtime: TfRuntime): string | undefined {
  const { tf, layers } = runtime;
  const version =
    versionProblem('@tensorflow/tfjs-core', tf.version_core) ??
    versionProblem('@tensorflow/tfjs-layers', layers.version_layers);
  if (version) return version;
  const map = tf.serialization?.SerializationMap?.getMap?.()?.classNameMap as ClassNameMap | undefined;
  if (!map || typeof map !== 'object')
    return 'tfjs has no serialization.SerializationMap.getMap().classNameMap';
  if (!isEntry(map.Zeros)) return "tfjs's serialization registry has no Zeros initializer entry";
  if (typeof (map.Zeros[0] as { prototype?: { apply?: unknown } }).prototype?.apply !== 'function')
    return "tfjs's Zeros initializer has no apply(shape, dtype)";
  if (typeof layers.models?.modelFromJSON !== 'function') return 'tfjs-layers has no models.modelFromJSON';
  return undefined;
}

/**
 * Why aiaas does not use tfjs internals on this runtime (an untested version, a missing member),
 * or undefined when it does. For tests and diagnostics; the functions below check it themselves.
 */
export function internalsProblem(runtime: TfRuntime): string | undefined {
  return buildProblem(runtime) ?? (runtime.tf.getBackend() === 'wasm' ? heapProblem(runtime.tf) : undefined);
}

/** The serialization registry, when the build internals may be used (said once otherwise). */
function registry(runtime: TfRuntime): ClassNameMap | undefined {
  const problem = buildProblem(runtime);
  if (problem) return refuse(problem);
  return runtime.tf.serialization.SerializationMap.getMap().classNameMap;
}

// ---------------------------------------------------------------------------------------------
// The wasm heap

/** Tensors in the wasm backend's heap, reached directly (what the backend's own kernels do). */
export interface WasmHeap {
  /** A new tensor whose memory is in the heap, its bytes uninitialized. The caller owns it. */
  allocate(shape: number[], dtype: DataType): Tensor;
  /**
   * The tensor's bytes in the heap. Look them up for each use: another tensor's allocation may
   * grow (and so replace) the heap.
   */
  bytesOf(tensor: Tensor): Uint8Array;
}

interface HeapBackend extends tfc.KernelBackend {
  makeOutput(shape: number[], dtype: DataType): TensorInfo;
  typedArrayFromHeap(info: TensorInfo): Float32Array | Int32Array | Uint8Array;
}

function heapProblem(tf: typeof tfc): string | undefined {
  const version = versionProblem('@tensorflow/tfjs-core', tf.version_core);
  if (version) return version;
  const backend = tf.backend() as Partial<HeapBackend>;
  for (const member of ['makeOutput', 'typedArrayFromHeap'] as const) {
    if (typeof backend[member] !== 'function') return `the tfjs wasm backend has no ${member}`;
  }
  if (typeof tf.engine().makeTensorFromTensorInfo !== 'function')
    return "tfjs's engine has no makeTensorFromTensorInfo";
  return undefined;
}

/**
 * The wasm heap, when the current backend is wasm and its internals may be used (said once
 * otherwise); undefined on other backends.
 */
export function wasmHeap(tf: typeof tfc): WasmHeap | undefined {
  if (tf.getBackend() !== 'wasm') return undefined;
  const problem = heapProblem(tf);
  if (problem) return refuse(problem);
  const backend = tf.backend() as HeapBackend;
  const engine = tf.engine();
  return {
    allocate: (shape, dtype) => engine.makeTensorFromTensorInfo(backend.makeOutput(shape, dtype), backend),
    bytesOf: (tensor) => {
      const values = backend.typedArrayFromHeap(tensor);
      return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Building a model for weights that follow

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
function modelClassOf(map: ClassNameMap, modelTopology: object): string | undefined {
  const config = modelTopology as { model_config?: { class_name?: unknown }; class_name?: unknown };
  const className = (config.model_config ?? config).class_name;
  return typeof className === 'string' && map[className] ? className : undefined;
}

/**
 * Whether `buildForLoading` can build this topology: the internals may be used and the topology
 * names a registered model class (if it does not, tfjs's loader says what is wrong).
 */
export function canBuildForLoading(runtime: TfRuntime, modelTopology: object): boolean {
  const map = registry(runtime);
  return map !== undefined && modelClassOf(map, modelTopology) !== undefined;
}

/**
 * Builds a model from its topology the way `loadLayersModel` does when weights follow: with tfjs's
 * "fast weight init", every weight created by the `zeros` initializer whatever the layer's own
 * (no random initializers on millions of weights), for `loadWeights` to replace. Given the wasm
 * heap (`wasmHeap`), the zeros become uninitialized heap memory, never touched: no array of zeros
 * the size of the weights copied into the heap.
 *
 * tfjs exposes that build only inside `loadLayersModel`, which then decodes the weights its own
 * way; `models.modelFromJSON` does the same build (same topology conversion, same deserializer)
 * without the flag. So for the duration of the build, synchronous (`modelFromJSON` without a
 * weights manifest builds the model before its first await), the serialization registry's entry
 * for the model class passes the flag, and the one for `Zeros` makes placeholders. Undefined when
 * `canBuildForLoading` is false.
 */
export function buildForLoading(
  runtime: TfRuntime,
  modelTopology: object,
  heap: WasmHeap | undefined,
): Promise<LayersModel> | undefined {
  const map = registry(runtime);
  const className = map ? modelClassOf(map, modelTopology) : undefined;
  const modelEntry = map && className ? map[className] : undefined;
  if (!map || !className || !modelEntry) return undefined;
  if (!isEntry(modelEntry))
    return refuse(`tfjs's serialization registry entry for ${className} is not [class, fromConfig]`);
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
          ? heap.allocate(shape, dtype)
          : undefined;
    }
    return runtime.layers.models.modelFromJSON({ modelTopology } as Parameters<
      typeof runtime.layers.models.modelFromJSON
    >[0]);
  } finally {
    map[className] = modelEntry;
    if (zerosEntry) map.Zeros = zerosEntry;
    placeholder = undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// Layers

type Layer = LayersModel['layers'][number];

/** How many ids an Embedding layer takes (its `input_dim`); undefined for other layers. */
export function embeddingInputDim(layer: Layer): number | undefined {
  if (layer.getClassName() !== 'Embedding') return undefined;
  const field = (layer as unknown as { inputDim?: unknown }).inputDim;
  if (typeof field === 'number') return field;
  const config = layer.getConfig().inputDim;
  return typeof config === 'number' ? config : undefined;
}
