/** One tensor of a model's signature. `shape` includes the batch dimension; null means any size. */
export interface TensorSpec {
  readonly name: string;
  readonly dtype: 'float32' | 'int32' | 'bool' | 'string' | 'complex64';
  readonly shape: readonly (number | null)[];
  /**
   * Set when the input feeds an Embedding layer (Keras's `input_dim`): its values are ids from 0 to
   * vocabularySize - 1, checked in requests before tfjs's gather would throw on any other.
   */
  readonly vocabularySize?: number;
}

export interface Signature {
  readonly inputs: readonly TensorSpec[];
  readonly outputs: readonly TensorSpec[];
}

export interface FileDigest {
  readonly sha256: string;
  readonly size: number;
}

/** How a version was made. */
export interface VersionSource {
  readonly kind: 'publish' | 'retrain' | 'keras-h5' | 'keras-v3' | 'local-stack';
  readonly [detail: string]: unknown;
}

/** `models/<model>/versions/<n>/metadata.json`: written last, so its presence commits the version. */
export interface VersionMetadata {
  readonly schema: 1;
  readonly model: string;
  readonly version: number;
  readonly createdAt: string;
  readonly createdBy: string;
  readonly format: 'layers-model' | 'graph-model';
  /** sha256 and size of every artifact file of the version, metadata.json excepted. */
  readonly files: Readonly<Record<string, FileDigest>>;
  readonly signature: Signature;
  /** Keras-style metric names: loss, accuracy, val_loss, val_accuracy, ... */
  readonly metrics: Readonly<Record<string, number>>;
  readonly source: VersionSource;
  readonly parent: number | null;
  /** Training settings and data fingerprint, for versions made by retraining. */
  readonly training?: Readonly<Record<string, unknown>>;
  /** Keys of the training report files (e.g. the loss-curve SVG), relative to the bucket. */
  readonly report?: Readonly<Record<string, string>>;
}

/** `models/<model>/aliases/<alias>.json`: the pointer inference functions poll. */
export interface AliasPointer {
  readonly model: string;
  readonly alias: string;
  readonly version: number;
  /** Sequence number of the history event that set it. */
  readonly seq: number;
  readonly eventId: string;
  readonly updatedAt: string;
  /**
   * The version's files and digests, copied from its (immutable) metadata when the pointer is
   * written, so a reader can fetch them without waiting for metadata.json first. Absent in pointers
   * written before it existed.
   */
  readonly files?: Readonly<Record<string, FileDigest>>;
  /**
   * A small version whole (its files at most INLINE_LIMIT_BYTES together): its metadata and each
   * file base64-encoded, copied when the pointer is written. A reader then loads the version from
   * the pointer alone, one S3 round trip where it would take two. Each file is checked against the
   * metadata's sha256; anything that does not check out is ignored and the version read from its
   * own objects instead.
   */
  readonly inline?: InlineVersion;
  /** A second version taking a share of the requests (rollouts): absent when none runs. */
  readonly canary?: CanaryRoute;
  /** A version run beside the served one on a sample of requests, its answers only compared. */
  readonly shadow?: ShadowRoute;
}

/**
 * A canary: `weight` percent (0-100, may be fractional) of the alias's predict requests are
 * answered by `version`. `since` is when this weight was set (a rollout step starts then).
 * `files`/`inline`: the same shortcuts as the pointer's own, for the canary's version.
 */
export interface CanaryRoute {
  readonly version: number;
  readonly weight: number;
  readonly since: string;
  readonly files?: Readonly<Record<string, FileDigest>>;
  readonly inline?: InlineVersion;
}

/**
 * A shadow: on `sample` percent (0-100) of predict requests, `version` also runs on the same input
 * after the answer is computed; how the two differ is recorded, never returned.
 */
export interface ShadowRoute {
  readonly version: number;
  readonly sample: number;
  readonly since: string;
  readonly files?: Readonly<Record<string, FileDigest>>;
  readonly inline?: InlineVersion;
}

/** A version carried by its alias pointer: see AliasPointer.inline. */
export interface InlineVersion {
  readonly metadata: VersionMetadata;
  /** File name → its bytes, base64. */
  readonly files: Readonly<Record<string, string>>;
}

/** One entry of an alias's append-only history. */
export interface AliasEvent {
  readonly id: string;
  readonly seq: number;
  readonly model: string;
  readonly alias: string;
  /**
   * promote / rollback / retrain move the served version (`to`); canary and shadow change the
   * routes beside it by hand; rollout is a move the rollout function made (a step, a promotion of
   * the canary, an abort), with its numbers in `details`.
   */
  readonly kind: 'promote' | 'rollback' | 'retrain' | 'canary' | 'shadow' | 'rollout';
  readonly from: number | null;
  readonly to: number;
  readonly at: string;
  readonly who: string;
  readonly why: string;
  /** Numbers behind the decision (gate metrics, thresholds), when there are any. */
  readonly details?: Readonly<Record<string, unknown>>;
  /**
   * Id of the move this one was made on top of (null for the first): the history is the chain of
   * these links ending at the move the alias pointer names. Absent in entries written before it
   * existed (then the previous slot's only entry is the one before).
   */
  readonly prev?: string | null;
  /** The canary after this move (absent: none). */
  readonly canary?: { readonly version: number; readonly weight: number; readonly since: string };
  /** The shadow after this move (absent: none). */
  readonly shadow?: { readonly version: number; readonly sample: number; readonly since: string };
}

export interface ArtifactFile {
  readonly name: string;
  readonly bytes: Uint8Array;
  readonly contentType?: string;
}
