/**
 * The revocation fan-out between two mcp-warden instances on one PostgreSQL schema and one Redis
 * (RFC 7009 §2.1: a revoked token is refused from then on, at every instance). Each instance
 * reaches Redis through a proxy the test can cut, so an outage is real to the instances while the
 * Redis server other suites use stays up.
 *
 * What is measured: the time from the revocation response on instance A to the first refusal of
 * the same (already verified, cached) token at instance B's gateway, polled every 20 ms.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as oauth from 'oauth4webapi';
import { decodeJwt } from 'jose';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { startWarden, type Warden } from '../../src/app.ts';
import { openRedisConnection, type RedisConnection } from '../../src/cluster/redis-connection.ts';
import { createRedisRevocationBus } from '../../src/cluster/revocation-bus.ts';
import type { RevocationBus, RevocationEvent } from '../../src/authorization-server/revocation.ts';
import { buildDemoConfig } from '../../src/config/demo.ts';
import { parseConfig } from '../../src/config/load.ts';
import type { Config } from '../../src/config/schema.ts';
import { silentLogger } from '../../src/log.ts';
import { clientCredentialsToken, discover, registerPublicClient } from '../helpers/oauth.ts';
import { signInHarness } from '../helpers/sign-in-browser.ts';
import { openTestPostgres, postgresUnavailable, TEST_POSTGRES_URL } from '../helpers/postgres.ts';
import { openPostgres } from '../../src/storage/postgres/database.ts';
import { createPostgresStore } from '../../src/storage/postgres/store.ts';
import { createRevocationList, revocationHorizonMs } from '../../src/authorization-server/revocation.ts';
import { redisUnavailable, testKeyPrefix, TEST_REDIS_URL } from '../helpers/redis.ts';
import { cuttableProxy } from '../helpers/tcp-proxy.ts';
import { waitFor } from '../helpers/wait-for.ts';
import { roundRobin } from '../helpers/round-robin.ts';

const PASSWORD = 'correct horse battery staple';
const AGENT_SECRET = 'agent-secret-0123456789abcdefghij';
const insecure = { [oauth.allowInsecureRequests]: true } as const;

const unavailable = (await postgresUnavailable()) ?? (await redisUnavailable());

describe('two instances on one PostgreSQL and one Redis: revocation reaches every gateway, the sign-in backoff is one', { skip: unavailable }, () => {
  let pg: Awaited<ReturnType<typeof openTestPostgres>>;
  let lb: Awaited<ReturnType<typeof roundRobin>>;
  let front: string;
  const prefix = testKeyPrefix();
  const proxies: Array<Awaited<ReturnType<typeof cuttableProxy>>> = [];
  const wardens: Warden[] = [];
  const clients: Client[] = [];
  let observer: RedisConnection;
  let bus: RevocationBus;
  const heard: RevocationEvent[] = [];

  before(async () => {
    pg = await openTestPostgres();
    lb = await roundRobin(() => wardens.map((w) => w.port));
    front = `http://127.0.0.1:${lb.port}`;
    const env = { PATH: process.env.PATH, WARDEN_DEMO_PASSWORD: PASSWORD, WARDEN_DEMO_CLIENT_SECRET: AGENT_SECRET, WARDEN_PUBLIC_URL: front, PORT: '0' };
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
          servers: demo.servers,
        });
      };
      wardens.push(await startWarden(config, { env, announce: () => {} }));
    }
    // A third party on the channel: sees what the instances publish, and publishes as an instance would.
    observer = openRedisConnection({ url: TEST_REDIS_URL, keyPrefix: prefix, logger: silentLogger });
    const observed = createRedisRevocationBus(observer, silentLogger);
    observed.subscribe((e) => heard.push(e));
    await observed.ready;
    bus = observed;
  });

  after(async () => {
    for (const c of clients) await c.close().catch(() => {});
    for (const w of wardens) await w.close();
    await observer?.close();
    for (const p of proxies) await p.close();
    lb?.server.close();
    await pg?.drop();
  });

  const [A, B] = [0, 1];

  /** A client-credentials token used once at each instance, so each gateway has it verified and cached; B's MCP client stays connected. */
  async function tokenInUseOnBoth(): Promise<{ token: string; jti: string; onB: Client }> {
    const t = await clientCredentialsToken({ issuer: front, clientSecret: AGENT_SECRET, resource: `${front}/mcp`, scope: 'notes:read' });
    let onB: Client | undefined;
    for (const w of wardens) {
      const client = new Client({ name: 'revocation-fan-out-test', version: '1.0.0' });
      await client.connect(new StreamableHTTPClientTransport(new URL(`http://127.0.0.1:${w.port}/mcp`), { authProvider: { token: async () => t.access_token } }));
      const { tools } = await client.listTools();
      assert.ok(tools.length > 0);
      clients.push(client);
      if (w === wardens[B]) onB = client;
    }
    return { token: t.access_token, jti: String(decodeJwt(t.access_token).jti), onB: onB! };
  }

  /** RFC 7009 §2.1 revocation of the access token, sent to instance A itself. */
  async function revokeOnA(token: string): Promise<void> {
    const as = { ...(await discover(front)), revocation_endpoint: `http://127.0.0.1:${wardens[A]!.port}/oauth/revoke` };
    await oauth.processRevocationResponse(await oauth.revocationRequest(as, { client_id: 'demo-agent' }, oauth.ClientSecretBasic(AGENT_SECRET), token, insecure));
  }

  /** Ms until B's gateway refuses the token on its open session (RFC 6750 §3.1: 401 invalid_token). */
  async function msUntilRefused(onB: Client, since: number): Promise<number> {
    let refused: unknown;
    await waitFor(async () => {
      try {
        await onB.listTools();
        return false;
      } catch (err) {
        refused = err;
        return true;
      }
    }, 'the instance to refuse the revoked token', { timeoutMs: 5000, intervalMs: 20 });
    assert.match(String((refused as Error).message), /401|nauthorized|invalid_token/i, 'refused as unauthorized');
    return Date.now() - since;
  }

  it('RFC 7009 §2.1: a token revoked at instance A is refused by instance B within 1 s, although B had its verification cached; the revocation went over Redis', async (t) => {
    const { token, jti, onB } = await tokenInUseOnBoth();
    const revokedAt = Date.now();
    await revokeOnA(token);
    const ms = await msUntilRefused(onB, revokedAt);
    t.diagnostic(`refused by B ${ms} ms after the revocation`);
    assert.ok(ms < 1000, `refused after ${ms} ms`);
    await waitFor(() => heard.some((e) => e.kind === 'token' && e.id === jti), 'the revocation on the Redis channel');
  });

  it('RFC 7009 §2.1: a revocation that arrives only over Redis (not yet in B\'s database) is enough for B to refuse a cached token', async (t) => {
    const { jti, onB } = await tokenInUseOnBoth();
    const sentAt = Date.now();
    // Only on the channel: the Store has no row, so without the Redis bus B would go on accepting it.
    await bus.publish({ kind: 'token', id: jti, at: sentAt, until: sentAt + 120_000 });
    const ms = await msUntilRefused(onB, sentAt);
    t.diagnostic(`refused by B ${ms} ms after the revocation`);
    assert.ok(ms < 1000, `refused after ${ms} ms`);
  });

  it('RFC 7009 §2.1: a revocation another process writes straight to PostgreSQL (its own pool, publishing on no shared bus, as the admin CLI does) is refused by both instances within 1 s', async (t) => {
    const { jti, onB } = await tokenInUseOnBoth();
    const onA = clients[clients.length - 2]!;
    const db = await openPostgres({ url: TEST_POSTGRES_URL, schema: pg.schema, maxConnections: 1 });
    try {
      const cli = createRevocationList({ records: (await createPostgresStore(db)).revocations, now: Date.now, horizonMs: revocationHorizonMs(900) });
      const before = heard.length;
      await cli.revokeAccessToken(jti, Date.now() + 60_000);
      const committedAt = Date.now();
      const ms = await msUntilRefused(onB, committedAt);
      t.diagnostic(`refused by B ${ms} ms after the other process committed it`);
      assert.ok(ms < 1000, `refused after ${ms} ms`);
      // Each instance reads what changed on its own 500 ms clock, so A may see it after B did.
      const msA = await msUntilRefused(onA, committedAt);
      t.diagnostic(`refused by A ${msA} ms after the other process committed it`);
      assert.ok(msA < 1000, `refused by A after ${msA} ms`);
      assert.equal(heard.length, before, 'nothing went over Redis: the instances read it from the database');
      await cli.close();
    } finally {
      await db.close();
    }
  });

  it('RFC 6749 §10.10: failed sign-ins spread over both instances add up to one backoff; then the right password waits at either (429)', async () => {
    const clientId = await registerPublicClient(front);
    let target = wardens[A]!;
    const h = signInHarness(() => ({ authorizationEndpoint: `http://127.0.0.1:${target.port}/oauth/authorize`, clientId, resource: `${front}/mcp` }));
    try {
      // The default backoff: 10 free failures per account. Five at each instance.
      for (let i = 0; i < 10; i++) {
        target = wardens[i % 2]!;
        assert.equal((await h.signIn('127.0.0.1', undefined, 'bob', `guess-${i}`)).status, 401);
      }
      for (const w of wardens) {
        target = w;
        // From another address: the account's backoff alone refuses it.
        const r = await h.signIn('127.0.0.2', undefined, 'bob', PASSWORD);
        assert.equal(r.status, 429, 'bob waits at every instance');
        assert.ok(Number(r.retryAfter) >= 1);
      }
      target = wardens[B]!;
      assert.equal((await h.signIn('127.0.0.3', undefined, 'alice', PASSWORD)).status, 303, 'another account signs in from another address');
    } finally {
      await h.close();
    }
  });

  it('Redis down: revocation at A still answers at once and B refuses the token through its periodic read of the database; after Redis returns, the fan-out works again without a restart', async (t) => {
    const { token, onB } = await tokenInUseOnBoth();
    const second = await tokenInUseOnBoth();
    for (const p of proxies) p.cut();
    const revokedAt = Date.now();
    await revokeOnA(token);
    const answeredIn = Date.now() - revokedAt;
    assert.ok(answeredIn < 1000, `the revocation endpoint did not wait for Redis (${answeredIn} ms)`);
    const ms = await msUntilRefused(onB, revokedAt);
    t.diagnostic(`revocation answered in ${answeredIn} ms with Redis cut; refused by B through the Store ${ms} ms after it`);
    assert.ok(ms < 1000, `refused through the Store after ${ms} ms`);

    for (const p of proxies) p.restore();
    // Recovered when a revocation published only on the channel is heard by B again.
    const sentAt = Date.now();
    await waitFor(async () => {
      await bus.publish({ kind: 'token', id: second.jti, at: sentAt, until: sentAt + 120_000 });
      try {
        await second.onB.listTools();
        return false;
      } catch {
        return true;
      }
    }, 'B to hear revocations over Redis again', { timeoutMs: 15_000, intervalMs: 100 });
  });
});
