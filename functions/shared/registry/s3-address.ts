/**
 * Where an S3 object lives, as the function's reader addresses it: an endpoint given (s3rver, an
 * S3-compatible server) is addressed path-style; AWS itself virtual-hosted, or path-style for a
 * bucket whose name has dots (S3's wildcard certificate does not match it). Paths are escaped the
 * way SigV4 signs them.
 */

import { ConfigurationError } from '../errors.js';

export interface Target {
  readonly protocol: 'http:' | 'https:';
  readonly hostname: string;
  readonly port?: number;
  /** The Host header, port included when it is not the default. */
  readonly host: string;
  /** Path of the bucket's root, without a trailing '/': '' when virtual-hosted, '/<bucket>' otherwise. */
  readonly bucketPath: string;
}

/** The address of `bucket`'s root. */
export function targetOf(bucket: string, region: string, endpoint: string | undefined): Target {
  if (endpoint) {
    const url = new URL(endpoint);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new ConfigurationError(`S3 endpoint ${endpoint} is not an http(s) URL`);
    }
    const base = url.pathname.replace(/\/+$/, '');
    return {
      protocol: url.protocol,
      hostname: url.hostname.replace(/^\[(.*)\]$/, '$1'),
      port: url.port ? Number(url.port) : undefined,
      host: url.host,
      bucketPath: `${base}/${escapeUri(bucket)}`,
    };
  }
  const domain = `s3.${region}.amazonaws.com${region.startsWith('cn-') ? '.cn' : ''}`;
  // A bucket name with dots does not match S3's wildcard TLS certificate as a host name: path-style.
  if (bucket.includes('.')) {
    return { protocol: 'https:', hostname: domain, host: domain, bucketPath: `/${escapeUri(bucket)}` };
  }
  const hostname = `${bucket}.${domain}`;
  return { protocol: 'https:', hostname, host: hostname, bucketPath: '' };
}

/** RFC 3986 encoding as SigV4 wants it: everything but A-Z a-z 0-9 - _ . ~ as %XX. */
export function escapeUri(text: string): string {
  return encodeURIComponent(text).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

/** An object key as an S3 path: each segment encoded, the '/' between them kept. */
export function escapePath(key: string): string {
  return key.split('/').map(escapeUri).join('/');
}
