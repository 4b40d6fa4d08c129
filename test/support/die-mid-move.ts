/**
 * Child process for the kill -9 test: promotes a version against an S3 endpoint and, once its move
 * has won its history slot, blocks on the alias-pointer PUT, prints READY and waits to be killed.
 * Usage: tsx die-mid-move.ts <endpoint> <bucket> <model> <version>
 */
import { keys } from '../../functions/shared/registry/layout.js';
import { ModelRegistry } from '../../functions/shared/registry/registry.js';
import { createS3Client, type PutOptions, S3ObjectStore } from '../../functions/shared/registry/store.js';

const [endpoint, bucket, model, version] = process.argv.slice(2) as [string, string, string, string];

class StallingStore extends S3ObjectStore {
  override put(key: string, body: Uint8Array | string, options?: PutOptions) {
    if (key === keys.alias(model, 'live')) {
      process.stdout.write('READY\n');
      return new Promise<never>(() => {}); // until SIGKILL
    }
    return super.put(key, body, options);
  }
}

const client = createS3Client({
  endpoint,
  region: 'us-east-1',
  credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
});
const registry = new ModelRegistry(new StallingStore(client, bucket, endpoint), { actor: 'doomed' });
setInterval(() => {}, 60_000); // stay alive while the PUT hangs
await registry.setAlias(model, 'live', Number(version), { why: 'killed mid-move' });
