/**
 * Rate limits and the sign-in backoff counted in Redis, against the real Redis: one budget for
 * every instance of a deployment, a window that expires, and the instance's own limiter answering
 * (with one warning) while Redis is cut, until it is back.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient } from 'redis';
import { startWarden, type Warden } from '../../src/app.ts';
import { createBackoff, createRateLimiter } from '../../src/authorization-server/rate-limit.ts';
import { createRedisBackoff } from '../../src/cluster/backoff.ts';
import { openRedisConnection, type RedisConnection } from '../../src/cluster/redis-connection.ts';
import { createRedisRateLimiter } from '../../src/cluster/rate-limiter.ts';
import { buildDemoConfig } from '../../src/config/demo.ts';
import { parseConfig } from '../../src/config/load.ts';
import type { Config } from '../../src/config/schema.ts';
import { silentLogger } from '../../src/log.ts';
import { redisUnavailable, testKeyPrefix, TEST_REDIS_URL } from '../helpers/redis.ts';
import { cuttableProxy } from '../helpers/tcp-proxy.ts';
import { waitFor } from '../helpers/wait-for.ts';
import { capturingLogger } from '../helpers/capturing-logger.ts';

describe('rate limits shared through Redis', { skip: await redisUnavailable() }, () => {
  const open: RedisConnection[] = [];
  const proxies: Array<{ close(): Promise<void> }> = [];
  const connect = (keyPrefix: string, url = TEST_REDIS_URL, logger = silentLogger) => {
    const c = openRedisConnection({ url, keyPrefix, logger, maxBackoffMs: 200 });
    open.push(c);
    return c;
  };
  after(async () => {
    for (const c of open) await c.close();
    for (const p of proxies) await p.close();
  });

  it('RFC 6585 §4: two instances count one budget per key; another key has its own; the counter expires with its window', async () => {
    const prefix = testKeyPrefix();
    const limit = { max: 3, windowMs: 60_000 };
    const [ca, cb] = [connect(prefix), connect(prefix)];
    await waitFor(() => ca.isReady() && cb.isReady(), 'connections ready');
    const a = createRedisRateLimiter(ca, { name: 'test', ...limit, local: createRateLimiter(limit), logger: silentLogger });
    const b = createRedisRateLimiter(cb, { name: 'test', ...limit, local: createRateLimiter(limit), logger: silentLogger });
    const answers = [await a.hit('203.0.113.7'), await b.hit('203.0.113.7'), await a.hit('203.0.113.7'), await b.hit('203.0.113.7'), await a.hit('203.0.113.7')];
    assert.deepEqual(answers, [true, true, true, false, false]);
    assert.equal(await b.hit('198.51.100.1'), true, 'another address is counted apart');

    const raw = createClient({ url: TEST_REDIS_URL });
    await raw.connect();
    try {
      const keys = await raw.keys(`${prefix}rate:test:*`);
      assert.equal(keys.length, 2);
      for (const k of keys) {
        assert.ok(!k.includes('203.0.113.7') && !k.includes('198.51.100.1'), 'the subject is hashed, not stored');
        const ttl = await raw.pTTL(k);
        assert.ok(ttl > 0 && ttl <= 60_000, `expires with its window (${ttl} ms)`);
      }
    } finally {
      raw.destroy();
    }
  });

  it('RFC 6585 §4: the window starts at the first hit, as the local limiter\'s does: a burst across a clock-aligned boundary is one count; once the window has expired a new count starts', async () => {
    const prefix = testKeyPrefix();
    const limit = { max: 1, windowMs: 3_000 };
    const c = connect(prefix);
    await waitFor(() => c.isReady(), 'connection ready');
    const l = createRedisRateLimiter(c, { name: 'window', ...limit, local: createRateLimiter(limit), logger: silentLogger });
    const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
    // First hit ~200 ms before a multiple of the window on the clock, the second 50 ms after the
    // multiple that follows it (timed from that multiple, not from when a late timer fired):
    // windows aligned to the clock would count them apart, each the first of its window.
    await sleep((limit.windowMs + limit.windowMs - 200 - (Date.now() % limit.windowMs)) % limit.windowMs);
    const first = Date.now();
    assert.equal(await l.hit('k'), true);
    const boundary = Math.floor(first / limit.windowMs) * limit.windowMs + limit.windowMs;
    await sleep(Math.max(0, boundary + 50 - Date.now()));
    const apart = Date.now() - first;
    assert.ok(apart < limit.windowMs, `both hits within one window of each other (${apart} ms): the test itself was held up`);
    assert.equal(await l.hit('k'), false, `the second hit, ${apart} ms after the first and past a clock-aligned boundary, falls in its window`);

    const raw = createClient({ url: TEST_REDIS_URL });
    await raw.connect();
    try {
      const [key] = await raw.keys(`${prefix}rate:window:*`);
      assert.ok(key !== undefined);
      const ttl = await raw.pTTL(key);
      assert.ok(ttl > 0 && ttl <= limit.windowMs, `the counter expires when its window ends (${ttl} ms)`);
      await waitFor(async () => (await raw.exists(key)) === 0, 'the window to expire');
    } finally {
      raw.destroy();
    }
    assert.equal(await l.hit('k'), true, 'a new window, a new count');
  });

  it('Redis cut: the local limiter answers, with one warning for the outage; once Redis is back the count is shared again', async () => {
    const prefix = testKeyPrefix();
    const proxy = await cuttableProxy(TEST_REDIS_URL);
    proxies.push(proxy);
    const log = capturingLogger();
    const limit = { max: 2, windowMs: 60_000 };
    const conn = connect(prefix, proxy.url, log.logger);
    const peer = connect(prefix);
    await waitFor(() => conn.isReady() && peer.isReady(), 'connections ready');
    const l = createRedisRateLimiter(conn, { name: 'outage', ...limit, local: createRateLimiter(limit), logger: log.logger });
    const other = createRedisRateLimiter(peer, { name: 'outage', ...limit, local: createRateLimiter(limit), logger: silentLogger });

    proxy.cut();
    await waitFor(() => !conn.isReady(), 'the outage to be noticed');
    assert.deepEqual([await l.hit('k'), await l.hit('k'), await l.hit('k')], [true, true, false], 'the local limiter still limits');
    assert.equal(log.events('rate_limit_local_fallback').length, 1, 'one warning per outage');

    proxy.restore();
    await waitFor(() => conn.isReady(), 'reconnected');
    assert.deepEqual([await other.hit('k2'), await other.hit('k2')], [true, true]);
    assert.equal(await l.hit('k2'), false, 'the peer\'s hits count here again');
    assert.equal(log.events('rate_limit_shared_again').length, 1);
  });
});

describe('the sign-in backoff shared through Redis', { skip: await redisUnavailable() }, () => {
  const open: RedisConnection[] = [];
  const proxies: Array<{ close(): Promise<void> }> = [];
  after(async () => {
    for (const c of open) await c.close();
    for (const p of proxies) await p.close();
  });
  const options = { freeFailures: 2, baseMs: 1000, maxMs: 60_000 };

  it('RFC 6749 §10.10: failures at either instance add up to one backoff; the wait is the same at both; a sign-in at one resets it for both', async () => {
    const prefix = testKeyPrefix();
    let t = 5_000_000;
    const now = () => t;
    const [ca, cb] = [openRedisConnection({ url: TEST_REDIS_URL, keyPrefix: prefix, logger: silentLogger }), openRedisConnection({ url: TEST_REDIS_URL, keyPrefix: prefix, logger: silentLogger })];
    open.push(ca, cb);
    await waitFor(() => ca.isReady() && cb.isReady(), 'connections ready');
    const a = createRedisBackoff(ca, { name: 'test', options, local: createBackoff(options, now), now, logger: silentLogger });
    const b = createRedisBackoff(cb, { name: 'test', options, local: createBackoff(options, now), now, logger: silentLogger });
    await a.fail('bob');
    await b.fail('bob');
    assert.equal(await a.retryAfter('bob'), 1, 'two free failures, then 1 s');
    await a.fail('bob');
    assert.equal(await b.retryAfter('bob'), 2, 'the third failure, at A, doubles the wait at B');
    assert.equal(await b.retryAfter('alice'), 0, 'another account is unaffected');
    t += 2_000;
    assert.equal(await a.retryAfter('bob'), 0, 'the wait ends');
    await b.reset('bob');
    await a.fail('bob');
    assert.equal(await a.retryAfter('bob'), 0, 'reset at B: A starts from zero');
  });

  it('Redis cut: the local backoff answers, with one warning; back: shared again', async () => {
    const prefix = testKeyPrefix();
    const proxy = await cuttableProxy(TEST_REDIS_URL);
    proxies.push(proxy);
    const log = capturingLogger();
    const conn = openRedisConnection({ url: proxy.url, keyPrefix: prefix, logger: log.logger, maxBackoffMs: 200 });
    open.push(conn);
    await waitFor(() => conn.isReady(), 'connected');
    const b = createRedisBackoff(conn, { name: 'outage', options, local: createBackoff(options), now: Date.now, logger: log.logger });
    proxy.cut();
    await waitFor(() => !conn.isReady(), 'the outage to be noticed');
    for (let i = 0; i < 3; i++) await b.fail('mallory');
    assert.ok((await b.retryAfter('mallory')) > 0, 'the local backoff still slows guessing');
    assert.equal(log.events('backoff_local_fallback').length, 1);
    proxy.restore();
    await waitFor(() => conn.isReady(), 'reconnected');
    assert.equal(await b.retryAfter('mallory'), 0, 'Redis answers again (its state is its own)');
    assert.equal(log.events('backoff_shared_again').length, 1);
  });
});

describe('the registration limit of two instances is one budget (RFC 7591 §3, requests alternating between the instances)', { skip: await redisUnavailable() }, () => {
  const dirs: string[] = [];
  const wardens: Warden[] = [];
  const prefix = testKeyPrefix();

  before(async () => {
    for (let i = 0; i < 2; i++) {
      const dir = mkdtempSync(join(tmpdir(), 'warden-redis-rate-'));
      dirs.push(dir);
      const env = { PATH: process.env.PATH, WARDEN_DEMO_PASSWORD: 'correct horse battery staple', WARDEN_DB: join(dir, 'warden.db'), PORT: '0' };
      const config = (port: number): Config => {
        const demo = buildDemoConfig(env);
        return parseConfig({
          ...JSON.parse(JSON.stringify({ ...demo, servers: undefined })),
          listen: { host: '127.0.0.1', port },
          publicUrl: `http://127.0.0.1:${port}`,
          cluster: { redis: { url: TEST_REDIS_URL, keyPrefix: prefix }, secret: 'cluster-secret-0123456789abcdefghijklmnop' },
          servers: demo.servers,
        });
      };
      wardens.push(await startWarden(config, { env, announce: () => {} }));
    }
  });

  after(async () => {
    for (const w of wardens) await w.close();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  const register = (w: Warden) => fetch(`${w.url}/oauth/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ client_name: 'rate test', application_type: 'native', redirect_uris: ['http://127.0.0.1/callback'], grant_types: ['authorization_code'], response_types: ['code'], token_endpoint_auth_method: 'none' }),
  });

  it('RFC 6585 §4: 20 registrations from one address spread over both instances succeed; the 21st is 429 on either', async () => {
    for (let i = 0; i < 20; i++) {
      const r = await register(wardens[i % 2]!);
      const body = await r.text();
      assert.equal(r.status, 201, `registration ${i + 1}: ${body}`);
    }
    for (const w of wardens) {
      const r = await register(w);
      assert.equal(r.status, 429);
      assert.ok(r.headers.get('retry-after'));
      assert.equal((await r.json() as { error?: string }).error, 'too_many_requests');
    }
  });
});
