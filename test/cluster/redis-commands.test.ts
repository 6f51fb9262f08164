/**
 * Bounded Redis commands (src/cluster/redis-connection.ts `command`), against real Redis servers:
 * what a caller on a request path (the session directory, the shared rate limits and sign-in
 * backoff, the account page's sessions, the revocation and key-notice fan-out) meets when Redis
 * stops answering. Each command has its own limit; once one has been given up unanswered, the
 * next ones are refused at once instead of each waiting out its own limit, until Redis answers
 * again.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient } from 'redis';
import { openRedisConnection, RedisUnavailable, type RedisConnection } from '../../src/cluster/redis-connection.ts';
import { silentLogger } from '../../src/log.ts';
import { startOwnRedis } from '../helpers/cluster.ts';
import { redisUnavailable, testKeyPrefix, TEST_REDIS_URL } from '../helpers/redis.ts';
import { cuttableProxy, type CuttableProxy } from '../helpers/tcp-proxy.ts';
import { waitFor } from '../helpers/wait-for.ts';

/** The limit the session directory, the rate limits and the backoff give each command. */
const LIMIT_MS = 250;

/** The kind of RedisUnavailable `promise` rejects with (fails the test if it resolves or rejects otherwise). */
async function refusal(promise: Promise<unknown>): Promise<RedisUnavailable['kind']> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof RedisUnavailable, `a RedisUnavailable, not ${String(err)}`);
    return err.kind;
  }
  assert.fail('the command was expected to fail');
}

describe('bounded Redis commands: a Redis that stops answering costs one command limit, not one per command', { skip: await redisUnavailable() }, () => {
  const open: RedisConnection[] = [];
  const proxies: CuttableProxy[] = [];
  after(async () => {
    for (const c of open) await c.close();
    for (const p of proxies) await p.close();
  });

  it('frozen: the first command fails at its limit, the next ones at once; once a new connection answers, commands run again', async () => {
    const proxy = await cuttableProxy(TEST_REDIS_URL);
    proxies.push(proxy);
    const prefix = testKeyPrefix();
    // PINGs a second apart: a new connection is usable before its first PING is answered.
    const conn = openRedisConnection({ url: proxy.url, keyPrefix: prefix, logger: silentLogger, maxBackoffMs: 200, pingIntervalMs: 1000, silenceTimeoutMs: 2000 });
    open.push(conn);
    await waitFor(() => conn.isReady(), 'connected');
    const key = conn.key('bounded');
    assert.equal(await conn.command(() => conn.client.set(key, 'v', { expiration: { type: 'PX', value: 60_000 } }), LIMIT_MS), 'OK');

    proxy.freeze();
    assert.equal(await refusal(conn.command(() => conn.client.get(key), LIMIT_MS)), 'no-answer', 'the first command waits out its limit');
    const kinds: string[] = [];
    for (let i = 0; i < 20; i++) kinds.push(await refusal(conn.command(() => conn.client.get(key), LIMIT_MS)));
    assert.deepEqual(new Set(kinds), new Set(['still-no-answer']), 'every later command is refused without waiting');

    // The watchdog drops the silent connection (silenceTimeoutMs), and the new one's handshake
    // is Redis answering: the next command runs.
    // (Counted by its event: the drop and the new handshake may both fall between two polls.)
    let readies = 0;
    conn.client.on('ready', () => { readies += 1; });
    proxy.restore();
    await waitFor(() => readies > 0, 'a new connection', { timeoutMs: 15_000 });
    assert.equal(await conn.command(() => conn.client.get(key), LIMIT_MS), 'v');
  });

  it('only slow (a long script): commands are refused while Redis is busy, and run again once it has caught up, on the same connection', async () => {
    // A redis-server of the test's own: the script blocks every client of its server.
    const dir = mkdtempSync(join(tmpdir(), 'warden-slow-redis-'));
    const own = await startOwnRedis(dir);
    const raw = createClient({ url: own.url });
    let conn: RedisConnection | undefined;
    try {
      await raw.connect();
      // A silence timeout far beyond the script: the connection must never be dropped here.
      conn = openRedisConnection({ url: own.url, keyPrefix: testKeyPrefix(), logger: silentLogger, maxBackoffMs: 200, pingIntervalMs: 250, silenceTimeoutMs: 10_000 });
      const c = conn;
      await waitFor(() => c.isReady(), 'connected');
      let readies = 0;
      c.client.on('ready', () => { readies += 1; });
      const key = c.key('slow');
      await c.command(() => c.client.set(key, 'v'), LIMIT_MS);

      // Busy for 1.5 s (under busy-reply-threshold's 5 s default: other clients wait, unanswered).
      const script = "local t = redis.call('TIME'); local stop = tonumber(t[1]) * 1000000 + tonumber(t[2]) + ARGV[1] * 1000; repeat t = redis.call('TIME') until tonumber(t[1]) * 1000000 + tonumber(t[2]) >= stop; return 1";
      const busy = raw.eval(script, { arguments: ['1500'] });
      await new Promise((resolve) => setTimeout(resolve, 200));
      assert.equal(await refusal(c.command(() => c.client.get(key), LIMIT_MS)), 'no-answer');
      assert.equal(await refusal(c.command(() => c.client.get(key), LIMIT_MS)), 'still-no-answer');
      await busy;
      await waitFor(async () => {
        try {
          return (await c.command(() => c.client.get(key), LIMIT_MS)) === 'v';
        } catch {
          return false;
        }
      }, 'commands to run again once the script has ended', { intervalMs: 20 });
      assert.equal(readies, 0, 'the same connection throughout: a slow Redis is not an outage');
    } finally {
      await conn?.close();
      await raw.quit().catch(() => {});
      await own.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('an error reply is an answer: the command fails with Redis\' own error, and the next one runs', async () => {
    const conn = openRedisConnection({ url: TEST_REDIS_URL, keyPrefix: testKeyPrefix(), logger: silentLogger, maxBackoffMs: 200 });
    open.push(conn);
    await waitFor(() => conn.isReady(), 'connected');
    const key = conn.key('wrong-type');
    await conn.command(() => conn.client.set(key, 'text', { expiration: { type: 'PX', value: 60_000 } }), LIMIT_MS);
    await assert.rejects(conn.command(() => conn.client.lPush(key, 'x'), LIMIT_MS), (err: Error) => !(err instanceof RedisUnavailable) && /WRONGTYPE/.test(err.message));
    assert.equal(await conn.command(() => conn.client.get(key), LIMIT_MS), 'text');
  });

  it('not connected: refused at once, as not-connected', async () => {
    const proxy = await cuttableProxy(TEST_REDIS_URL);
    proxies.push(proxy);
    proxy.cut();
    const conn = openRedisConnection({ url: proxy.url, keyPrefix: testKeyPrefix(), logger: silentLogger, maxBackoffMs: 200 });
    open.push(conn);
    assert.equal(await refusal(conn.command(() => conn.client.get('k'), LIMIT_MS)), 'not-connected');
  });
});
