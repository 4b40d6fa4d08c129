/**
 * The console's guards, each a pure check on one request: the Host header must name the loopback
 * address the request arrived on (a page of another site resolving its name to 127.0.0.1 — DNS
 * rebinding — is refused: hostProblem, in cli/loopback-host.ts, shared with the function-URL
 * server); a state-changing request must come from the console's own origin (Origin, else
 * Sec-Fetch-Site, when the browser sends them) and carry the session token, compared in constant
 * time. The token is random per console (one per `aiaas console` / `npm start` run),
 * embedded in the forms of its pages, which no other site can read.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

/** A fresh session token: 32 random bytes, base64url. */
export function newSessionToken(): string {
  return randomBytes(32).toString('base64url');
}

/** Whether `given` is the session token, in time independent of where they differ. */
export function tokenMatches(token: string, given: unknown): boolean {
  if (typeof given !== 'string') return false;
  const a = Buffer.from(token);
  const b = Buffer.from(given);
  // Lengths are not secret (the token's is fixed); the comparison of equal lengths is constant-time.
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * Why a state-changing request is refused as cross-site, or undefined. Browsers send Origin on
 * every POST (and Sec-Fetch-Site); it must be this console's own origin. A client sending neither
 * (curl) is not a browser carrying someone's session: the token alone decides for it.
 */
export function originProblem(req: IncomingMessage): string | undefined {
  const origin = req.headers.origin;
  const host = req.headers.host ?? '';
  if (origin !== undefined) {
    if (origin !== `http://${host}`)
      return `cross-origin request refused (Origin ${JSON.stringify(origin.slice(0, 100))})`;
    return undefined;
  }
  const site = req.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin' && site !== 'none')
    return `cross-site request refused (Sec-Fetch-Site ${JSON.stringify(String(site).slice(0, 40))})`;
  return undefined;
}

/** The console's own pages: scripts and styles from itself only, never framed, nothing sniffed. */
export const PAGE_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  // Not no-referrer: under it browsers send `Origin: null` with the console's own form posts.
  'referrer-policy': 'same-origin',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'cache-control': 'no-store',
};

/**
 * Untrusted documents from the registry (a training report's SVG, a function's JSON): sandboxed,
 * so a script in one never runs even when it is opened directly rather than shown as an <img>.
 */
export const UNTRUSTED_HEADERS: Readonly<Record<string, string>> = {
  ...PAGE_HEADERS,
  'content-security-policy': "sandbox; default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
};
