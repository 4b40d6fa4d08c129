/**
 * The tfjs runtime's shape, shared by the layer that provides it and the code that uses it: which
 * backend runs (native, wasm, cpu), which was asked for, and the tfjs API as one object.
 */
import type * as tfconv from '@tensorflow/tfjs-converter';
import type * as tfc from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';

/** Which tfjs backend executes models. */
export type RuntimeKind = 'native' | 'wasm' | 'cpu';
/** What a deployment asks for; `auto` takes the fastest that loads: native, then wasm, then cpu. */
export type RuntimePreference = RuntimeKind | 'auto';

/**
 * The tfjs API as one object, so the same code runs on the WebAssembly runtime (layer), the native
 * runtime (@tensorflow/tfjs-node in a container image) or the pure-JS cpu backend.
 */
export interface TfRuntime {
  /** The backend that actually runs models. */
  readonly kind: RuntimeKind;
  /** What the deployment asked for (AIAAS_RUNTIME); a specific kind other than `kind` is a fallback. */
  readonly requested: RuntimePreference;
  readonly tf: typeof tfc;
  readonly layers: typeof tfl;
  readonly loadGraphModel: typeof tfconv.loadGraphModel;
  /** Why a preferred runtime was passed over, for the logs. */
  readonly notes: readonly string[];
}
