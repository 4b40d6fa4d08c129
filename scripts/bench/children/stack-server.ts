// The local function-URL server on its own process, so the load generator does not share its CPU time.

import { AIAAS_BUCKET, AIAAS_S3_ENDPOINT, requireString } from '../../../functions/shared/env.js';
import { ModelRegistry } from '../../../functions/shared/registry/registry.js';
import { createS3Client, S3ObjectStore } from '../../../functions/shared/registry/store.js';
import { startFunctionUrlServer } from '../../local/function-url-server.js';

const endpoint = requireString(process.env, AIAAS_S3_ENDPOINT);
const bucket = requireString(process.env, AIAAS_BUCKET);
const client = createS3Client({
  endpoint,
  credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
});
const server = await startFunctionUrlServer({
  endpoint,
  bucket,
  registry: new ModelRegistry(new S3ObjectStore(client, bucket, endpoint)),
  aliasCheckSeconds: 60,
});
process.stdout.write(`ready ${new URL(server.url).port}\n`);
