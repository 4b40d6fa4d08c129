import { Sha256 } from '@aws-crypto/sha256-js';
import { defaultProvider } from '@aws-sdk/credential-provider-node';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';

/** The region of a Lambda function URL host (`<id>.lambda-url.<region>.on.aws`). */
export function regionOfFunctionUrl(url: URL): string | undefined {
  return /\.lambda-url\.([a-z0-9-]+)\.on\.aws$/.exec(url.hostname)?.[1];
}

/**
 * Signs a request for an IAM-auth function URL with SigV4 (service `lambda`), using the standard
 * AWS credential chain. The caller needs lambda:InvokeFunctionUrl and lambda:InvokeFunction.
 */
export async function signedFetchInit(
  url: URL,
  method: string,
  body: string,
  region = regionOfFunctionUrl(url) ?? process.env.AWS_REGION ?? 'us-east-1',
): Promise<RequestInit> {
  const signer = new SignatureV4({
    service: 'lambda',
    region,
    credentials: defaultProvider(),
    sha256: Sha256,
  });
  const request = new HttpRequest({
    method,
    protocol: url.protocol,
    hostname: url.hostname,
    ...(url.port ? { port: Number(url.port) } : {}),
    path: url.pathname,
    query: Object.fromEntries(url.searchParams),
    headers: { host: url.host, 'content-type': 'application/json' },
    body,
  });
  const signed = await signer.sign(request);
  return {
    method,
    headers: signed.headers as Record<string, string>,
    body: method === 'GET' ? undefined : body,
  };
}
