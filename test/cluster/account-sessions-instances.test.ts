/**
 * The account page on two mcp-warden instances sharing one PostgreSQL schema and one Redis
 * (cluster.redis): a user who signs in through one instance is signed in on the other, a form
 * rendered by one is accepted by the other (CSRF keys shared), and a sign-out on one ends the
 * session on both. Each instance reaches Redis through a proxy the test can cut, so an outage is
 * real to that instance while the Redis server other suites use stays up.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createClient } from 'redis';
import { startWarden, type Warden } from '../../src/app.ts';
import { buildDemoConfig } from '../../src/config/demo.ts';
import { parseConfig } from '../../src/config/load.ts';
import type { Config } from '../../src/config/schema.ts';
import { Browser } from '../helpers/oauth.ts';
import { openTestPostgres, postgresUnavailable, TEST_POSTGRES_URL } from '../helpers/postgres.ts';
import { redisUnavailable, testKeyPrefix, TEST_REDIS_URL } from '../helpers/redis.ts';
import { cuttableProxy } from '../helpers/tcp-proxy.ts';
import { waitFor } from '../helpers/wait-for.ts';
import { captureLogs } from '../downstream/e2e-fixtures.ts';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { roundRobin } from '../helpers/round-robin.ts';

const PASSWORD = 'correct horse battery staple';

const unavailable = (await postgresUnavailable()) ?? (await redisUnavailable());

describe('account page sessions on two instances sharing Redis', { skip: unavailable }, () => {
  let pg: Awaited<ReturnType<typeof openTestPostgres>>;
  let lb: Awaited<ReturnType<typeof roundRobin>>;
  let front: string;
  let callbackTo: number | undefined;
  const prefix = testKeyPrefix();
  const proxies: Array<Awaited<ReturnType<typeof cuttableProxy>>> = [];
  const wardens: Warden[] = [];
  const redis = createClient({ url: TEST_REDIS_URL });
  const [A, B] = [0, 1];
  const logsOfB = captureLogs();
  const at = (i: number, path: string) => `http://127.0.0.1:${wardens[i]!.port}${path}`;

  before(async () => {
    pg = await openTestPostgres();
    // The public URL's balancer: round-robin, except that the account page's callback goes to
    // `callbackTo` (the test picks which instance finishes a sign-in).
    lb = await roundRobin(() => wardens.map((w) => w.port), (req) => (req.url?.startsWith('/account/callback') ? callbackTo : undefined));
    front = `http://127.0.0.1:${lb.port}`;
    const env = { PATH: process.env.PATH, WARDEN_DEMO_PASSWORD: PASSWORD, WARDEN_PUBLIC_URL: front, PORT: '0', WARDEN_SECRETS_KEY: randomBytes(32).toString('base64') };
    for (let i = 0; i < 2; i++) {
      const proxy = await cuttableProxy(TEST_REDIS_URL);
      proxies.push(proxy);
      const config = (port: number): Config => {
        const demo = buildDemoConfig(env);
        return parseConfig({
          ...JSON.parse(JSON.stringify({ ...demo, servers: undefined })),
          listen: { host: '127.0.0.1', port },
          publicUrl: front,
          storage: { postgres: { url: TEST_POSTGRES_URL, schema: pg.schema, maxConnections: 4 } },
          cluster: { redis: { url: proxy.url, keyPrefix: prefix }, secret: 'cluster-secret-0123456789abcdefghijklmnop' },
          // A server whose users store their own credential: the account page runs.
          servers: demo.servers.map((s, n) => (n === 0 ? { ...s, downstream: { perUserSecret: { env: 'NOTES_API_TOKEN' } } } : s)),
        });
      };
      // One after the other, as a rolling deployment starts them: the second finds the first's settings.
      wardens.push(await startWarden(config, { env, announce: () => {}, ...(i === B ? { logger: logsOfB.logger } : {}) }));
    }
    await redis.connect();
    await waitFor(async () => (await fetch(at(B, '/account'), { redirect: 'manual' })).status === 303, 'both instances to reach Redis');
  });

  after(async () => {
    for (const w of wardens) await w.close();
    for (const p of proxies) await p.close();
    if (redis.isOpen) redis.destroy();
    lb?.server.close();
    await pg?.drop();
  });

  /** Signs in to the account page as alice: started on instance `start`, the callback handled by `finish`. */
  async function signIn(start: number, finish: number): Promise<Browser> {
    const browser = new Browser();
    const first = await browser.fetch(at(start, '/account'));
    assert.equal(first.status, 303, 'no session yet: sign-in starts');
    callbackTo = wardens[finish]!.port;
    let step = await browser.follow(first.headers.get('location')!, front);
    const html = await step.response.text();
    assert.match(html, /name="password"/, 'the authorization server asks for the password');
    const login = await browser.submit(step.url, html, { username: 'alice', password: PASSWORD });
    step = await browser.follow(new URL(login.headers.get('location')!, step.url).href, front);
    assert.equal(step.response.status, 200, `the account page after sign-in (${step.url})`);
    assert.match(await step.response.text(), /Sign out/);
    return browser;
  }

  /** The account session cookie the browser holds (read from the Cookie header it sends), or undefined. */
  async function sessionCookieOf(browser: Browser): Promise<string | undefined> {
    let header = '';
    const sink = createServer((req, res) => { header = req.headers.cookie ?? ''; res.end(); });
    await new Promise<void>((resolve) => sink.listen(0, '127.0.0.1', () => resolve()));
    try {
      await browser.fetch(`http://127.0.0.1:${(sink.address() as AddressInfo).port}/account`);
    } finally {
      sink.close();
    }
    return /(?:^|; )warden-account=([^;]*)/.exec(header)?.[1];
  }

  const csrfOf = (html: string) => {
    const token = /name="csrf" value="([^"]+)"/.exec(html)?.[1];
    assert.ok(token, 'the page carries a CSRF token');
    return token;
  };

  const post = (browser: Browser, url: string, body: Record<string, string>) => browser.fetch(url, {
    method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(body).toString(),
  });

  it('OWASP session management: a sign-in started on A finishes on B, and the session, its CSRF token and its flash work on either', async () => {
    const browser = await signIn(A, B);
    // Rendered by A, sent to B: the CSRF key is the deployment's, not one process's.
    const form = await (await browser.fetch(at(A, '/account/secrets/notes'))).text();
    const saved = await post(browser, at(B, '/account/secrets/notes'), { csrf: csrfOf(form), secret: `tok_${randomBytes(8).toString('hex')}` });
    assert.equal(saved.status, 303, 'B accepts the form A rendered');
    // The flash B kept is shown once, by A.
    const overview = await (await browser.fetch(at(A, '/account'))).text();
    assert.match(overview, /Your credential for notes was saved/);
    assert.doesNotMatch(await (await browser.fetch(at(B, '/account'))).text(), /was saved/, 'a flash is shown once, whichever instance shows it');
  });

  it('OWASP session management: Redis holds a SHA-256 of the session id, never the cookie value, expiring within the idle timeout', async () => {
    const id = await sessionCookieOf(await signIn(B, A));
    assert.ok(id && /^[A-Za-z0-9_-]{43}$/.test(id), 'the browser holds a session id');
    const keys = await redis.keys(`${prefix}account-session:*`);
    assert.ok(keys.length >= 1);
    for (const k of keys) assert.ok(!k.includes(id), 'no key carries the raw id');
    const key = `${prefix}account-session:${createHash('sha256').update(id).digest('base64url')}`;
    assert.ok(keys.includes(key), 'the session is kept under the hash of its id');
    const values = Object.values(await redis.hGetAll(key));
    assert.ok(!values.some((v) => v.includes(id)), 'no field carries the raw id');
    const ttl = await redis.pTTL(key);
    const idleMs = wardens[A]!.config.account.idleTimeoutMinutes * 60_000;
    assert.ok(ttl > 0 && ttl <= idleMs, `the key expires with the idle timeout (${ttl} ms)`);
  });

  it('OWASP session management: write access to Redis alone cannot mint a session: a record without a valid MAC, or copied to another id, is refused', async () => {
    const id = await sessionCookieOf(await signIn(A, B));
    const keyOf = (sid: string) => `${prefix}account-session:${createHash('sha256').update(sid).digest('base64url')}`;
    const genuine = await redis.hGetAll(keyOf(id!));
    assert.ok(genuine.m, 'an instance writes a MAC with the record');
    const forged = randomBytes(32).toString('base64url');
    const copied = randomBytes(32).toString('base64url');
    const now = String(Date.now());
    await redis.hSet(keyOf(forged), { s: 'alice', c: now, l: now, m: 'not-a-mac' });
    await redis.hSet(keyOf(copied), genuine);
    for (const sid of [forged, copied]) {
      await redis.pExpire(keyOf(sid), 60_000);
      for (const i of [A, B]) {
        const r = await fetch(at(i, '/account'), { headers: { cookie: `warden-account=${sid}` }, redirect: 'manual' });
        assert.equal(r.status, 303, `instance ${i} sends ${sid === forged ? 'a forged' : 'a copied'} session to sign in`);
      }
    }
    const real = await fetch(at(A, '/account'), { headers: { cookie: `warden-account=${id}` }, redirect: 'manual' });
    assert.equal(real.status, 200, 'the genuine session still works');
  });

  it('OWASP session management: a record whose creation time is not a number is no session (sign in again), not an outage (503)', async () => {
    const keyOf = (sid: string) => `${prefix}account-session:${createHash('sha256').update(sid).digest('base64url')}`;
    const sid = randomBytes(32).toString('base64url');
    await redis.hSet(keyOf(sid), { s: 'alice', c: 'yesterday', l: String(Date.now()), m: 'not-a-mac' });
    await redis.pExpire(keyOf(sid), 60_000);
    for (const i of [A, B]) {
      const r = await fetch(at(i, '/account'), { headers: { cookie: `warden-account=${sid}` }, redirect: 'manual' });
      assert.equal(r.status, 303, `instance ${i} sends it to sign in`);
    }
  });

  it('OWASP session management: a sign-out on A ends the session on B too', async () => {
    const browser = await signIn(A, A);
    const page = await (await browser.fetch(at(B, '/account'))).text();
    assert.match(page, /Sign out/, 'B knows the session A created');
    const out = await post(browser, at(A, '/account/sign-out'), { csrf: csrfOf(page) });
    assert.equal(out.status, 303);
    assert.equal(new URL(out.headers.get('location')!, front).pathname, '/account/signed-out');
    assert.equal(await sessionCookieOf(browser), undefined, 'the browser was told to drop the cookie');
    const again = await browser.fetch(at(B, '/account'));
    assert.equal(again.status, 303, 'B sends the browser to sign in');
  });

  it('OWASP session management: a session cookie replayed after sign-out is refused by every instance', async () => {
    const cookie = `warden-account=${await sessionCookieOf(await signIn(B, B))}`;
    const page = await (await fetch(at(A, '/account'), { headers: { cookie }, redirect: 'manual' })).text();
    const out = await fetch(at(B, '/account/sign-out'), {
      method: 'POST', redirect: 'manual', headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ csrf: csrfOf(page) }).toString(),
    });
    assert.equal(out.status, 303);
    for (const i of [A, B]) {
      const replay = await fetch(at(i, '/account'), { headers: { cookie }, redirect: 'manual' });
      assert.equal(replay.status, 303, `instance ${i} sends the replayed cookie to sign in`);
      assert.match(replay.headers.get('location')!, /\/oauth\/authorize\?/);
    }
  });

  it('Redis down at one instance: its account page answers 503 (never a stale session), and works again when Redis is back, without a restart', async () => {
    const browser = await signIn(A, A);
    proxies[B]!.cut();
    try {
      await waitFor(async () => (await browser.fetch(at(B, '/account'))).status === 503, 'B to answer 503 while it cannot reach Redis');
      const refused = await browser.fetch(at(B, '/account'));
      assert.equal(refused.status, 503);
      assert.match(await refused.text(), /Try again in a minute/);
      assert.equal((await browser.fetch(at(A, '/account'))).status, 200, 'A, still connected, serves the session');
    } finally {
      proxies[B]!.restore();
    }
    await waitFor(async () => (await browser.fetch(at(B, '/account'))).status === 200, 'B to serve the session again once Redis is back', { timeoutMs: 15_000, intervalMs: 100 });
    const events = logsOfB.lines().map((l) => l.event);
    assert.equal(events.filter((e) => e === 'account_sessions_unavailable').length, 1, 'one warning for the outage, however many requests were refused');
    assert.equal(events.filter((e) => e === 'account_sessions_available').length, 1, 'one line when Redis answers again');
    assert.equal(events.filter((e) => e === 'account_error').length, 0, 'refusals are not logged one by one');
  });
});
