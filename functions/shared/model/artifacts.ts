/**
 * A version's files and tfjs's artifacts: model.json and weight shards to and from
 * `io.ModelArtifacts`, a model's signature (with the checks that a model can compute at all), and
 * loading a version through a tfjs IOHandler over the registry.
 */
import { basename } from 'node:path';
import type { io } from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { IntegrityError, ValidationError } from '../errors.js';
import type { RegistryReader } from '../registry/registry.js';
import type { ArtifactFile, Signature, TensorSpec, VersionMetadata } from '../registry/types.js';
import type { TfRuntime } from '../runtime/types.js';
import { staticShapeProblem } from './shapes.js';
import { vocabularyOf } from './vocabulary.js';
import { gather, loadLayersModelFast } from './weights.js';

/** tfjs's default shard size: small enough to fetch in parallel, large enough to keep requests few. */
export const SHARD_BYTES = 4 * 1024 * 1024;

const decoder = new TextDecoder();
const encoder = new TextEncoder();

type ModelJson = io.ModelJSON;

function toParts(weightData: io.WeightData | undefined): Uint8Array[] {
  if (!weightData) return [];
  const buffers = Array.isArray(weightData) ? weightData : [weightData];
  return buffers.map((b) => new Uint8Array(b));
}

/**
 * Serializes in-memory artifacts (what `model.save(handler)` or a converter produces) into the
 * files of a version: model.json and weight shards of at most SHARD_BYTES.
 */
export function artifactsToFiles(artifacts: io.ModelArtifacts, shardBytes = SHARD_BYTES): ArtifactFile[] {
  const parts = toParts(artifacts.weightData);
  const total = parts.reduce((n, p) => n + p.byteLength, 0);
  const count = Math.max(1, Math.ceil(total / shardBytes));
  const shards: ArtifactFile[] = [];
  if (total > 0) {
    const all = parts.length === 1 ? parts[0]! : gather(parts, total);
    for (let i = 0; i < count; i++) {
      shards.push({
        name: `group1-shard${i + 1}of${count}.bin`,
        bytes: all.subarray(i * shardBytes, Math.min(total, (i + 1) * shardBytes)),
      });
    }
  }
  const modelJson: ModelJson = {
    modelTopology: artifacts.modelTopology as ModelJson['modelTopology'],
    format: artifacts.format,
    generatedBy: artifacts.generatedBy,
    convertedBy: artifacts.convertedBy,
    weightsManifest: [{ paths: shards.map((s) => s.name), weights: artifacts.weightSpecs ?? [] }],
    ...(artifacts.trainingConfig ? { trainingConfig: artifacts.trainingConfig } : {}),
    ...(artifacts.signature ? { signature: artifacts.signature } : {}),
    ...(artifacts.userDefinedMetadata ? { userDefinedMetadata: artifacts.userDefinedMetadata } : {}),
    ...(artifacts.modelInitializer ? { modelInitializer: artifacts.modelInitializer } : {}),
  };
  return [
    { name: 'model.json', bytes: encoder.encode(JSON.stringify(modelJson)), contentType: 'application/json' },
    ...shards,
  ];
}

/** An ArrayBuffer holding exactly these bytes, without a copy when the view already spans its buffer. */
function exactBuffer(bytes: Uint8Array): ArrayBuffer {
  if (
    bytes.byteOffset === 0 &&
    bytes.byteLength === bytes.buffer.byteLength &&
    bytes.buffer instanceof ArrayBuffer
  ) {
    return bytes.buffer;
  }
  return bytes.slice().buffer as ArrayBuffer;
}

export function parseModelJson(bytes: Uint8Array, what = 'model.json'): ModelJson {
  let json: ModelJson;
  try {
    json = JSON.parse(decoder.decode(bytes)) as ModelJson;
  } catch (cause) {
    throw new IntegrityError(`${what} is not valid JSON`, { cause });
  }
  if (!json || typeof json !== 'object' || !json.modelTopology || !Array.isArray(json.weightsManifest)) {
    throw new IntegrityError(
      `${what} is not a TensorFlow.js model (needs modelTopology and weightsManifest)`,
    );
  }
  return json;
}

/**
 * Turns the files of a version (model.json + shards, by name) into tfjs ModelArtifacts. Shards are
 * handed over as a list (tfjs composes them), not concatenated: no copy of the weights.
 */
export function filesToArtifacts(files: ReadonlyMap<string, Uint8Array>): io.ModelArtifacts {
  const modelBytes = files.get('model.json');
  if (!modelBytes) throw new IntegrityError('model.json is missing');
  const json = parseModelJson(modelBytes);
  const buffers = shardNames(json).map((name) => {
    const bytes = files.get(name);
    if (!bytes) throw new IntegrityError(`weight shard ${name} named in model.json is missing`);
    return exactBuffer(bytes);
  });
  return { ...artifactsOf(json), weightData: buffers.length === 1 ? buffers[0] : buffers };
}

/** The file names of model.json's weight shards, in the order their bytes are laid out. */
export function shardNames(json: ModelJson): string[] {
  return json.weightsManifest.flatMap((group) => group.paths.map((path) => basename(path)));
}

/** Everything model.json says, as artifacts, but the weight data itself. */
export function artifactsOf(json: ModelJson): Omit<io.ModelArtifacts, 'weightData'> {
  return {
    modelTopology: json.modelTopology,
    format: json.format,
    generatedBy: json.generatedBy,
    convertedBy: json.convertedBy,
    weightSpecs: json.weightsManifest.flatMap((group) => group.weights),
    ...(json.trainingConfig ? { trainingConfig: json.trainingConfig } : {}),
    ...(json.signature ? { signature: json.signature } : {}),
    ...(json.userDefinedMetadata ? { userDefinedMetadata: json.userDefinedMetadata } : {}),
    ...(json.modelInitializer ? { modelInitializer: json.modelInitializer } : {}),
  };
}

/** An IOHandler over one registry version: fetched in parallel and sha256-verified, no temp files. */
export function registryIOHandler(
  registry: RegistryReader,
  model: string,
  version: number,
): io.IOHandler & { metadata?: VersionMetadata } {
  const handler: io.IOHandler & { metadata?: VersionMetadata } = {
    async load() {
      const { metadata, files } = await registry.readVersion(model, version);
      handler.metadata = metadata;
      return filesToArtifacts(files);
    },
  };
  return handler;
}

/** An IOHandler that captures what `model.save()` writes, to publish it. */
export function captureIOHandler(): io.IOHandler & { artifacts?: io.ModelArtifacts } {
  const handler: io.IOHandler & { artifacts?: io.ModelArtifacts } = {
    async save(artifacts) {
      handler.artifacts = artifacts;
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    },
  };
  return handler;
}

function spec(
  name: string,
  dtype: string | undefined,
  shape: readonly (number | null | undefined)[] | undefined,
): TensorSpec {
  return {
    name,
    dtype: (dtype ?? 'float32') as TensorSpec['dtype'],
    shape: (shape ?? []).map((d) => (d === undefined || d === null || d < 0 ? null : d)),
  };
}

/** The input/output signature of a LayersModel (names, shapes with the batch dimension as null, dtypes). */
export function signatureOf(_runtime: TfRuntime, model: LayersModel): Signature {
  // tfjs builds such a model, then throws on every prediction: refused at publish and at load.
  const impossible = staticShapeProblem(model);
  if (impossible) throw new ValidationError(`The model can compute nothing: ${impossible}`);
  return {
    inputs: model.inputs.map((t, i) => {
      const vocabularySize = vocabularyOf(model, t);
      const input = spec(model.inputNames[i] ?? t.sourceLayer?.name ?? t.name, t.dtype, t.shape);
      return vocabularySize === undefined ? input : { ...input, vocabularySize };
    }),
    // Keras names outputs after their layers (`dense_3`), not the tensors (`dense_3/dense_3`).
    outputs: model.outputs.map((t, i) =>
      spec(model.outputNames[i] ?? t.sourceLayer?.name ?? t.name, t.dtype, t.shape),
    ),
  };
}

/** A model loaded by the runtime, either format. */
export type AnyModel =
  | { readonly format: 'layers-model'; readonly model: LayersModel }
  | { readonly format: 'graph-model'; readonly model: Awaited<ReturnType<TfRuntime['loadGraphModel']>> };

/** Loads artifacts into the runtime, as a LayersModel or a GraphModel depending on their format. */
export async function loadModel(
  runtime: TfRuntime,
  handler: io.IOHandler,
): Promise<AnyModel & { signature: Signature }> {
  // The handler is read once here, whichever loader then consumes it.
  const artifacts = await handler.load!();
  const memory = runtime.tf.io.fromMemory(artifacts);
  if (artifacts.format === 'graph-model' || (artifacts.modelTopology as { node?: unknown })?.node) {
    const model = await runtime.loadGraphModel(memory);
    const signature: Signature = {
      inputs: model.inputs.map((t) => spec(t.name, t.dtype, t.shape)),
      outputs: model.outputs.map((t) => spec(t.name, t.dtype, t.shape)),
    };
    return { format: 'graph-model', model, signature };
  }
  // Big models load several times faster without tfjs's copies of the weights (see weights.ts);
  // what that path does not handle (no weights, optimizer or string weights) goes to tfjs.
  const fast = await loadLayersModelFast(runtime, artifacts);
  const model = fast ? fast.model : await runtime.layers.loadLayersModel(memory);
  return { format: 'layers-model', model, signature: signatureOf(runtime, model) };
}

/** Frees a loaded model's weights. */
export function disposeModel(loaded: AnyModel): void {
  if (loaded.format === 'layers-model') loaded.model.dispose();
  else loaded.model.dispose();
}
