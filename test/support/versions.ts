/** A version's files and publish input for registry tests: what the registry stores, not a real model. */
import type { ArtifactFile } from '../../functions/shared/registry/types.js';

/** model.json naming `tag` (so versions differ), and one shard of `shard`'s bytes unless it is null. */
export function versionFiles(
  tag: string,
  shard: Uint8Array | null = new Uint8Array([1, 2, 3]),
): ArtifactFile[] {
  const files: ArtifactFile[] = [
    { name: 'model.json', bytes: new TextEncoder().encode(JSON.stringify({ tag })) },
  ];
  if (shard) files.push({ name: 'group1-shard1of1.bin', bytes: shard });
  return files;
}

export const PUBLISH_INPUT = {
  format: 'layers-model',
  signature: {
    inputs: [{ name: 'x', dtype: 'float32', shape: [null, 1] }],
    outputs: [{ name: 'y', dtype: 'float32', shape: [null, 1] }],
  },
  metrics: {},
  source: { kind: 'publish' },
  parent: null,
} as const;
