import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { AIAAS_BUCKET, AIAAS_S3_ENDPOINT, type Environment, readString } from '../functions/shared/env.js';
import { ConfigurationError } from '../functions/shared/errors.js';
import { ModelRegistry } from '../functions/shared/registry/registry.js';
import { createS3Client, S3ObjectStore } from '../functions/shared/registry/store.js';
import { ROOT } from './paths.js';

/** Written by `npm start` while the local stack runs, so the CLI finds it with no flags. */
export const STACK_FILE = join(ROOT, '.local/stack.json');

export interface LocalStackInfo {
  readonly endpoint: string;
  readonly bucket: string;
  readonly url: string;
  readonly pid: number;
}

export function readStackInfo(): LocalStackInfo | undefined {
  if (!existsSync(STACK_FILE)) return undefined;
  try {
    const info = JSON.parse(readFileSync(STACK_FILE, 'utf8')) as LocalStackInfo;
    process.kill(info.pid, 0); // throws when the stack that wrote it is gone
    return info;
  } catch {
    return undefined;
  }
}

export interface Target {
  readonly registry: ModelRegistry;
  readonly description: string;
  /** The local function-URL server, when the target is the local stack. */
  readonly localUrl?: string;
}

/**
 * Which registry the CLI talks to: AIAAS_S3_ENDPOINT / AIAAS_BUCKET when set (AWS credentials from
 * the usual chain), else the running local stack.
 */
export function resolveTarget(env: Environment = process.env): Target {
  const bucket = readString(env, AIAAS_BUCKET);
  const endpoint = readString(env, AIAAS_S3_ENDPOINT);
  if (endpoint || bucket) {
    if (!bucket) throw new ConfigurationError(`${AIAAS_S3_ENDPOINT} is set but ${AIAAS_BUCKET} is not`);
    const client = createS3Client({ ...(endpoint ? { endpoint } : {}) });
    const store = new S3ObjectStore(client, bucket, endpoint);
    return { registry: new ModelRegistry(store), description: store.description };
  }
  const local = readStackInfo();
  if (!local) {
    throw new ConfigurationError(
      `No registry: start the local stack with \`npm start\`, or set ${AIAAS_BUCKET} (and AWS credentials) for a deployed one`,
    );
  }
  const client = createS3Client({
    endpoint: local.endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
  });
  const store = new S3ObjectStore(client, local.bucket, local.endpoint);
  return {
    registry: new ModelRegistry(store),
    description: `local stack (${store.description})`,
    localUrl: local.url,
  };
}
