/**
 * Redis down for 10 s under load, three instances behind nginx, no instance restarted: a
 * redis-server of this test's own is killed with SIGKILL and started again empty on the same port
 * (never the Redis other test files share). Sign-ins, refreshes, registrations and tool calls go
 * on; each instance logs one `redis_unavailable` and one `redis_recovered`, resubscribes to the
 * revocation channel and counts the registration limit in Redis again (docs/deployment.md,
 * "Redis outages"). Counts per phase are printed as test diagnostics.
 */
import { after, before, describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient } from 'redis';
import { startHttpUpstream, type HttpUpstreamFixture } from '../gateway/fixtures/http-upstream.ts';
import { CLUSTER_PASSWORD, startCluster, startOwnRedis, type Cluster, type OwnRedis } from '../helpers/cluster.ts';
import { nginxUnavailable } from '../helpers/nginx.ts';
import { obtainTokens, registerPublicClient } from '../helpers/oauth.ts';
import { postgresUnavailable } from '../helpers/postgres.ts';
import { redisUnavailable } from '../helpers/redis.ts';
import { waitFor } from '../helpers/wait-for.ts';
import { describeTally, mixedLoad, sleep, tally, type MixedLoad } from './fault-load.ts';

const skip = nginxUnavailable() ?? await postgresUnavailable() ?? await redisUnavailable();

describe('Redis down for 10 s under load, then back: no errors, recovery without restarting mcp-warden', { skip }, () => {
  let upstream: HttpUpstreamFixture;
  let redisDir: string;
  let redis: OwnRedis;
  let cluster: Cluster;
  let runningLoad: MixedLoad | undefined;

  before(async () => {
    upstream = await startHttpUpstream();
    redisDir = mkdtempSync(join(tmpdir(), 'warden-own-redis-'));
    redis = await startOwnRedis(redisDir);
    cluster = await startCluster({ upstreamUrl: upstream.url, redisUrl: redis.url, dirPrefix: 'warden-fault-redis-', extra: { trustProxy: { hops: 1 } } });
  });
  after(async () => {
    // First the load: a test that failed midway left it running (test/cluster/fault-load.ts).
    await runningLoad?.stop();
    await cluster?.stop();
    await redis?.stop();
    await upstream?.close();
    if (redisDir) rmSync(redisDir, { recursive: true, force: true });
  });

  it('docs/deployment.md "Redis outages": requests keep succeeding while Redis is gone; each instance logs the outage once, resubscribes and shares the registration limit again', async (t: TestContext) => {
    const resource = `${cluster.front}/mcp`;
    const clientId = await registerPublicClient(cluster.front);
    const tokens = await obtainTokens({ issuer: cluster.front, resource, scope: 'notes:read', username: 'alice', password: CLUSTER_PASSWORD, clientId });
    // The refresh chain has a grant of its own: the tool calls' token never depends on its fate.
    const chain = await obtainTokens({ issuer: cluster.front, resource, scope: 'notes:read', username: 'alice', password: CLUSTER_PASSWORD, clientId });
    const pids = cluster.instances.map((i) => i.child.pid);
    const load = mixedLoad(cluster, { accessToken: tokens.access_token, clientId, refreshToken: chain.refresh_token!, addressBase: 40 });
    runningLoad = load;
    const t0 = Date.now();
    await sleep(2000);
    const down = Date.now();
    await redis.kill();
    await sleep(10_000);
    const up = Date.now();
    await redis.start();
    // Reconnection backs off to at most 5 s (docs/deployment.md): wait for every instance to say so.
    await waitFor(() => cluster.instances.every((i) => /redis_recovered/.test(i.log())), 'redis_recovered from every instance', { timeoutMs: 30_000 }).catch((err: Error) => {
      // Say which instance did not recover, with what it last logged about Redis.
      const state = cluster.instances.map((i) => {
        const log = i.log();
        const lines = log.split('\n').filter((l) => /"component":"redis"/.test(l)).slice(-3);
        return `instance ${i.index}${/redis_recovered/.test(log) ? ' recovered' : ' not recovered'}:\n  ${lines.join('\n  ')}`;
      });
      throw new Error(`${err.message}\n${state.join('\n')}`);
    });
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

