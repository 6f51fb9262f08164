/**
 * PostgreSQL cut for 5 s under load, three instances behind nginx, no instance restarted: every
 * instance reaches PostgreSQL through a TCP proxy this test cuts (each connection dropped, new ones
 * refused, as a database restart looks from the instances) and restores; the server the other test
 * files share is not touched. Requests fail while it is away — answered, never left hanging — and
 * once it is back every kind of request succeeds again on every instance, with the same processes.
 * Counts per phase are printed as test diagnostics.
 */
import { after, before, describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { startHttpUpstream, type HttpUpstreamFixture } from '../gateway/fixtures/http-upstream.ts';
import { CLUSTER_PASSWORD, startCluster, type Cluster } from '../helpers/cluster.ts';
import { nginxUnavailable } from '../helpers/nginx.ts';
import { obtainTokens, registerPublicClient } from '../helpers/oauth.ts';
import { postgresUnavailable, TEST_POSTGRES_URL } from '../helpers/postgres.ts';
import { redisUnavailable } from '../helpers/redis.ts';
import { cuttableProxy } from '../helpers/tcp-proxy.ts';
import { waitFor } from '../helpers/wait-for.ts';
import { describeTally, mixedLoad, sleep, tally, type MixedLoad } from './fault-load.ts';

const skip = nginxUnavailable() ?? await postgresUnavailable() ?? await redisUnavailable();

describe('PostgreSQL cut for 5 s under load (a restart as the instances see it), then back: bounded errors, recovery without restarting mcp-warden', { skip }, () => {
  let upstream: HttpUpstreamFixture;
  let proxy: Awaited<ReturnType<typeof cuttableProxy>>;
  let cluster: Cluster;
  let runningLoad: MixedLoad | undefined;

  before(async () => {
    upstream = await startHttpUpstream();
    proxy = await cuttableProxy(TEST_POSTGRES_URL);
    cluster = await startCluster({ upstreamUrl: upstream.url, postgresUrl: proxy.url, dirPrefix: 'warden-fault-postgres-', extra: { trustProxy: { hops: 1 } } });
  });
  after(async () => {
    // First the load: a test that failed midway left it running (test/cluster/fault-load.ts).
    await runningLoad?.stop();
    await cluster?.stop();
    await proxy?.close();
    await upstream?.close();
  });

  it('OAuth 2.1 and MCP requests fail while PostgreSQL is unreachable, are answered rather than left hanging, and all succeed again once it is back', async (t: TestContext) => {
    const resource = `${cluster.front}/mcp`;
    const clientId = await registerPublicClient(cluster.front);
    const tokens = await obtainTokens({ issuer: cluster.front, resource, scope: 'notes:read', username: 'alice', password: CLUSTER_PASSWORD, clientId });
    // The refresh chain has a grant of its own: the tool calls' token never depends on its fate.
    const chain = await obtainTokens({ issuer: cluster.front, resource, scope: 'notes:read', username: 'alice', password: CLUSTER_PASSWORD, clientId });
    const pids = cluster.instances.map((i) => i.child.pid);
    const load = mixedLoad(cluster, { accessToken: tokens.access_token, clientId, refreshToken: chain.refresh_token!, addressBase: 50 });
    runningLoad = load;
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
      // An instance that died is no recovery: say which, with the end of its log.
      const dead = cluster.instances.find((i) => i.child.exitCode !== null || i.child.signalCode !== null);
      if (dead) throw new Error(`instance ${dead.index} exited during the outage:\n${dead.log().slice(-2000)}`);
      const since = load.outcomes.filter((x) => x.start >= restored);
      const lastFailure = Math.max(restored, ...since.filter((x) => !x.ok).map((x) => x.end));
      const okAfter = since.filter((x) => x.ok && x.start > lastFailure);
      const ops = new Set(okAfter.map((x) => x.op));
      if (ops.size === 4 && okAfter.length >= 20) recoveredAt = lastFailure;
      return recoveredAt > 0;
    }, 'every kind of request succeeding after PostgreSQL is back', { timeoutMs: 60_000 }).catch((err: Error) => {
      const errors = load.outcomes.filter((x) => x.start >= restored && !x.ok).slice(-8).map((x) => `${x.op}: ${x.error}`);
      throw new Error(`${err.message}; last failures: ${errors.join(' | ')}`);
    });
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
