import { join } from 'node:path';
import { ROOT } from '../scripts/lib/bundle.js';

/** Repository paths the CDK app builds from (absolute, so synth works from any working directory). */
export const paths = {
  root: ROOT,
  manifest: join(ROOT, 'models/manifest.json'),
  lockFile: join(ROOT, 'package-lock.json'),
  inferenceEntry: join(ROOT, 'functions/inference/handler.ts'),
  retrainEntry: join(ROOT, 'functions/retrain/handler.ts'),
  runtimeLayerSource: join(ROOT, 'layers/tfjs-runtime'),
  /** Relative to the Docker build context (the repository root). */
  nativeDockerfile: 'functions/inference/native/Dockerfile',
} as const;
