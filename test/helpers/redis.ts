/**
 * Redis for tests: `WARDEN_TEST_REDIS_URL` (default: the local server on the standard port). Each
 * harness takes a key prefix of its own, so test files running at once never hear each other's
 * messages or see each other's keys.
 *
 * When the server is not reachable: under CI (`CI` set) that is a failure, since CI must run these
 * suites; elsewhere the suite is skipped with one line saying how to start the server.
 *
 * `cuttableProxy` stands between an instance and Redis so a test can cut the connection (an
 * outage) and restore it without touching the Redis server other suites use.
 */
import { randomBytes } from 'node:crypto';
import { connect, createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { createClient } from 'redis';

export const TEST_REDIS_URL = process.env.WARDEN_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

let probe: Promise<string | undefined> | undefined;

/** undefined when Redis answers PING; otherwise the reason a suite should be skipped. Throws under CI. */
export function redisUnavailable(): Promise<string | undefined> {
  probe ??= (async () => {
    const client = createClient({ url: TEST_REDIS_URL, socket: { connectTimeout: 3000, reconnectStrategy: false } });
    client.on('error', () => {});
    try {
      await client.connect();
      await client.ping();
      return undefined;
    } catch (err) {
      const line = `Redis not reachable at ${TEST_REDIS_URL.replace(/\/\/[^@/]*@/, '//…@')} (${(err as Error).message}): start it (e.g. redis-server --daemonize yes --save '') or set WARDEN_TEST_REDIS_URL`;
      if (process.env.CI) throw new Error(`${line}; CI requires it`, { cause: err });
      process.stderr.write(`# skipped Redis suites: ${line}\n`);
      return line;
    } finally {
      if (client.isOpen) client.destroy();
    }
  })();
  return probe;
}

/** A key prefix no other harness uses. */
export function testKeyPrefix(): string {
  return `warden-test:${randomBytes(6).toString('hex')}:`;
}

/**
 * A TCP proxy to the test Redis (or to `targetUrl`, e.g. the test PostgreSQL) that can be cut
 * (every connection dropped, new ones refused) and restored; `url` is `targetUrl` through it.
 */
export async function cuttableProxy(targetUrl: string = TEST_REDIS_URL): Promise<{ url: string; cut(): void; restore(): void; close(): Promise<void> }> {
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
