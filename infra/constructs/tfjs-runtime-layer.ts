import { copyFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { AssetHashType, DockerImage, type RemovalPolicy } from 'aws-cdk-lib';
import { Architecture, Code, LayerVersion, Runtime } from 'aws-cdk-lib/aws-lambda';
import { Construct } from 'constructs';
import { buildSync } from 'esbuild';
import {
  RUNTIME_DIR_NAME,
  runtimeLayerOptions,
  WASM_FILES,
  WASM_SOURCE_DIR,
} from '../../scripts/build/options.js';
import { paths } from '../paths.js';

/** Where the layer's runtime module is inside Lambda (layers mount at /opt). */
export const RUNTIME_MODULE_PATH = `/opt/${RUNTIME_DIR_NAME}/runtime.mjs`;

/**
 * Bundles `layers/tfjs-runtime` into `outputDir/aiaas-runtime/` (runtime.mjs + the .wasm binaries),
 * with the same esbuild options as `npm run build` (scripts/build/options.ts), synchronously and
 * offline: CDK's local bundling hook cannot await. No Docker involved.
 */
export function bundleRuntimeLayer(outputDir: string): void {
  const dir = join(outputDir, RUNTIME_DIR_NAME);
  mkdirSync(dir, { recursive: true });
  buildSync({ ...runtimeLayerOptions(join(dir, 'runtime.mjs')), logLevel: 'error' });
  for (const file of WASM_FILES) copyFileSync(join(WASM_SOURCE_DIR, file), join(dir, file));
}

export interface TfjsRuntimeLayerProps {
  /**
   * What happens to superseded layer versions. Functions keep working on a deleted layer
   * version (Lambda keeps a copy for functions that use it), so old versions need not be kept.
   *
   * @default RemovalPolicy.DESTROY
   */
  readonly removalPolicy?: RemovalPolicy;
  /**
   * Layer description shown in the Lambda console.
   *
   * @default 'aiaas tfjs runtime (WebAssembly backend) at /opt/aiaas-runtime'
   */
  readonly description?: string;
}

/**
 * The tfjs runtime (core, layers, converter, cpu and wasm backends, .wasm binaries) as a Lambda
 * layer, so every model's function code stays small and identical.
 *
 * The asset is bundled locally with esbuild from `layers/tfjs-runtime` (no Docker, no network);
 * its hash is the hash of the output, and CDK stages identical assets once per synth, so however
 * many stacks use this construct, esbuild runs once and the asset is uploaded once.
 */
export class TfjsRuntimeLayer extends Construct {
  /** The runtime module's path inside Lambda, for AIAAS_RUNTIME_MODULE. */
  static readonly MODULE_PATH = RUNTIME_MODULE_PATH;

  readonly layer: LayerVersion;

  constructor(scope: Construct, id: string, props: TfjsRuntimeLayerProps = {}) {
    super(scope, id);
    const code = Code.fromAsset(paths.runtimeLayerSource, {
      assetHashType: AssetHashType.OUTPUT,
      bundling: {
        // Required by the API but never used: local bundling always succeeds or throws.
        image: DockerImage.fromRegistry('public.ecr.aws/docker/library/node:24-alpine'),
        local: {
          tryBundle(outputDir: string) {
            bundleRuntimeLayer(outputDir);
            return true;
          },
        },
      },
    });
    this.layer = new LayerVersion(this, 'Layer', {
      code,
      compatibleArchitectures: [Architecture.ARM_64, Architecture.X86_64],
      compatibleRuntimes: [Runtime.NODEJS_24_X],
      description:
        props.description ?? `aiaas tfjs runtime (WebAssembly backend) at /opt/${RUNTIME_DIR_NAME}`,
      license: 'Apache-2.0',
      ...(props.removalPolicy ? { removalPolicy: props.removalPolicy } : {}),
    });
  }
}
