/**
 * The Host guard of the local listeners on 127.0.0.1 (the console, and `npm start`'s function-URL
 * server, Step Functions API and S3, which import it from here: scripts may import cli, never the
 * reverse). A request must name the loopback listener it arrived on in its Host header; a page of
 * another site whose name resolves to 127.0.0.1 (DNS rebinding) sends its own name there and is
 * refused. The local S3 checks the name alone (`loopbackNameProblem`): the fault proxies of the tests
 * reach it on loopback through ports of their own. Pure: it reads only the request's Host header and
 * the socket's local port.
 */
import type { IncomingMessage } from 'node:http';

/** The Host values a loopback listener on `port` answers to (port 80 may be left out, as URLs do). */
export function allowedHosts(port: number): string[] {
  const hosts = [`127.0.0.1:${port}`, `localhost:${port}`];
  return port === 80 ? [...hosts, '127.0.0.1', 'localhost'] : hosts;
}

/**
 * Why a request's Host is refused, or undefined when it names the listener: `<listener> answers
 * only to 127.0.0.1:<port> or localhost:<port>, not Host "<given>"` (or: it has no Host header).
 */
export function hostProblem(req: IncomingMessage, listener: string): string | undefined {
  const host = req.headers.host;
  const port = req.socket.localPort;
  if (host && port !== undefined && allowedHosts(port).includes(host.toLowerCase())) return undefined;
  const answers = `${listener} answers only to ${allowedHosts(port ?? 0).join(' or ')}`;
  return host
    ? `${answers}, not Host ${JSON.stringify(host.slice(0, 100))}`
    : `${answers}; the request has no Host header`;
}

/**
 * Why a request's Host does not name this machine's loopback (127.0.0.1 or localhost, any port), or
 * undefined: the DNS-rebinding guard for a listener that proxies on loopback reach by other ports.
 */
export function loopbackNameProblem(req: IncomingMessage, listener: string): string | undefined {
  const host = req.headers.host;
  const name = host?.toLowerCase().replace(/:\d+$/, '');
  if (name === '127.0.0.1' || name === 'localhost') return undefined;
  const answers = `${listener} answers only to 127.0.0.1 or localhost`;
  return host
    ? `${answers}, not Host ${JSON.stringify(host.slice(0, 100))}`
    : `${answers}; the request has no Host header`;
}
