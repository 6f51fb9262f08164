/**
 * SIGTERM with a tool call in flight upstream (MCP 2025-11-25 lifecycle §Shutdown). A call cut
 * mid-way may still take effect upstream while its client sees only an error, and may repeat it;
 * so `mcp-warden start` lets requests already sent upstream be answered, up to
 * `shutdown.drainSeconds`, before it ends the sessions (src/http/drain.ts). Real processes: the
 * official SDK client, `mcp-warden start` on SQLite, and the SDK's Streamable HTTP server upstream.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { startHttpUpstream, type HttpUpstreamFixture } from '../gateway/fixtures/http-upstream.ts';
import { CLUSTER_PASSWORD, startCluster, type Cluster } from '../helpers/cluster.ts';
import { obtainTokens } from '../helpers/oauth.ts';
import { waitFor } from '../helpers/wait-for.ts';

describe('SIGTERM with a tool call in flight upstream: the drain', () => {
  const started: { upstream: HttpUpstreamFixture; cluster?: Cluster }[] = [];
  after(async () => {
    for (const { upstream, cluster } of started) {
      await cluster?.stop();
      await upstream.close();
    }
  });

  /** One instance, a session, and a `wait` call of `ms` sent upstream; then SIGTERM (twice with `again`). */
  async function stopDuringCall(ms: number, shutdown?: { drainSeconds: number }, again = false) {
    const upstream = await startHttpUpstream();
    const entry: { upstream: HttpUpstreamFixture; cluster?: Cluster } = { upstream };
    started.push(entry);
    const cluster = await startCluster({ instances: 1, front: 'direct', storage: 'sqlite', redisUrl: false, upstreamUrl: upstream.url, dirPrefix: 'warden-shutdown-drain-', ...(shutdown ? { extra: { shutdown } } : {}) });
    entry.cluster = cluster;
    const resource = `${cluster.front}/mcp`;
    const tokens = await obtainTokens({ issuer: cluster.front, resource, scope: 'notes:read', username: 'alice', password: CLUSTER_PASSWORD });
    const client = new Client({ name: 'shutdown-drain', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(new URL(resource), { requestInit: { headers: { Authorization: `Bearer ${tokens.access_token}` } } }));
    const posts = () => upstream.requests.filter((r) => r.method === 'POST').length;
    const before = posts();
    const call = client.callTool({ name: 'wait', arguments: { ms } }, { timeout: 120_000 }).then(
      (result) => ({ result, error: undefined }),
      (error: Error) => ({ result: undefined, error }),
    );
    await waitFor(() => posts() > before, 'the tool call to reach the upstream', { timeoutMs: 10_000, intervalMs: 5 });
    const { child } = cluster.instances[0]!;
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number }>((resolve) => {
      const t0 = Date.now();
      child.once('exit', (code, signal) => resolve({ code, signal, ms: Date.now() - t0 }));
    });
    child.kill('SIGTERM');
    if (again) {
      await waitFor(() => /"event":"shutdown_drain"/.test(cluster.instances[0]!.log()), 'the drain to begin', { timeoutMs: 10_000, intervalMs: 20 });
      child.kill('SIGTERM');
    }
    const outcome = await call;
    const exit = await exited;
    await client.close().catch(() => {});
    return { outcome, exit, log: cluster.instances[0]!.log() };
  }

  it('a call answered within the drain reaches its client, and the instance exits 0 after it', async () => {
    const { outcome, exit, log } = await stopDuringCall(3_000);
    assert.equal(outcome.error, undefined, `the call failed: ${outcome.error?.message}`);
    assert.deepEqual(outcome.result!.content, [{ type: 'text', text: 'waited 3000' }]);
    assert.equal(exit.code, 0);
    assert.match(log, /"event":"shutdown_drain","pending":1/);
    assert.match(log, /"event":"shutdown_drained"/);
  });

  it('a call still unanswered when the drain ends gets an error, and the instance does not wait for it', async () => {
    const { outcome, exit, log } = await stopDuringCall(60_000, { drainSeconds: 1 });
    assert.ok(outcome.error, 'the call was answered');
    assert.match(outcome.error.message, /shutting down/);
    assert.equal(exit.code, 0);
    assert.ok(exit.ms < 15_000, `exited ${exit.ms} ms after SIGTERM, not after the drain's second`);
    assert.match(log, /"event":"shutdown_drain_ended","left":1/);
  });

  it('a second SIGTERM during the drain stops the instance at once (the operator\'s way out of a long drain)', async () => {
    const { outcome, exit } = await stopDuringCall(60_000, undefined, true);
    assert.ok(outcome.error, 'the call was answered');
    assert.equal(exit.signal, 'SIGTERM', 'ended by the second signal, not by a drain that ran its course');
    assert.ok(exit.ms < 8_000, `exited ${exit.ms} ms after the first SIGTERM, within the 10 s drain`);
  });
});
