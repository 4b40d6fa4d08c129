/**
 * A TCP proxy on loopback in front of an S3 server (or anything), for fault tests and the load
 * run. `pass` forwards, `delay` holds every chunk in both directions for `ms`, `blackhole` accepts
 * connections and reads requests but never answers (S3 or the network path gone silent, the worst
 * case for a client: no error, no data). Changing the mode drops open connections, as a network
 * change would. Listens on 127.0.0.1 only and connects to 127.0.0.1 only.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';

export type FaultMode = { kind: 'pass' } | { kind: 'delay'; ms: number } | { kind: 'blackhole' };

export class FaultProxy {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  mode: FaultMode = { kind: 'pass' };
  /** Connections accepted so far, whatever the mode. */
  connections = 0;

  constructor(private readonly targetPort: number) {}

  /** Starts listening; answers the proxy's URL (`http://127.0.0.1:<port>`). */
  async start(): Promise<string> {
    this.server = createServer((client) => this.accept(client));
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    const address = this.server.address() as { port: number };
    return `http://127.0.0.1:${address.port}`;
  }

  set(mode: FaultMode): void {
    this.mode = mode;
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
  }

  private track(socket: Socket) {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => socket.destroy());
  }

  private accept(client: Socket) {
    this.connections++;
    this.track(client);
    const mode = this.mode;
    if (mode.kind === 'blackhole') {
      client.on('data', () => undefined);
      return;
    }
    const upstream = connect(this.targetPort, '127.0.0.1');
    this.track(upstream);
    const forward = (from: Socket, to: Socket) => {
      from.on('data', (chunk) => {
        if (mode.kind === 'delay') setTimeout(() => to.destroyed || to.write(chunk), mode.ms);
        else if (!to.destroyed) to.write(chunk);
      });
      from.on('close', () => {
        if (mode.kind === 'delay') setTimeout(() => to.destroy(), mode.ms);
        else to.destroy();
      });
    };
    forward(client, upstream);
    forward(upstream, client);
  }

  async close(): Promise<void> {
    this.set({ kind: 'pass' });
    await new Promise<void>((resolve) => this.server?.close(() => resolve()) ?? resolve());
  }
}
