/**
 * The session directory while Redis is down (docs/deployment.md "Scale-out: MCP sessions"): each
 * instance reaches Redis through a proxy the test cuts, so the outage is real to the instances
 * while the Redis server other suites use stays up. Sessions held by the instance that receives
 * the request keep working; a session held elsewhere gets 503 with Retry-After (the session
 * exists, the directory that says where cannot be asked); once Redis is back, without a restart,
 * both work again, sessions opened during the outage included.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startWarden, type Warden } from '../../src/app.ts';
import { parseConfig } from '../../src/config/load.ts';
import { startFixtureIssuer, type FixtureIssuer } from '../gateway/fixtures/issuer.ts';
import { messagesOf, openSession, post, TINY_SERVER } from '../gateway/fixtures/raw.ts';
import { redisUnavailable, testKeyPrefix, TEST_REDIS_URL } from '../helpers/redis.ts';
import { cuttableProxy } from '../helpers/tcp-proxy.ts';
import { waitFor } from '../helpers/wait-for.ts';

const SECRET = 'cluster-secret-0123456789abcdefghijklmnop';

describe('the session directory during a Redis outage', { skip: await redisUnavailable() }, () => {
  let issuer: FixtureIssuer;
  let dir: string;
  const prefix = testKeyPrefix();
  const proxies: Awaited<ReturnType<typeof cuttableProxy>>[] = [];
  const wardens: Warden[] = [];
  let token: string;
  const front = 'http://127.0.0.1:9';

  before(async () => {
    issuer = await startFixtureIssuer();
    dir = mkdtempSync(join(tmpdir(), 'warden-outage-'));
    for (let i = 0; i < 2; i++) {
      const proxy = await cuttableProxy(TEST_REDIS_URL);
      proxies.push(proxy);
      wardens.push(await startWarden((port) => parseConfig({
        listen: { host: '127.0.0.1', port },
        publicUrl: front,
        allowedHosts: ['127.0.0.1'],
        storage: { sqlite: { path: join(dir, `warden-${i}.db`) } },
        authorizationServer: { external: { issuer: issuer.issuer } },
        log: { level: 'silent' },
        cluster: { redis: { url: proxy.url, keyPrefix: prefix }, secret: SECRET },
        servers: [{ name: 'tiny', path: '/mcp/tiny', upstream: { stdio: TINY_SERVER } }],
      })));
    }
    token = await issuer.mint({ aud: `${front}/mcp/tiny` });
  });

  after(async () => {
    for (const w of wardens) await w.close();
    for (const p of proxies) await p.close();
    await issuer?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const ping = (w: Warden, sid: string, id: number) => post(`${w.url}/mcp/tiny`, token, { jsonrpc: '2.0', id, method: 'ping' }, { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' });

  it('RFC 9110 §15.6.4: a session held elsewhere is 503 + Retry-After while Redis is down, local sessions work; all recover without a restart', async () => {
    const [a, b] = wardens as [Warden, Warden];
    const before = await openSession(`${a.url}/mcp/tiny`, token);
    // Start-up never waits for Redis: the first answer from the other instance says it is connected.
    await waitFor(async () => (await ping(b, before, 2)).status === 200, 'the directory to be reachable', { intervalMs: 50 });

    for (const p of proxies) p.cut();
    const during = await openSession(`${a.url}/mcp/tiny`, token);
    for (const sid of [before, during]) {
      const local = await ping(a, sid, 3);
      assert.equal(local.status, 200, 'held here: served without Redis');
      assert.deepEqual((await messagesOf(local))[0].result, {});
      const away = await ping(b, sid, 4);
      assert.equal(away.status, 503, 'held elsewhere, which cannot be asked now');
      assert.ok(Number(away.headers.get('retry-after')) > 0);
      assert.match((await away.json()).error.message, /another instance/);
    }

    for (const p of proxies) p.restore();
    // The instances reconnect by themselves; the session opened during the outage is written back.
    await waitFor(async () => (await ping(b, during, 5)).status === 200, 'the session opened during the outage, from the other instance', { timeoutMs: 15_000, intervalMs: 50 });
    assert.equal((await ping(b, before, 6)).status, 200);
  });
});
