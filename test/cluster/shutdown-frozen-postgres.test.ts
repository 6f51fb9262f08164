/**
 * SIGTERM while PostgreSQL does not answer (frozen, or a failover whose old address drops
 * packets): a rolling restart in the middle of a database failover is when instances are stopped.
 * The instance must still exit, after its statement limit (the last audit batch's wait) and a
 * second, rather than wait for a server that will never close its connections
 * (src/storage/postgres/sockets.ts). The parts of that bound are tested each where they are made
 * (test/storage/postgres-frozen.test.ts, test/authorization-server/revocation-list.test.ts). Real `mcp-warden start`, reaching the test PostgreSQL through
 * a TCP proxy the test freezes.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { startHttpUpstream, type HttpUpstreamFixture } from '../gateway/fixtures/http-upstream.ts';
import { CLUSTER_PASSWORD, startCluster, type Cluster } from '../helpers/cluster.ts';
import { obtainTokens } from '../helpers/oauth.ts';
import { postgresUnavailable, TEST_POSTGRES_URL } from '../helpers/postgres.ts';
import { cuttableProxy, type CuttableProxy } from '../helpers/tcp-proxy.ts';

/** The instance's statement limit (`storage.postgres.queryTimeoutMs`), short so the test is. */
const QUERY_TIMEOUT_MS = 5_000;

describe('SIGTERM while PostgreSQL does not answer', { skip: await postgresUnavailable() }, () => {
  let upstream: HttpUpstreamFixture;
  let proxy: CuttableProxy;
  let cluster: Cluster;

  before(async () => {
    upstream = await startHttpUpstream();
    proxy = await cuttableProxy(TEST_POSTGRES_URL);
    cluster = await startCluster({ instances: 1, front: 'direct', redisUrl: false, upstreamUrl: upstream.url, postgresUrl: proxy.url, postgres: { queryTimeoutMs: QUERY_TIMEOUT_MS }, dirPrefix: 'warden-shutdown-frozen-postgres-' });
  });
  after(async () => {
    proxy?.restore();
    await cluster?.stop();
    await proxy?.close();
    await upstream?.close();
  });

  it('the instance exits once the last audit batch has had its limit, reporting the audit events it could not write', async () => {
    const resource = `${cluster.front}/mcp`;
    // Sign-ins side by side: the pool opens several connections, idle when the database falls silent.
    const [tokens] = await Promise.all(Array.from({ length: 4 }, () => obtainTokens({ issuer: cluster.front, resource, scope: 'notes:read', username: 'alice', password: CLUSTER_PASSWORD })));
    const client = new Client({ name: 'shutdown-frozen-postgres', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(new URL(resource), { requestInit: { headers: { Authorization: `Bearer ${tokens!.access_token}` } } }));
    assert.ok((await client.listTools()).tools.some((t) => t.name === 'echo'));
    proxy.freeze();
    // Served while the database is silent (the token is verified from memory); its audit event waits.
    assert.deepEqual((await client.callTool({ name: 'echo', arguments: { message: 'during the freeze' } })).content, [{ type: 'text', text: 'during the freeze' }]);
    await client.close().catch(() => {});

    const { child } = cluster.instances[0]!;
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    child.kill('SIGTERM');
    // Its limit for the last audit batch, the pool's grace, and room for a loaded machine.
    const deadline = QUERY_TIMEOUT_MS + 1_000 + 12_000;
    const timer = setTimeout(() => child.kill('SIGKILL'), deadline);
    const { code, signal } = await exited;
    clearTimeout(timer);
    const log = cluster.instances[0]!.log();
    assert.equal(signal, null, `the instance was still running ${deadline} ms after SIGTERM (killed); its log ends:\n${log.slice(-1500)}`);
    assert.equal(code, 0);
    assert.match(log, /could not write \d+ audit event\(s\) to PostgreSQL/, 'the events it could not write are reported');
  });
});
