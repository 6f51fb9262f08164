/**
 * The Redis connection and the revocation fan-out, against the real Redis: delivery between
 * instances on one key prefix (and not across prefixes), messages parsed at the edge, and an
 * outage that is survived, logged once, and recovered from without a restart.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient } from 'redis';
import { createRevocationList, revocationHorizonMs, type RevocationEvent } from '../../src/authorization-server/revocation.ts';
import { createMemoryStore } from '../../src/storage/memory/store.ts';
import { describeRedisUrl, openRedisConnection, reconnectDelayMs, type RedisConnection } from '../../src/cluster/redis-connection.ts';
import { createRedisRevocationBus, parseRevocationMessage, REVOCATION_CHANNEL } from '../../src/cluster/revocation-bus.ts';
import { silentLogger } from '../../src/log.ts';
import { redisUnavailable, testKeyPrefix, TEST_REDIS_URL } from '../helpers/redis.ts';
import { startOwnRedis } from '../helpers/cluster.ts';
import { cuttableProxy } from '../helpers/tcp-proxy.ts';
import { waitFor } from '../helpers/wait-for.ts';
import { capturingLogger } from '../helpers/capturing-logger.ts';

const event = (id: string): RevocationEvent => ({ kind: 'token', id, at: Date.now(), until: Date.now() + 60_000 });

describe('revocation messages are parsed at the edge', () => {
  it('RFC 7009 §2.1: a well-formed revocation is accepted as sent', () => {
    const e = event('jti-1');
    assert.deepEqual(parseRevocationMessage(JSON.stringify(e)), e);
  });
  it('anything else on the channel is refused: bad JSON, unknown kind, empty or huge id, missing times', () => {
    for (const bad of ['not json', 'null', '[]', '{"kind":"everything","id":"x","at":1,"until":2}', '{"kind":"grant","id":"","at":1,"until":2}',
      JSON.stringify({ kind: 'grant', id: 'x'.repeat(5000), at: 1, until: 2 }), '{"kind":"grant","id":"g","at":"1","until":2}', '{"kind":"client","id":"c"}']) {
      assert.equal(parseRevocationMessage(bad), undefined, bad);
    }
  });
  it('logs name the Redis host and port, never the credentials of its URL', () => {
    assert.equal(describeRedisUrl('redis://user:s3cret@cache.internal:6380/2?x=1'), 'redis://cache.internal:6380');
    assert.equal(describeRedisUrl('rediss://:s3cret@cache.internal'), 'rediss://cache.internal:6379');
  });
  it('reconnects back off exponentially from 100 ms to the maximum, with jitter', () => {
    assert.deepEqual([0, 1, 2, 3, 10, 40].map((r) => reconnectDelayMs(r, 5000, () => 0.5)), [100, 200, 400, 800, 5000, 5000]);
    assert.equal(reconnectDelayMs(0, 5000, () => 0), 80);
    assert.equal(reconnectDelayMs(0, 5000, () => 1), 120);
  });
});

describe('the Redis revocation bus', { skip: await redisUnavailable() }, () => {
  const open: RedisConnection[] = [];
  const proxies: Array<{ close(): Promise<void> }> = [];
  const connect = (keyPrefix: string, url = TEST_REDIS_URL, logger = silentLogger, timing: { pingIntervalMs?: number; silenceTimeoutMs?: number } = {}) => {
    const c = openRedisConnection({ url, keyPrefix, logger, maxBackoffMs: 200, ...timing });
    open.push(c);
    return c;
  };
  after(async () => {
    for (const c of open) await c.close();
    for (const p of proxies) await p.close();
  });

  it('RFC 7009 §2.1: a revocation published by one instance is heard by every instance on the same prefix, and by no other deployment', async () => {
    const prefix = testKeyPrefix();
    const a = createRedisRevocationBus(connect(prefix), silentLogger);
    const b = createRedisRevocationBus(connect(prefix), silentLogger);
    const other = createRedisRevocationBus(connect(testKeyPrefix()), silentLogger);
    await Promise.all([a.ready, b.ready, other.ready]);
    const heardB: RevocationEvent[] = [];
    const heardOther: RevocationEvent[] = [];
    b.subscribe((e) => heardB.push(e));
    other.subscribe((e) => heardOther.push(e));
    const heardA: RevocationEvent[] = [];
    a.subscribe((e) => heardA.push(e));

    const e = event('jti-fan-out');
    await waitFor(() => open.every((c) => c.isReady()), 'connections ready');
    await a.publish(e);
    assert.deepEqual(heardA[0], e, 'the publishing instance hears it at once, without a round trip');
    await waitFor(() => heardB.length > 0, 'instance B to hear the revocation');
    assert.deepEqual(heardB[0], e);
    await other.publish(event('jti-other'));
    await waitFor(() => heardOther.length >= 1, 'the other deployment hears its own');
    assert.deepEqual(heardB.map((x) => x.id), ['jti-fan-out'], 'nothing crosses key prefixes');
  });

  it('a malformed message on the channel is dropped with a warning; the next revocation still arrives', async () => {
    const prefix = testKeyPrefix();
    const log = capturingLogger();
    const b = createRedisRevocationBus(connect(prefix, TEST_REDIS_URL, log.logger), log.logger);
    await b.ready;
    const heard: RevocationEvent[] = [];
    b.subscribe((e) => heard.push(e));
    const raw = createClient({ url: TEST_REDIS_URL });
    await raw.connect();
    try {
      await raw.publish(`${prefix}${REVOCATION_CHANNEL}`, '{"kind":"grant","id":""}');
      await raw.publish(`${prefix}${REVOCATION_CHANNEL}`, JSON.stringify(event('after-garbage')));
    } finally {
      raw.destroy();
    }
    await waitFor(() => heard.length > 0, 'the valid revocation');
    assert.deepEqual(heard.map((e) => e.id), ['after-garbage']);
    assert.equal(log.events('revocation_message_refused').length, 1);
  });

  it('an outage: publishing neither waits nor fails, one warning however many attempts, one recovery line, and the subscription resumes by itself', async () => {
    const prefix = testKeyPrefix();
    const proxy = await cuttableProxy(TEST_REDIS_URL);
    proxies.push(proxy);
    const log = capturingLogger();
    // The default user has no password here, so Redis accepts any: the password must still not be logged.
    const conn = connect(prefix, proxy.url.replace('redis://', 'redis://default:s3cret-password@'), log.logger);
    const b = createRedisRevocationBus(conn, log.logger);
    await b.ready;
    const heard: RevocationEvent[] = [];
    b.subscribe((e) => heard.push(e));
    const peer = createRedisRevocationBus(connect(prefix), silentLogger);
    await peer.ready;
    await waitFor(() => conn.isReady(), 'B connected');

    let attempts = 0;
    conn.client.on('reconnecting', () => { attempts += 1; });
    proxy.cut();
    await waitFor(() => attempts >= 4, 'several reconnect attempts during the outage');
    assert.equal(conn.isReady(), false);
    await b.publish(event('during-outage'));
    assert.deepEqual(heard.map((e) => e.id), ['during-outage'], 'local listeners still hear it; the Store carries it to others');
    assert.equal(log.events('redis_unavailable').length, 1, 'one warning per outage');
    assert.equal(log.events('redis_recovered').length, 0);

    proxy.restore();
    await waitFor(() => conn.isReady(), 'B reconnected');
    await waitFor(() => log.events('redis_recovered').length === 1, 'one recovery line');
    // The subscriber subscribed again on its own: a peer's revocation reaches B without a restart.
    await waitFor(async () => {
      await peer.publish(event('after-recovery'));
      return heard.some((e) => e.id === 'after-recovery');
    }, 'B to hear revocations again', { intervalMs: 50 });
    const text = JSON.stringify(log.lines);
    assert.ok(!text.includes('s3cret-password'), 'the password in the URL is not logged');
    assert.equal(log.events('redis_unavailable').length, 1);
  });

  // Short enough for a test, long enough that a busy 2-core machine never makes a healthy
  // connection look silent (a stalled event loop reads an answer late).
  const silence = { pingIntervalMs: 250, silenceTimeoutMs: 2000 };

  it('a Redis that stops answering is an outage too, even to a connection that keeps writing: each is given up once unanswered past the silence timeout, with one warning, and once Redis answers again both are back and the subscription resumes', async () => {
    const prefix = testKeyPrefix();
    const proxy = await cuttableProxy(TEST_REDIS_URL);
    proxies.push(proxy);
    const log = capturingLogger();
    const conn = connect(prefix, proxy.url, log.logger, silence);
    const b = createRedisRevocationBus(conn, log.logger);
    await b.ready;
    const heard: RevocationEvent[] = [];
    b.subscribe((e) => heard.push(e));
    const peer = createRedisRevocationBus(connect(prefix), silentLogger);
    await peer.ready;
    await waitFor(() => conn.isReady(), 'B connected');
    // Commands written all the time, as the session directory's heartbeat does: writes are
    // traffic to the socket's own inactivity timeout, so only unanswered PINGs can tell.
    const writer = setInterval(() => {
      if (conn.client.isReady) conn.client.set(`${prefix}heartbeat`, 'x', { expiration: { type: 'PX', value: 10_000 } }).catch(() => {});
    }, 50);
    try {
      // Idle but answered: pings keep both connections open well past the silence timeout.
      await new Promise((resolve) => setTimeout(resolve, 2 * silence.silenceTimeoutMs));
      assert.equal(log.events('redis_unavailable').length, 0, 'a connection whose pings are answered is not dropped');
      assert.ok(conn.isReady());

      proxy.freeze();
      // Each connection finds the silence on its own: both must have given up before Redis answers
      // again, or the second would be a second outage, after the first one's recovery.
      await waitFor(() => !conn.client.isReady && !conn.subscriber.isReady, 'both silent connections to be given up', { timeoutMs: 15_000 });
      assert.equal(log.events('redis_unavailable').length, 1, 'one warning for the outage');
      proxy.restore();
      await waitFor(() => log.events('redis_recovered').length === 1, 'one recovery line', { timeoutMs: 15_000 }).catch((err: Error) => {
        throw new Error(`${err.message}; logged: ${JSON.stringify(log.lines.map((l) => [l.time, l.event, l.reason]))}`);
      });
      assert.ok(conn.isReady());
      await waitFor(async () => {
        await peer.publish(event('after-silence'));
        return heard.some((e) => e.id === 'after-silence');
      }, 'B to hear revocations again', { intervalMs: 50 });
      assert.equal(log.events('redis_unavailable').length, 1, 'one warning for the outage');
    } finally {
      clearInterval(writer);
    }
  });

  it('a handshake Redis never answers does not hold the connection for ever, and a SUBSCRIBE lost with that connection is sent again: revocations arrive once Redis answers, once each', async () => {
    const prefix = testKeyPrefix();
    const proxy = await cuttableProxy(TEST_REDIS_URL);
    proxies.push(proxy);
    // Accepted and never answered, from the first connection on.
    proxy.freeze();
    const log = capturingLogger();
    const conn = connect(prefix, proxy.url, log.logger, silence);
    const b = createRedisRevocationBus(conn, log.logger);
    const heard: RevocationEvent[] = [];
    b.subscribe((e) => heard.push(e));
    // `ready` settles once the first SUBSCRIBE has failed: the handshake was given up.
    let settled = false;
    void b.ready.then(() => { settled = true; });
    await waitFor(() => settled, 'the unanswered handshake to be given up', { timeoutMs: 15_000 });
    assert.equal(log.events('revocation_subscribe_failed').length, 1);
    assert.equal(conn.isReady(), false);

    proxy.restore();
    await waitFor(() => conn.isReady(), 'B connected once Redis answers', { timeoutMs: 15_000 });
    const peer = createRedisRevocationBus(connect(prefix), silentLogger);
    await peer.ready;
    await waitFor(async () => {
      await peer.publish(event('after-handshake'));
      return heard.some((e) => e.id === 'after-handshake');
    }, 'B subscribed after all', { intervalMs: 50 });
    // A second revocation, once the first is in: heard once, not once per attempt to subscribe.
    await peer.publish(event('exactly-once'));
    await waitFor(() => heard.some((e) => e.id === 'exactly-once'), 'the second revocation');
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal(heard.filter((e) => e.id === 'exactly-once').length, 1);
  });

  it('a Redis busy with a long script answers PING with an error: that is an answer, not an outage (no warning, neither connection dropped)', async () => {
    // A redis-server of the test's own: a busy script blocks every client of that server.
    const dir = mkdtempSync(join(tmpdir(), 'warden-busy-redis-'));
    const own = await startOwnRedis(dir);
    const raw = createClient({ url: own.url });
    let opened: RedisConnection | undefined;
    try {
      await raw.connect();
      await raw.configSet('busy-reply-threshold', '100');
      const log = capturingLogger();
      // Not through connect(): closed here, with the Redis it uses.
      const conn = openRedisConnection({ url: own.url, keyPrefix: testKeyPrefix(), logger: log.logger, maxBackoffMs: 200, ...silence });
      opened = conn;
      const bus = createRedisRevocationBus(conn, log.logger);
      await bus.ready;
      await waitFor(() => conn.isReady(), 'connected');
      let pongs = 0;
      conn.client.on('ping-interval', () => { pongs += 1; });
      const busyErrors: string[] = [];
      for (const c of [conn.client, conn.subscriber]) c.on('error', (err: Error) => busyErrors.push(err.message));
      // Busy for longer than the silence timeout, answering every other client -BUSY.
      const script = "local t = redis.call('TIME'); local stop = tonumber(t[1]) * 1000000 + tonumber(t[2]) + ARGV[1] * 1000; repeat t = redis.call('TIME') until tonumber(t[1]) * 1000000 + tonumber(t[2]) >= stop; return 1";
      await raw.eval(script, { arguments: [String(silence.silenceTimeoutMs + 1500)] });
      await waitFor(() => pongs > 0, 'a PING answered after the script');
      assert.ok(busyErrors.some((m) => /BUSY/.test(m)), `PINGs were answered BUSY meanwhile (errors seen: ${busyErrors.join(' | ')})`);
      assert.deepEqual(log.events('redis_unavailable'), [], 'no outage reported');
      assert.ok(conn.isReady(), 'both connections kept');
    } finally {
      await opened?.close();
      await raw.quit().catch(() => {});
      await own.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the ping interval must be positive and the silence timeout longer, or idle connections would be dropped between pings', () => {
    assert.throws(() => openRedisConnection({ url: TEST_REDIS_URL, keyPrefix: testKeyPrefix(), logger: silentLogger, pingIntervalMs: 500, silenceTimeoutMs: 500 }), RangeError);
    assert.throws(() => openRedisConnection({ url: TEST_REDIS_URL, keyPrefix: testKeyPrefix(), logger: silentLogger, pingIntervalMs: 0 }), RangeError);
  });

  it('RFC 7009 §2.1: a token revoked on instance A is refused by instance B within 1 s through Redis alone (separate Stores, no periodic read)', async (t) => {
    const prefix = testKeyPrefix();
    const busA = createRedisRevocationBus(connect(prefix), silentLogger);
    const busB = createRedisRevocationBus(connect(prefix), silentLogger);
    await Promise.all([busA.ready, busB.ready]);
    await waitFor(() => open.every((c) => c.isReady()), 'connections ready');
    // An hour between Store reads: nothing but the Redis message can tell B.
    const options = { now: Date.now, horizonMs: revocationHorizonMs(900), syncIntervalMs: 3_600_000 };
    const a = createRevocationList({ ...options, records: createMemoryStore().revocations, bus: busA });
    const b = createRevocationList({ ...options, records: createMemoryStore().revocations, bus: busB });
    await Promise.all([a.start(), b.start()]);
    const claims = { jti: 'jti-over-redis', sub: 'alice', client_id: 'c', iat: Math.floor(Date.now() / 1000) };
    assert.equal(b.isRevoked(claims), false);
    const revokedAt = Date.now();
    await a.revokeAccessToken('jti-over-redis', Date.now() + 60_000);
    assert.equal(a.isRevoked(claims), true, 'the revoking instance refuses it at once');
    await waitFor(() => b.isRevoked(claims), 'instance B to refuse the token', { timeoutMs: 5000, intervalMs: 5 });
    const ms = Date.now() - revokedAt;
    t.diagnostic(`refused by B ${ms} ms after A revoked it`);
    assert.ok(ms < 1000, `refused after ${ms} ms`);
    await a.close();
    await b.close();
  });

  it('a revocation published while the subscriber was cut off reaches the list through a full Store read when it reconnects', async () => {
    const prefix = testKeyPrefix();
    const proxy = await cuttableProxy(TEST_REDIS_URL);
    proxies.push(proxy);
    const conn = connect(prefix, proxy.url);
    const bus = createRedisRevocationBus(conn, silentLogger);
    await bus.ready;
    await waitFor(() => conn.isReady(), 'connected');
    const shared = createMemoryStore();
    const list = createRevocationList({ records: shared.revocations, now: Date.now, horizonMs: revocationHorizonMs(900), bus, syncIntervalMs: 3_600_000 });
    await list.start();
    proxy.cut();
    await waitFor(() => !conn.isReady(), 'the outage seen');
    // Another instance revokes meanwhile: it writes the Store; its PUBLISH never reaches this one.
    await shared.revocations.put({ kind: 'grant', id: 'g-during-outage', revokedAt: Date.now(), expiresAt: Date.now() + 60_000 });
    assert.equal(list.isRevoked({ grant_id: 'g-during-outage' }), false, 'not heard, not read yet');
    proxy.restore();
    await waitFor(() => list.isRevoked({ grant_id: 'g-during-outage' }), 'the full read after the reconnect');
    await list.close();
  });

  it('Redis unreachable from the start: opening does not wait, does not throw, and publishing resolves', async () => {
    const proxy = await cuttableProxy(TEST_REDIS_URL);
    proxies.push(proxy);
    proxy.cut();
    const log = capturingLogger();
    const conn = connect(testKeyPrefix(), proxy.url, log.logger);
    const bus = createRedisRevocationBus(conn, log.logger);
    await bus.publish(event('nobody-listening'));
    await waitFor(() => log.events('redis_unavailable').length === 1, 'the outage warning');
    assert.equal(conn.isReady(), false);
  });
});
