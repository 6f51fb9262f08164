/**
 * A TCP proxy for fault tests: it stands between an instance and a server the other suites share
 * (the test Redis, the test PostgreSQL), so a test can cut the connection (an outage) and restore
 * it without touching that server.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';

export interface CuttableProxy {
  /** `targetUrl` through the proxy. */
  url: string;
  /** A server that is gone: every connection dropped, new ones refused. */
  cut(): void;
  /**
   * A server that stops answering (frozen, or a network path that drops packets): connections
   * stay open and nothing passes either way; new ones are accepted and get nothing back. What
   * was held stays silent after `restore`, like a half-open connection. Nor is a held connection
   * closed when the instance ends its side: a frozen server never closes one.
   */
  freeze(): void;
  /** New connections reach the target again. */
  restore(): void;
  close(): Promise<void>;
}

/**
 * A TCP proxy to `targetUrl` (the test Redis or PostgreSQL) that can be cut, frozen and restored.
 */
export async function cuttableProxy(targetUrl: string): Promise<CuttableProxy> {
  const target = new URL(targetUrl);
  const sockets = new Set<Socket>();
  const pairs = new Set<[Socket, Socket]>();
  let open = true;
  let frozen = false;
  const hold = (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => s.destroy());
    // Read and drop: nothing reaches the other side, and nothing comes back. (resume: a socket
    // just unpiped is paused, and a 'data' listener alone would not make it flow again.)
    s.on('data', () => {});
    s.resume();
  };
  // allowHalfOpen: a held connection the instance ends stays open on this side, as on a frozen
  // server (Node would otherwise end it in turn). A piped one still closes: the end goes through.
  const server: Server = createServer({ allowHalfOpen: true }, (client) => {
    if (!open) { client.destroy(); return; }
    if (frozen) { hold(client); return; }
    const upstream = connect(Number(target.port || (target.protocol === 'postgres:' || target.protocol === 'postgresql:' ? 5432 : 6379)), target.hostname);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => { client.destroy(); upstream.destroy(); });
    }
    const pair: [Socket, Socket] = [client, upstream];
    pairs.add(pair);
    client.on('close', () => pairs.delete(pair));
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  // The target's URL with only the host and port changed: credentials, database and options kept.
  const via = new URL(target.href);
  via.hostname = '127.0.0.1';
  via.port = String(port);
  return {
    url: via.href,
    cut() {
      open = false;
      for (const s of sockets) s.destroy();
    },
    freeze() {
      frozen = true;
      for (const [client, upstream] of pairs) {
        client.unpipe(upstream);
        upstream.unpipe(client);
        hold(client);
        hold(upstream);
      }
      pairs.clear();
    },
    restore() {
      open = true;
      frozen = false;
    },
    async close() {
      open = false;
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
