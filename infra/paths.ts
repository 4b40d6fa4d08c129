import { join } from 'node:path';
import { ROOT } from '../cli/paths.js';
import { ENTRY_POINTS, NATIVE_IMAGE } from '../scripts/build/options.js';

/** Repository paths the CDK app builds from (absolute, so synth works from any working directory). */
export const paths = {
  root: ROOT,
  manifest: join(ROOT, 'models/manifest.json'),
  lockFile: join(ROOT, 'package-lock.json'),
  inferenceEntry: ENTRY_POINTS.inference,
  retrainEntry: ENTRY_POINTS.retrain,
  rolloutEntry: ENTRY_POINTS.rollout,
  runtimeLayerSource: join(ROOT, 'layers/tfjs-runtime'),
  /** Relative to the Docker build context (the repository root). */
  nativeDockerfile: NATIVE_IMAGE.dockerfile,
} as const;
