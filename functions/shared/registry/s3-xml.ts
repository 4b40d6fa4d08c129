/**
 * S3's XML answers, as the function's reader needs them: the Code, Message and RequestId of an
 * error answer (S3ResponseError), and the few fields of a ListObjectsV2 page. S3 escapes '<' and
 * '&' in text, so no element's text can contain markup and a pattern per element is exact.
 */

import type { ListedObject } from './store.js';

/** An S3 error answer (its XML Code as the name), kept as the cause of a RegistryUnavailableError. */
export class S3ResponseError extends Error {
  constructor(
    readonly code: string,
    readonly status: number,
    message: string,
    readonly requestId?: string,
  ) {
    super(message);
    this.name = code;
  }
}

/** The few fields of a ListObjectsV2 answer the registry uses. */
export function parseListing(xml: string): { objects: ListedObject[]; next?: string } {
  if (!/<ListBucketResult[\s>]/.test(xml)) {
    throw new S3ResponseError('MalformedListing', 200, 'S3 answered a listing without ListBucketResult');
  }
  const objects: ListedObject[] = [];
  for (const match of xml.matchAll(/<Contents(?:\s[^>]*)?>([\s\S]*?)<\/Contents>/g)) {
    const item = match[1] ?? '';
    const key = textOf(item, 'Key');
    if (key === undefined) continue;
    const modified = textOf(item, 'LastModified');
    const lastModified = modified ? new Date(modified) : undefined;
    objects.push({
      key,
      size: Number(textOf(item, 'Size') ?? 0) || 0,
      lastModified: lastModified && !Number.isNaN(lastModified.getTime()) ? lastModified : undefined,
    });
  }
  const next = textOf(xml, 'IsTruncated') === 'true' ? textOf(xml, 'NextContinuationToken') : undefined;
  return next ? { objects, next } : { objects };
}

/** The decoded text of the first `<tag>` element in `xml`. */
export function textOf(xml: string, tag: string): string | undefined {
  const match = new RegExp(`<${tag}(?:\\s[^>]*)?>([^<]*)</${tag}>`).exec(xml);
  return match ? decodeXml(match[1] ?? '') : undefined;
}

const XML_ENTITIES: Readonly<Record<string, string>> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

function decodeXml(text: string): string {
  return text.replace(/&(#x[0-9A-Fa-f]+|#[0-9]+|amp|lt|gt|quot|apos);/g, (_, entity: string) =>
    entity.startsWith('#x')
      ? String.fromCodePoint(Number.parseInt(entity.slice(2), 16))
      : entity.startsWith('#')
        ? String.fromCodePoint(Number(entity.slice(1)))
        : (XML_ENTITIES[entity] ?? ''),
  );
}
