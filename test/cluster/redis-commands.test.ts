/**
 * Bounded Redis commands (src/cluster/redis-connection.ts `command`), against real Redis servers:
 * what a caller on a request path (the session directory, the shared rate limits and sign-in
 * backoff, the account page's sessions, the revocation and key-notice fan-out) meets when Redis
 * stops answering. Each command has its own limit; once one has been given up unanswered, later
 * ones with no longer a limit are not waited for, until Redis answers again.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient } from 'redis';
import { MAX_QUEUED_COMMANDS, openRedisConnection, RedisUnavailable, type RedisConnection } from '../../src/cluster/redis-connection.ts';
import { silentLogger } from '../../src/log.ts';
import { startOwnRedis } from '../helpers/cluster.ts';
import { redisUnavailable, testKeyPrefix, TEST_REDIS_URL } from '../helpers/redis.ts';
import { cuttableProxy, type CuttableProxy } from '../helpers/tcp-proxy.ts';
import { waitFor } from '../helpers/wait-for.ts';

/** The limit the session directory, the rate limits and the backoff give each command. */
const LIMIT_MS = 250;
/** No PING answered during a test: only the commands' own answers count. */
const NO_PINGS = { pingIntervalMs: 60_000, silenceTimeoutMs: 120_000 };

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

/** Blocks the server `url` (every client of it) for `ms` with a script; resolves when it has ended. */
function busyFor(raw: ReturnType<typeof createClient>, ms: number): Promise<unknown> {
  const script = "local t = redis.call('TIME'); local stop = tonumber(t[1]) * 1000000 + tonumber(t[2]) + ARGV[1] * 1000; repeat t = redis.call('TIME') until tonumber(t[1]) * 1000000 + tonumber(t[2]) >= stop; return 1";
  return raw.eval(script, { arguments: [String(ms)] });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('bounded Redis commands: a Redis that stops answering is waited for once per limit, not once per command', { skip: await redisUnavailable() }, () => {
  const open: RedisConnection[] = [];
  const proxies: CuttableProxy[] = [];
  after(async () => {
    for (const c of open) await c.close();
    for (const p of proxies) await p.close();
  });

  it('frozen: the first command fails at its limit, the next ones at once; once a new connection answers, commands run again', async () => {
    const proxy = await cuttableProxy(TEST_REDIS_URL);
    proxies.push(proxy);
    // PINGs a second apart: a new connection is usable before its first PING is answered.
    const conn = openRedisConnection({ url: proxy.url, keyPrefix: testKeyPrefix(), logger: silentLogger, maxBackoffMs: 200, pingIntervalMs: 1000, silenceTimeoutMs: 2000 });
    open.push(conn);
    await waitFor(() => conn.isReady(), 'connected');
    const key = conn.key('bounded');
    assert.equal(await conn.command(() => conn.client.set(key, 'v', { expiration: { type: 'PX', value: 60_000 } }), LIMIT_MS), 'OK');

    proxy.freeze();
    assert.equal(await refusal(conn.command(() => conn.client.get(key), LIMIT_MS)), 'no-answer', 'the first command waits out its limit');
    const kinds: string[] = [];
    for (let i = 0; i < 20; i++) kinds.push(await refusal(conn.command(() => conn.client.get(key), LIMIT_MS)));
    assert.deepEqual(new Set(kinds), new Set(['still-no-answer']), 'every later command is not waited for');

    // The watchdog drops the silent connection (silenceTimeoutMs), and the new one's handshake
    // is Redis answering: the next command runs. (Counted by its event: the drop and the new
    // handshake may both fall between two polls.)
    let readies = 0;
    conn.client.on('ready', () => { readies += 1; });
    proxy.restore();
    await waitFor(() => readies > 0, 'a new connection', { timeoutMs: 15_000 });
    assert.equal(await conn.command(() => conn.client.get(key), LIMIT_MS), 'v');
  });

  it(`at most ${MAX_QUEUED_COMMANDS} commands wait for a frozen Redis on one connection: the next fails at once`, async () => {
    const proxy = await cuttableProxy(TEST_REDIS_URL);
    proxies.push(proxy);
    const conn = openRedisConnection({ url: proxy.url, keyPrefix: testKeyPrefix(), logger: silentLogger, maxBackoffMs: 200, ...NO_PINGS });
    open.push(conn);
    await waitFor(() => conn.isReady(), 'connected');
    proxy.freeze();
    const key = conn.key('queue');
    // All sent at once, before any is given up: every one waits.
    const waiting = Array.from({ length: MAX_QUEUED_COMMANDS }, () => refusal(conn.command(() => conn.client.get(key), 1000)));
    await assert.rejects(conn.command(() => conn.client.get(key), 1000), (err: Error) => !(err instanceof RedisUnavailable) && /queue is full/.test(err.message));
    assert.deepEqual(new Set(await Promise.all(waiting)), new Set(['no-answer']));
  });

  describe('a Redis of the test\'s own, kept busy by a script (it blocks every client of its server)', () => {
    let dir: string;
    let own: Awaited<ReturnType<typeof startOwnRedis>>;
    let raw: ReturnType<typeof createClient>;
    const opened: RedisConnection[] = [];
    const connect = async (timing: { pingIntervalMs: number; silenceTimeoutMs: number }) => {
      dir ??= mkdtempSync(join(tmpdir(), 'warden-slow-redis-'));
      if (!own) {
        own = await startOwnRedis(dir);
        raw = createClient({ url: own.url });
        await raw.connect();
      }
      const c = openRedisConnection({ url: own.url, keyPrefix: testKeyPrefix(), logger: silentLogger, maxBackoffMs: 200, ...timing });
      opened.push(c);
      await waitFor(() => c.isReady(), 'connected');
      return c;
    };
    after(async () => {
      for (const c of opened) await c.close();
      await raw?.quit().catch(() => {});
      await own?.stop();
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    it('only slow: commands are not waited for while it is busy, the late answer of the one given up ends that, on the same connection, and what was sent meanwhile was written', async () => {
      const c = await connect(NO_PINGS);
      let readies = 0;
      c.client.on('ready', () => { readies += 1; });
      const key = c.key('slow');
      await c.command(() => c.client.set(key, 'v'), LIMIT_MS);

      const busy = busyFor(raw, 1500);
      await sleep(200);
      let late: Promise<unknown> | undefined;
      assert.equal(await refusal(c.command(() => (late = c.client.get(key)), LIMIT_MS)), 'no-answer');
      assert.equal(await refusal(c.command(() => c.client.set(key, 'written while busy'), LIMIT_MS)), 'still-no-answer');
      await busy;
      // The given-up command's own answer: once it is in, the connection is waited for again.
      await late;
      assert.equal(await c.command(() => c.client.get(key), LIMIT_MS), 'written while busy', 'the command not waited for was still sent');
      assert.equal(readies, 0, 'the same connection throughout: a slow Redis is not an outage');
    });

    it('a command with a longer limit than the one given up still waits it out, and gets its answer', async () => {
      const c = await connect(NO_PINGS);
      const key = c.key('longer');
      await c.command(() => c.client.set(key, 'v'), LIMIT_MS);
      const busy = busyFor(raw, 800);
      await sleep(100);
      assert.equal(await refusal(c.command(() => c.client.get(key), LIMIT_MS)), 'no-answer');
      assert.equal(await refusal(c.command(() => c.client.get(key), LIMIT_MS)), 'still-no-answer', 'the same limit is not waited for');
      // As the account page's 1 s, or a publish's: the script ends well within it.
      assert.equal(await c.command(() => c.client.get(key), 3000), 'v');
      await busy;
    });

    it('an error reply is an answer: a late one ends the wait-free state, and Redis\' own error reaches the caller', async () => {
      const c = await connect(NO_PINGS);
      const key = c.key('wrong-type');
      await c.command(() => c.client.set(key, 'text'), LIMIT_MS);
      await assert.rejects(c.command(() => c.client.lPush(key, 'x'), LIMIT_MS), (err: Error) => !(err instanceof RedisUnavailable) && /WRONGTYPE/.test(err.message));

      const busy = busyFor(raw, 1000);
      await sleep(100);
      let late: Promise<unknown> | undefined;
      assert.equal(await refusal(c.command(() => (late = c.client.lPush(key, 'x')), LIMIT_MS)), 'no-answer');
      await busy;
      await assert.rejects(late!, /WRONGTYPE/);
      assert.equal(await c.command(() => c.client.get(key), LIMIT_MS), 'text', 'waited for again after the late error reply');
    });
  });

  /** A connection to the shared test Redis, ready; `timing` defaults to no PINGs during a test. */
  const ready = async (timing: { pingIntervalMs: number; silenceTimeoutMs: number } = NO_PINGS) => {
    const conn = openRedisConnection({ url: TEST_REDIS_URL, keyPrefix: testKeyPrefix(), logger: silentLogger, maxBackoffMs: 200, ...timing });
    open.push(conn);
    await waitFor(() => conn.isReady(), 'connected');
    return conn;
  };
  /** A command Redis never answers, as far as `command` can tell: its promise never settles. */
  const unanswered = () => new Promise<never>(() => {});

  for (const when of ['after', 'before'] as const) {
    it(`an event loop that stalls past a command's limit ${when} the command is written does not give up an answer that arrived meanwhile`, async () => {
      const conn = await ready();
      const key = conn.key('stall');
      await conn.command(() => conn.client.set(key, 'v', { expiration: { type: 'PX', value: 60_000 } }), LIMIT_MS);
      // Redis takes 20 ms over it, as one a network away would: an answer that cannot have
      // arrived by the turn of the event loop after the command is written.
      const slowGet = "local t = redis.call('TIME'); local stop = tonumber(t[1]) * 1000000 + tonumber(t[2]) + 20000; repeat t = redis.call('TIME') until tonumber(t[1]) * 1000000 + tonumber(t[2]) >= stop; return redis.call('GET', KEYS[1])";
      const pending = conn.command(() => conn.client.eval(slowGet, { keys: [key] }), LIMIT_MS);
      // node-redis writes its commands in a setImmediate: once that has run, the command is out.
      if (when === 'after') await new Promise((resolve) => setImmediate(resolve));
      // Busy on this thread past the limit (as a long synchronous task would). After the write,
      // Redis answers meanwhile and the timer comes due before the answer is read; before it,
      // the command is written only once the thread is free again, and its limit starts then.
      const until = performance.now() + 2 * LIMIT_MS;
      while (performance.now() < until);
      assert.equal(await pending, 'v');
      assert.equal(await conn.command(() => conn.client.get(key), LIMIT_MS), 'v');
    });
  }

  it('a command with a shorter limit than the one given up is not waited for either; one with a longer limit is, and its answer ends the state', async () => {
    const conn = await ready();
    const key = conn.key('limits');
    await conn.command(() => conn.client.set(key, 'v', { expiration: { type: 'PX', value: 60_000 } }), LIMIT_MS);
    assert.equal(await refusal(conn.command(unanswered, LIMIT_MS)), 'no-answer');
    assert.equal(await refusal(conn.command(() => conn.client.get(key), 100)), 'still-no-answer');
    assert.equal(await conn.command(() => conn.client.get(key), 4 * LIMIT_MS), 'v');
    assert.equal(await conn.command(() => conn.client.get(key), LIMIT_MS), 'v');
  });

  it('a longer limit given up later raises the bar; a shorter one given up after it does not lower it', async () => {
    const conn = await ready();
    const key = conn.key('bar');
    await conn.command(() => conn.client.set(key, 'v', { expiration: { type: 'PX', value: 60_000 } }), LIMIT_MS);
    // Both waiting, nothing given up yet: the longer one (2 s) gives up first, then the shorter (1.5 s).
    const longer = conn.command(unanswered, 2000);
    await sleep(1000);
    const shorter = conn.command(unanswered, 1500);
    assert.equal(await refusal(longer), 'no-answer');
    assert.equal(await refusal(shorter), 'no-answer');
    assert.equal(await refusal(conn.command(() => conn.client.get(key), 2000)), 'still-no-answer', 'a 2 s limit is not waited for');
  });

  it('the answer to a command not waited for ends the state', async () => {
    const conn = await ready();
    const key = conn.key('not-waited');
    await conn.command(() => conn.client.set(key, 'v', { expiration: { type: 'PX', value: 60_000 } }), LIMIT_MS);
    assert.equal(await refusal(conn.command(unanswered, LIMIT_MS)), 'no-answer');
    let sent: Promise<unknown> | undefined;
    assert.equal(await refusal(conn.command(() => (sent = conn.client.get(key)), LIMIT_MS)), 'still-no-answer');
    assert.equal(await sent, 'v', 'it was sent, and answered');
    assert.equal(await conn.command(() => conn.client.get(key), LIMIT_MS), 'v');
  });

  it('an answered PING ends the state', async () => {
    const conn = await ready({ pingIntervalMs: 200, silenceTimeoutMs: 10_000 });
    const key = conn.key('ping');
    await conn.command(() => conn.client.set(key, 'v', { expiration: { type: 'PX', value: 60_000 } }), LIMIT_MS);
    assert.equal(await refusal(conn.command(unanswered, LIMIT_MS)), 'no-answer');
    await new Promise((resolve) => conn.client.once('ping-interval', resolve));
    assert.equal(await conn.command(() => conn.client.get(key), LIMIT_MS), 'v');
  });

  it('not connected: refused at once, as not-connected, and nothing is sent', async () => {
    const proxy = await cuttableProxy(TEST_REDIS_URL);
    proxies.push(proxy);
    proxy.cut();
    const conn = openRedisConnection({ url: proxy.url, keyPrefix: testKeyPrefix(), logger: silentLogger, maxBackoffMs: 200 });
    open.push(conn);
    let sent = false;
    assert.equal(await refusal(conn.command(() => { sent = true; return conn.client.get('k'); }, LIMIT_MS)), 'not-connected');
    assert.equal(sent, false);
  });
});
