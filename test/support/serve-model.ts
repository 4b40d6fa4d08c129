import type { io } from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { DEFAULT_LIMITS } from '../../functions/inference/api.js';
import { tfjsExecutor, warmUp } from '../../functions/inference/executor.js';
import { createHandler, type FunctionUrlResult, type Handler } from '../../functions/inference/handler.js';
import {
  artifactsToFiles,
  captureIOHandler,
  disposeModel,
  loadModel,
} from '../../functions/shared/model/artifacts.js';
import { ModelRegistry } from '../../functions/shared/registry/registry.js';
import type { Signature } from '../../functions/shared/registry/types.js';
import type { TfRuntime } from '../../functions/shared/runtime/types.js';
import { MemoryObjectStore } from './memory-store.js';

/** What a served test model answers, and what the handler logged at error level. */
export interface ServedModel {
  readonly handler: Handler;
  readonly signature: Signature;
  /** Lines logged at error level (an unexpected error in a request logs one). */
  readonly errors: string[];
  predict(body: string, path?: string): Promise<FunctionUrlResult>;
}

/**
 * Publishes a model (a tfjs LayersModel or in-memory artifacts) as `publish` does — loaded in tfjs
 * first, refused if it fails on a request of zeros, signature recorded — into an in-memory registry, promotes it, and serves it with the real
 * handler: the fast path when it compiles (`auto`) or tfjs (`off`).
 */
export async function serveModel(
  runtime: TfRuntime,
  source: LayersModel | io.ModelArtifacts,
  options: { readonly fastPath?: 'auto' | 'off'; readonly model?: string } = {},
): Promise<ServedModel> {
  let artifacts: io.ModelArtifacts;
  if ('save' in source) {
    const capture = captureIOHandler();
    await source.save(capture);
    artifacts = capture.artifacts!;
  } else {
    artifacts = source;
  }
  const loaded = await loadModel(runtime, { load: async () => artifacts });
  const { signature } = loaded;
  warmUp(tfjsExecutor(runtime, loaded, () => undefined));
  disposeModel(loaded);
  const model = options.model ?? 'm';
  const registry = new ModelRegistry(new MemoryObjectStore());
  const metadata = await registry.publish(model, artifactsToFiles(artifacts), {
    format: artifacts.format === 'graph-model' ? 'graph-model' : 'layers-model',
    signature,
    metrics: {},
    source: { kind: 'publish', test: true },
    parent: null,
  });
  await registry.setAlias(model, 'live', metadata.version);
  const errors: string[] = [];
  const quiet = () => undefined;
  const handler = createHandler(
    {
      bucket: 'test',
      model,
      alias: 'live',
      aliasCheckSeconds: 3600,
      limits: DEFAULT_LIMITS,
      fastPath: options.fastPath ?? 'auto',
    },
    {
      store: registry.store,
      runtime: async () => runtime,
      log: {
        info: quiet,
        warn: quiet,
        error: (message, extra) => {
          errors.push(`${message} ${JSON.stringify(extra ?? {})}`);
        },
      },
    },
  );
  const predict = (body: string, path = `/v1/models/${model}:predict`) =>
    handler({
      rawPath: path,
      body,
      isBase64Encoded: false,
      requestContext: { http: { method: 'POST' }, requestId: 'test' },
    });
  return { handler, signature, errors, predict };
}
