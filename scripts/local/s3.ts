/**
 * The local model registry: s3rver on loopback holding the registry bucket, the credentials it
 * accepts, and the environment a function process needs to reach it (as Lambda would give it).
 * s3rver neither checks SigV4 nor enforces conditional writes: tests of those add their own checks.
 */
import { mkdirSync } from 'node:fs';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import S3rver from 's3rver';
import { loopbackNameProblem } from '../../cli/loopback-host.js';
import { AIAAS_BUCKET, AIAAS_S3_ENDPOINT } from '../../functions/shared/env.js';
import { ModelRegistry } from '../../functions/shared/registry/registry.js';
import { createS3Client, S3ObjectStore } from '../../functions/shared/registry/store.js';

/** s3rver accepts only these credentials. */
export const LOCAL_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } as const;
export const DEFAULT_BUCKET = 'aiaas-models';

/**
 * The environment a function process gets to reach the local registry, as Lambda would give it
 * (credentials in the environment), with metrics off and only warnings logged.
 */
export function localFunctionEnv(s3: {
  readonly bucket: string;
  readonly endpoint: string;
}): NodeJS.ProcessEnv {
  return {
    [AIAAS_BUCKET]: s3.bucket,
    [AIAAS_S3_ENDPOINT]: s3.endpoint,
    AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey,
    AWS_REGION: 'us-east-1',
    POWERTOOLS_METRICS_DISABLED: 'true',
    POWERTOOLS_LOG_LEVEL: 'WARN',
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
  };
}

export interface LocalS3 {
  readonly endpoint: string;
  readonly bucket: string;
  readonly registry: ModelRegistry;
  close(): Promise<void>;
}

/** Starts s3rver on loopback with the registry bucket, state kept in `directory`. */
export async function startLocalS3(options: {
  directory: string;
  port?: number;
  bucket?: string;
}): Promise<LocalS3> {
  const bucket = options.bucket ?? DEFAULT_BUCKET;
  mkdirSync(options.directory, { recursive: true });
  const server = new S3rver({
    address: '127.0.0.1',
    port: options.port ?? 0,
    silent: true,
    directory: options.directory,
    configureBuckets: [{ name: bucket, configs: [] }],
  });
  const address = (await server.run()) as AddressInfo;
  guardHost((server as unknown as { httpServer: Server }).httpServer);
  const endpoint = `http://127.0.0.1:${address.port}`;
  const client = createS3Client({ endpoint, credentials: LOCAL_CREDENTIALS, region: 'us-east-1' });
  return {
    endpoint,
    bucket,
    registry: new ModelRegistry(new S3ObjectStore(client, bucket, endpoint)),
    async close() {
      client.destroy();
      const http = (server as unknown as { httpServer?: Server }).httpServer;
      http?.closeAllConnections();
      await server.close();
    },
  };
}

/**
 * s3rver answers any Host: a request that does not name 127.0.0.1 or localhost (a page rebinding
 * its own name to this machine) gets S3's AccessDenied before s3rver sees it.
 */
function guardHost(http: Server): void {
  const listeners = http.listeners('request') as ((req: IncomingMessage, res: ServerResponse) => void)[];
  http.removeAllListeners('request');
  http.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const problem = loopbackNameProblem(req, 'The local S3');
    if (problem) {
      req.resume();
      res.writeHead(403, { 'content-type': 'application/xml' });
      res.end(
        `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code><Message>${escapeXml(problem)}</Message></Error>`,
      );
      return;
    }
    for (const listener of listeners) listener.call(http, req, res);
  });
}

function escapeXml(text: string): string {
  return text.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
