/**
 * Reading a version with its weights received straight into tfjs tensors (see WeightReceiver).
 * A shard's bytes start arriving before anyone knows where they go: model.json comes in parallel,
 * and on a cold start the runtime is still starting. Until then they are held as they came (the
 * socket's chunks, not copied), then handed to the receiver, or gathered into a buffer of their
 * own when the weights are not for tfjs (the fast path) or cannot be received.
 */
import type { io } from '@tensorflow/tfjs-core';
import type { RegistryReader } from '../registry/registry.js';
import type { BodySink } from '../registry/store.js';
import type { FileDigest, InlineVersion, Signature, VersionMetadata } from '../registry/types.js';
import type { TfRuntime } from '../runtime/types.js';
import {
  type AnyModel,
  artifactsOf,
  filesToArtifacts,
  loadModel,
  parseModelJson,
  shardNames,
  signatureOf,
} from './artifacts.js';
import { WeightReceiver } from './weights.js';

/** A body whose destination is not known yet: what arrives is held until it is. */
class PendingBody implements BodySink {
  private held: { readonly bytes: Uint8Array; readonly offset: number }[] = [];
  private target: BodySink | undefined;
  /** The body's own buffer, once `keep` chose one. */
  kept: Uint8Array | undefined;

  constructor(readonly length: number) {}

  write(bytes: Uint8Array, offset: number): void {
    if (this.target) {
      this.target.write(bytes, offset);
      return;
    }
    // A retried read starts again from 0: what the failed attempt wrote is void.
    if (offset === 0) this.held = [];
    this.held.push({ bytes, offset });
  }

  /** From now on the body goes to `target`; what is held goes there first. */
  sendTo(target: BodySink): void {
    this.target = target;
    for (const { bytes, offset } of this.held) target.write(bytes, offset);
    this.held = [];
  }

  /** The body goes into a buffer of its own (the usual way): `kept`. */
  keep(): void {
    const buffer = new Uint8Array(Buffer.allocUnsafeSlow(this.length).buffer, 0, this.length);
    this.kept = buffer;
    this.sendTo({ write: (bytes, offset) => buffer.set(bytes, offset) });
  }
}

/** A version as read for loading. */
export interface ReceivedVersion {
  readonly metadata: VersionMetadata;
  /** model.json and every file whose bytes were not received into tensors. */
  readonly files: ReadonlyMap<string, Uint8Array>;
  /** The weights, already in tfjs tensors: the caller builds the model from them or disposes them. */
  readonly weights?: WeightReceiver;
}

export interface ReceiveOptions {
  /** The version's files as its alias pointer lists them (see RegistryReader.readVersion). */
  readonly files?: Readonly<Record<string, FileDigest>>;
  /** The version whole, as its alias pointer carries it. */
  readonly inline?: InlineVersion;
  /**
   * Asked once model.json has arrived: the runtime to receive the weights into, or undefined to
   * keep them as bytes (for the fast path). A runtime that fails to start keeps them as bytes.
   */
  readonly runtimeFor: (json: io.ModelJSON) => Promise<TfRuntime> | undefined;
}

/**
 * Reads and verifies a version like `RegistryReader.readVersion`, receiving its weights into tfjs
 * tensors where the runtime and the weights allow it: one copy of the weights instead of two, and
 * no fresh buffers to fault in.
 */
export async function receiveVersion(
  registry: RegistryReader,
  model: string,
  version: number,
  options: ReceiveOptions,
): Promise<ReceivedVersion> {
  const pending = new Map<string, PendingBody>();
  let decided = false;
  let receiver: WeightReceiver | undefined;
  let deciding: Promise<void> | undefined;
  /** Where the held bodies, and those still to come, go: once. */
  const decide = (chosen: WeightReceiver | undefined) => {
    if (decided) return;
    decided = true;
    receiver = chosen;
    for (const [name, body] of pending) {
      const sink = receiver?.sink(name);
      if (sink) body.sendTo(sink);
      else body.keep();
    }
  };
  const startReceiving = (json: io.ModelJSON, listed: Readonly<Record<string, FileDigest>>) => {
    const runtime = options.runtimeFor(json);
    if (!runtime) {
      decide(undefined);
      return;
    }
    deciding = runtime
      .then((tf) => {
        if (decided) return;
        // A shard model.json names but the version lacks: reported by the usual path, from bytes.
        const shards = shardNames(json).map((name) => [name, listed[name]?.size] as const);
        if (shards.some(([, size]) => size === undefined)) return decide(undefined);
        decide(WeightReceiver.for(tf, artifactsOf(json), shards as [string, number][]));
      })
      // A runtime that does not start, or weights the heap cannot hold: bytes, as before.
      .catch(() => decide(undefined));
  };
  try {
    const read = await registry.readVersion(model, version, {
      ...(options.files ? { files: options.files } : {}),
      ...(options.inline ? { inline: options.inline } : {}),
      into: (name, length) => {
        if (name === 'model.json') return undefined;
        // A retry goes where its first attempt went.
        const held = pending.get(name);
        if (held?.length === length) return held;
        if (decided) return receiver?.sink(name);
        const body = new PendingBody(length);
        pending.set(name, body);
        return body;
      },
      onFile: (name, bytes, listed) => {
        if (name !== 'model.json' || decided || deciding) return;
        let json: io.ModelJSON;
        try {
          json = parseModelJson(bytes);
        } catch {
          // Reported where the usual path reads it again.
          decide(undefined);
          return;
        }
        startReceiving(json, listed);
      },
    });
    await deciding;
    decide(undefined);
    const files = new Map<string, Uint8Array>();
    for (const [name, bytes] of read.files) {
      // Bytes that came whole (a version its alias pointer carries) go to the receiver too.
      const sink = pending.has(name) ? undefined : receiver?.sink(name);
      if (sink) sink.write(bytes, 0);
      else files.set(name, bytes);
    }
    for (const [name, body] of pending) {
      if (body.kept) files.set(name, body.kept);
    }
    return { metadata: read.metadata, files, ...(receiver ? { weights: receiver } : {}) };
  } catch (error) {
    await deciding;
    decide(undefined);
    receiver?.dispose();
    throw error;
  }
}

/** Loads a received version into the runtime: from its received weights, or from its files. */
export async function loadReceived(
  runtime: TfRuntime,
  received: ReceivedVersion,
): Promise<AnyModel & { signature: Signature }> {
  if (received.weights) {
    const model = await received.weights.build();
    return { format: 'layers-model', model, signature: signatureOf(runtime, model) };
  }
  const artifacts = filesToArtifacts(received.files);
  return loadModel(runtime, { load: async () => artifacts });
}
