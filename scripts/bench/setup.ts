/**
 * What every bench section shares: the run's settings and parts (the Node binary measured, the
 * s3rver child's registry, the wasm runtime, the environment of function children), and the
 * example models it publishes and serves in this process.
 */
import type { ChildProcess } from 'node:child_process';
import { DEFAULT_LIMITS } from '../../functions/inference/api.js';
import { InferenceService } from '../../functions/inference/service.js';
import { artifactsToFiles, captureIOHandler, signatureOf } from '../../functions/shared/model/artifacts.js';
import { ModelRegistry } from '../../functions/shared/registry/registry.js';
import { createS3Client, S3ObjectStore } from '../../functions/shared/registry/store.js';
import type { TfRuntime } from '../../functions/shared/runtime/types.js';
import { DEFAULT_BUCKET, LOCAL_CREDENTIALS } from '../local/s3.js';

export interface BenchContext {
  /** Fewer rounds and samples (`--quick`). */
  readonly quick: boolean;
  /** The Node binary measured: Node 24 where it runs, else this one. */
  readonly node: string;
  /** A scratch folder, removed after the run. */
  readonly dir: string;
  readonly s3: ReturnType<typeof remoteS3>;
  readonly runtime: TfRuntime;
  /** The environment of function children: the registry, the example model, the local settings. */
  readonly env: NodeJS.ProcessEnv;
  /** A one-instance predict request of the example model. */
  readonly body: string;
  /** Children to kill when the run ends. */
  readonly children: ChildProcess[];
}

export const log = (line: string) => process.stderr.write(`${line}\n`);

export async function publishExample(
  runtime: TfRuntime,
  registry: ModelRegistry,
  model: string,
  dense: number[],
  inputs = 8,
) {
  const { layers } = runtime;
  const net = layers.sequential();
  for (const [i, units] of dense.entries()) {
    net.add(
      layers.layers.dense({
        units,
        activation: i === dense.length - 1 ? 'sigmoid' : 'relu',
        ...(i === 0 ? { inputShape: [inputs] } : {}),
      }),
    );
  }
  const capture = captureIOHandler();
  await net.save(capture);
  const signature = signatureOf(runtime, net);
  net.dispose();
  const meta = await registry.publish(model, artifactsToFiles(capture.artifacts!), {
    format: 'layers-model',
    signature,
    metrics: {},
    source: { kind: 'publish', bench: true },
    parent: null,
  });
  await registry.setAlias(model, 'live', meta.version);
  return meta;
}

/** A registry client of the s3rver child. */
export function remoteS3(endpoint: string) {
  const client = createS3Client({ endpoint, credentials: LOCAL_CREDENTIALS, region: 'us-east-1' });
  return {
    endpoint,
    bucket: DEFAULT_BUCKET,
    registry: new ModelRegistry(new S3ObjectStore(client, DEFAULT_BUCKET, endpoint)),
    close: async () => client.destroy(),
  };
}

/** The example model's service in this process, alias never re-checked, nothing logged. */
export function exampleService(
  registry: ModelRegistry,
  runtime: TfRuntime,
  fastPath: 'auto' | 'off' = 'auto',
): InferenceService {
  return new InferenceService({
    model: 'diabetes',
    alias: 'live',
    aliasCheckMs: 3_600_000,
    limits: DEFAULT_LIMITS,
    registry,
    runtime: async () => runtime,
    fastPath,
    log: { info() {}, warn() {}, error() {} },
  });
}
