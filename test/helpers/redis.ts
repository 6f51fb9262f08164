/**
 * Redis for tests: `WARDEN_TEST_REDIS_URL` (default: the local server on the standard port). Each
 * harness takes a key prefix of its own, so test files running at once never hear each other's
 * messages or see each other's keys.
 *
 * When the server is not reachable: under CI (`CI` set) that is a failure, since CI must run these
 * suites; elsewhere the suite is skipped with one line saying how to start the server.
 *
 * To cut an instance's connection to Redis (an outage) without touching the server other suites
 * use: `cuttableProxy(TEST_REDIS_URL)` (tcp-proxy.ts).
 */
import { randomBytes } from 'node:crypto';
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
