/**
 * Outages of the shared services under load, three instances behind nginx, no instance restarted:
 *
 * - Redis (a redis-server of this test's own, killed with SIGKILL for 10 s, then started again
 *   empty on the same port): sign-ins, refreshes, registrations and tool calls go on, each instance
 *   logs one `redis_unavailable` and one `redis_recovered`, resubscribes to the revocation channel
 *   and counts the registration limit in Redis again (docs/deployment.md, "Redis outages").
 * - PostgreSQL (every instance reaches it through a TCP proxy this test cuts for 5 s, dropping each
 *   connection and refusing new ones, as a database restart looks from the instances; the server
 *   the other test files share is not touched): requests fail while it is away — answered, never
 *   left hanging — and once it is back every kind of request succeeds again on every instance,
 *   with the same processes.
 *
 * Counts per phase are printed as test diagnostics.
 */
import { after, before, describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, fetch as undiciFetch } from 'undici';
import { createClient } from 'redis';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { startHttpUpstream, type HttpUpstreamFixture } from '../gateway/fixtures/http-upstream.ts';
import { CLUSTER_PASSWORD, cuttableTcpProxy, startCluster, startOwnRedis, type Cluster, type OwnRedis } from '../helpers/cluster.ts';
import { nginxUnavailable } from '../helpers/nginx.ts';
import { obtainTokens, refreshTokens, registerPublicClient } from '../helpers/oauth.ts';
import { postgresUnavailable, TEST_POSTGRES_URL } from '../helpers/postgres.ts';
import { redisUnavailable } from '../helpers/redis.ts';
import { waitFor } from '../helpers/wait-for.ts';

const skip = nginxUnavailable() ?? await postgresUnavailable() ?? await redisUnavailable();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
type Op = 'tools/call' | 'sign-in' | 'refresh' | 'registration';
interface Outcome { op: Op; start: number; end: number; ok: boolean }

/**
 * Mixed load until `stop()` says so: one tool-call session per instance (reopened on failure),
 * sign-ins with a registered client, a refresh chain and registrations, all but the tool calls
 * through nginx. Every request's outcome is recorded with its start and end time.
 */
function mixedLoad(cluster: Cluster, o: { accessToken: string; clientId: string; refreshToken: string; addressBase: number }) {
  const outcomes: Outcome[] = [];
  let stopped = false;
  const timed = async (op: Op, f: () => Promise<unknown>) => {
    const start = Date.now();
    try {
      await f();
      outcomes.push({ op, start, end: Date.now(), ok: true });
      return true;
    } catch {
      outcomes.push({ op, start, end: Date.now(), ok: false });
      await sleep(100);
      return false;
    }
  };
  const resource = `${cluster.front}/mcp`;
  const caller = async (i: number) => {
    while (!stopped) {
      const client = new Client({ name: `outage-${i}`, version: '1.0.0' });
      if (!await timed('tools/call', () => client.connect(new StreamableHTTPClientTransport(new URL(`${cluster.instances[i]!.url}/mcp`), { authProvider: { token: async () => o.accessToken } })))) continue;
      while (!stopped && await timed('tools/call', () => client.callTool({ name: 'echo', arguments: { message: 'x' } })));
      await client.close().catch(() => {});
    }
  };
  const signer = async () => {
    while (!stopped) await timed('sign-in', () => obtainTokens({ issuer: cluster.front, resource, scope: 'notes:read', username: 'alice', password: CLUSTER_PASSWORD, clientId: o.clientId }));
  };
  let refreshToken = o.refreshToken;
  const refresher = async () => {
    while (!stopped) {
      await timed('refresh', async () => {
        refreshToken = (await refreshTokens({ issuer: cluster.front, clientId: o.clientId, refreshToken, resource })).refresh_token!;
      });
    }
  };
  const agents: Agent[] = [];
  const registrar = async () => {
    for (let n = 0; !stopped; n++) {
      // A fresh loopback source address every 15 registrations: under the limit of 20 per minute.
      if (n % 15 === 0) agents.push(new Agent({ localAddress: `127.0.${o.addressBase}.${1 + n / 15}` }));
      await timed('registration', async () => {
        const r = await undiciFetch(`${cluster.front}/oauth/register`, {
          method: 'POST', dispatcher: agents.at(-1)!, headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ client_name: 'outage load', redirect_uris: ['http://127.0.0.1/callback'], token_endpoint_auth_method: 'none', grant_types: ['authorization_code'], response_types: ['code'] }),
        });
        await r.arrayBuffer();
        if (r.status !== 201) throw new Error(`HTTP ${r.status}`);
      });
    }
  };
  const running = [...cluster.instances.map((_, i) => caller(i)), signer(), refresher(), registrar()];
  return {
    outcomes,
    async stop() {
      stopped = true;
      await Promise.all(running);
      for (const a of agents) await a.close();
    },
  };
}

/** Per operation: requests that started in [from, to), and how many of them failed. */
function tally(outcomes: Outcome[], from: number, to: number): Map<Op, { total: number; failed: number; maxMs: number }> {
  const t = new Map<Op, { total: number; failed: number; maxMs: number }>();
  for (const x of outcomes) {
    if (x.start < from || x.start >= to) continue;
    const e = t.get(x.op) ?? { total: 0, failed: 0, maxMs: 0 };
    e.total++;
    if (!x.ok) e.failed++;
    e.maxMs = Math.max(e.maxMs, x.end - x.start);
    t.set(x.op, e);
  }
  return t;
}

function describeTally(t: Map<Op, { total: number; failed: number; maxMs: number }>): string {
  return [...t].map(([op, e]) => `${op} ${e.total} (failed ${e.failed}, slowest ${e.maxMs} ms)`).join(', ');
}

describe('Redis down for 10 s under load, then back: no errors, recovery without restarting mcp-warden', { skip }, () => {
  let upstream: HttpUpstreamFixture;
  let redisDir: string;
  let redis: OwnRedis;
  let cluster: Cluster;

  before(async () => {
    upstream = await startHttpUpstream();
    redisDir = mkdtempSync(join(tmpdir(), 'warden-own-redis-'));
    redis = await startOwnRedis(redisDir);
    cluster = await startCluster({ upstreamUrl: upstream.url, redisUrl: redis.url, dirPrefix: 'warden-fault-redis-', extra: { trustProxy: { hops: 1 } } });
  });
  after(async () => {
    await cluster?.stop();
    await redis?.stop();
    await upstream?.close();
    if (redisDir) rmSync(redisDir, { recursive: true, force: true });
  });

  it('docs/deployment.md "Redis outages": requests keep succeeding while Redis is gone; each instance logs the outage once, resubscribes and shares the registration limit again', async (t: TestContext) => {
    const resource = `${cluster.front}/mcp`;
    const clientId = await registerPublicClient(cluster.front);
    const tokens = await obtainTokens({ issuer: cluster.front, resource, scope: 'notes:read', username: 'alice', password: CLUSTER_PASSWORD, clientId });
    const pids = cluster.instances.map((i) => i.child.pid);
    const load = mixedLoad(cluster, { accessToken: tokens.access_token, clientId, refreshToken: tokens.refresh_token!, addressBase: 40 });
    const t0 = Date.now();
    await sleep(2000);
    const down = Date.now();
    await redis.kill();
    await sleep(10_000);
    const up = Date.now();
    await redis.start();
    // Reconnection backs off to at most 5 s (docs/deployment.md): wait for every instance to say so.
    await waitFor(() => cluster.instances.every((i) => /redis_recovered/.test(i.log())), 'redis_recovered from every instance', { timeoutMs: 30_000 });
    const recovered = Date.now();
    await sleep(2000);
    await load.stop();
    const end = Date.now();

    // Before: requests answered before the outage began (those in flight then count in it).
    const before = tally(load.outcomes.filter((x) => x.end < down), t0, down);
    const during = tally(load.outcomes.filter((x) => x.end >= down || x.start >= down), t0, up);
    const afterUp = tally(load.outcomes, up, end);
    t.diagnostic(`before: ${describeTally(before)}`);
    t.diagnostic(`Redis down ${up - down} ms (requests in flight at the kill or started during it): ${describeTally(during)}`);
    t.diagnostic(`after (every instance recovered ${recovered - up} ms after Redis was back): ${describeTally(afterUp)}`);
    for (const [op, e] of during) assert.equal(e.failed, 0, `${op} failed while Redis was down`);
    for (const [op, e] of afterUp) assert.equal(e.failed, 0, `${op} failed after Redis came back`);
    for (const op of ['tools/call', 'sign-in', 'refresh', 'registration'] as const) assert.ok((during.get(op)?.total ?? 0) > 0, `${op} ran during the outage`);

    // One warning per outage per instance, however many reconnection attempts.
    for (const i of cluster.instances) {
      assert.equal(i.log().match(/"event":"redis_unavailable"/g)?.length, 1, `instance ${i.index}: one redis_unavailable`);
      assert.ok(/"event":"redis_recovered"/.test(i.log()), `instance ${i.index}: redis_recovered`);
    }
    assert.deepEqual(cluster.instances.map((i) => i.child.pid), pids, 'no instance was restarted');

    // Back in Redis: every instance's subscriber listens on the revocation channel again, and the
    // registration limit is counted there again.
    const client = createClient({ url: redis.url });
    await client.connect();
    try {
      const subscribers = await client.sendCommand(['PUBSUB', 'NUMSUB', `${cluster.keyPrefix}revocations`]) as [string, number];
      assert.equal(Number(subscribers[1]), cluster.instances.length, 'each instance subscribed again');
      await registerPublicClient(cluster.front);
      const keys = await client.keys(`${cluster.keyPrefix}rate:registration:*`);
      assert.ok(keys.length > 0, 'the registration limit is counted in Redis again');
    } finally {
      await client.quit();
    }
  });
});

describe('PostgreSQL cut for 5 s under load (a restart as the instances see it), then back: bounded errors, recovery without restarting mcp-warden', { skip }, () => {
  let upstream: HttpUpstreamFixture;
  let proxy: Awaited<ReturnType<typeof cuttableTcpProxy>>;
  let cluster: Cluster;

  before(async () => {
    upstream = await startHttpUpstream();
    const target = new URL(TEST_POSTGRES_URL);
    proxy = await cuttableTcpProxy({ host: target.hostname, port: Number(target.port || 5432) });
    const viaProxy = new URL(TEST_POSTGRES_URL);
    viaProxy.hostname = '127.0.0.1';
    viaProxy.port = String(proxy.port);
    cluster = await startCluster({ upstreamUrl: upstream.url, postgresUrl: viaProxy.href, dirPrefix: 'warden-fault-postgres-', extra: { trustProxy: { hops: 1 } } });
  });
  after(async () => {
    await cluster?.stop();
    await proxy?.close();
    await upstream?.close();
  });

  it('OAuth 2.1 and MCP requests fail while PostgreSQL is unreachable, are answered rather than left hanging, and all succeed again once it is back', async (t: TestContext) => {
    const resource = `${cluster.front}/mcp`;
    const clientId = await registerPublicClient(cluster.front);
    const tokens = await obtainTokens({ issuer: cluster.front, resource, scope: 'notes:read', username: 'alice', password: CLUSTER_PASSWORD, clientId });
    const pids = cluster.instances.map((i) => i.child.pid);
    const load = mixedLoad(cluster, { accessToken: tokens.access_token, clientId, refreshToken: tokens.refresh_token!, addressBase: 50 });
    const t0 = Date.now();
    await sleep(2000);
    const cut = Date.now();
    proxy.cut();
    await sleep(5000);
    const restored = Date.now();
    proxy.restore();
    // Recovery: from some point after the restore, every kind of request succeeds, on every instance.
    let recoveredAt = 0;
    await waitFor(() => {
      const since = load.outcomes.filter((x) => x.start >= restored);
      const lastFailure = Math.max(restored, ...since.filter((x) => !x.ok).map((x) => x.end));
      const okAfter = since.filter((x) => x.ok && x.start > lastFailure);
      const ops = new Set(okAfter.map((x) => x.op));
      if (ops.size === 4 && okAfter.length >= 20) recoveredAt = lastFailure;
      return recoveredAt > 0;
    }, 'every kind of request succeeding after PostgreSQL is back', { timeoutMs: 60_000 });
    await sleep(2000);
    await load.stop();
    const end = Date.now();

    const during = tally(load.outcomes.filter((x) => x.end >= cut), t0, restored);
    const afterRecovery = tally(load.outcomes, recoveredAt + 1, end);
    t.diagnostic(`before (answered before the cut): ${describeTally(tally(load.outcomes.filter((x) => x.end < cut), t0, cut))}`);
    t.diagnostic(`PostgreSQL cut ${restored - cut} ms (requests in flight at the cut or started during it): ${describeTally(during)}`);
    t.diagnostic(`recovered ${recoveredAt - restored} ms after the restore (last failure); since then: ${describeTally(afterRecovery)}`);
    // Bounded: every request started during the cut got its answer (the load stopped only once
    // each had); none was still waiting when the load ended.
    assert.ok(load.outcomes.every((x) => x.end >= x.start));
    for (const [op, e] of afterRecovery) assert.equal(e.failed, 0, `${op} failed after recovery`);
    assert.deepEqual(cluster.instances.map((i) => i.child.pid), pids, 'no instance was restarted');
    assert.ok(cluster.instances.every((i) => i.child.exitCode === null && i.child.signalCode === null), 'every instance still runs');

    // Every instance serves again: a new sign-in, a tool call at each.
    const fresh = await obtainTokens({ issuer: cluster.front, resource, scope: 'notes:read', username: 'alice', password: CLUSTER_PASSWORD, clientId });
    for (const instance of cluster.instances) {
      const client = new Client({ name: 'after-cut', version: '1.0.0' });
      await client.connect(new StreamableHTTPClientTransport(new URL(`${instance.url}/mcp`), { authProvider: { token: async () => fresh.access_token } }));
      assert.deepEqual((await client.callTool({ name: 'echo', arguments: { message: 'back' } })).content, [{ type: 'text', text: 'back' }]);
      await client.close();
    }
  });
});
