/**
 * A TCP proxy for fault tests: it stands between an instance and a server the other suites share
 * (the test Redis, the test PostgreSQL), so a test can cut the connection (an outage) and restore
 * it without touching that server.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';

/**
 * A TCP proxy to `targetUrl` (the test Redis or PostgreSQL) that can be cut (every connection
 * dropped, new ones refused) and restored; `url` is `targetUrl` through it.
 */
export async function cuttableProxy(targetUrl: string): Promise<{ url: string; cut(): void; restore(): void; close(): Promise<void> }> {
  const target = new URL(targetUrl);
  const sockets = new Set<Socket>();
  let open = true;
  const server: Server = createServer((client) => {
    if (!open) { client.destroy(); return; }
    const upstream = connect(Number(target.port || (target.protocol === 'postgres:' || target.protocol === 'postgresql:' ? 5432 : 6379)), target.hostname);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => { client.destroy(); upstream.destroy(); });
    }
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
    restore() {
      open = true;
    },
    async close() {
      open = false;
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
