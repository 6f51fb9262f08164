import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startHttpUpstream, type HttpUpstreamFixture } from './fixtures/http-upstream.ts';
import { startTestWarden, type TestWarden } from './fixtures/warden.ts';
import { messagesOf, openSession, post } from './fixtures/raw.ts';
import { TINY_SERVER } from './fixtures/raw.ts';

describe('MCP-Protocol-Version within a session (MCP 2025-11-25 transports §Protocol Version Header)', () => {
  let t: TestWarden;
  let url: string;
  let remote: string;
  let upstream: HttpUpstreamFixture;
  before(async () => {
    upstream = await startHttpUpstream();
    t = await startTestWarden({
      servers: [
        { name: 'tiny', path: '/mcp', upstream: { stdio: TINY_SERVER }, scopes: ['mcp:read'] },
        { name: 'remote', path: '/remote', upstream: { http: { url: upstream.url } } },
      ],
    });
    url = t.endpoint;
    remote = url.replace(/\/mcp$/, '/remote');
  });
  after(async () => {
    await t.close();
    await upstream.close();
  });

  it('a supported version that differs from the negotiated one is accepted (an older header after negotiating 2025-11-25, as java-sdk sends)', async () => {
    const token = await t.issuer.mint({ aud: url, scope: 'mcp:read' });
    const sid = await openSession(url, token, '2025-11-25');
    for (const [id, version] of [[2, '2025-06-18'], [3, '2025-03-26'], [4, '2024-11-05'], [5, '2025-11-25']] as const) {
      const res = await post(url, token, { jsonrpc: '2.0', id, method: 'ping' }, { 'mcp-session-id': sid, 'mcp-protocol-version': version });
      assert.equal(res.status, 200, version);
      const [answer] = await messagesOf(res);
      assert.deepEqual(answer, { jsonrpc: '2.0', id, result: {} }, version);
    }
    const get = await fetch(url, { headers: { accept: 'text/event-stream', authorization: `Bearer ${token}`, 'mcp-session-id': sid, 'mcp-protocol-version': '2025-06-18' } });
    assert.equal(get.status, 200);
    await get.body?.cancel();
    const del = await fetch(url, { method: 'DELETE', headers: { authorization: `Bearer ${token}`, 'mcp-session-id': sid, 'mcp-protocol-version': '2025-03-26' } });
    assert.equal(del.status, 204);
  });

  it('an unsupported or invalid version is 400 with a message naming the supported ones, inside a session and outside', async () => {
    const token = await t.issuer.mint({ aud: url, scope: 'mcp:read' });
    const sid = await openSession(url, token, '2025-11-25');
    for (const version of ['2099-01-01', 'latest', '2025-11-25, 2025-06-18']) {
      const res = await post(url, token, { jsonrpc: '2.0', id: 1, method: 'ping' }, { 'mcp-session-id': sid, 'mcp-protocol-version': version });
      assert.equal(res.status, 400, version);
      const body = await res.json();
      assert.equal(body.error.code, -32600);
      assert.match(body.error.message, /Unsupported MCP-Protocol-Version.*supported: 2025-11-25/);
    }
    const get = await fetch(url, { headers: { accept: 'text/event-stream', authorization: `Bearer ${token}`, 'mcp-session-id': sid, 'mcp-protocol-version': '1999-01-01' } });
    assert.equal(get.status, 400);
    await get.text();
  });

  it('the negotiated version governs the session: no JSON-RPC batch in a 2025-11-25 session even under a 2025-03-26 header', async () => {
    const token = await t.issuer.mint({ aud: url, scope: 'mcp:read' });
    const sid = await openSession(url, token, '2025-11-25');
    const batch = await post(url, token, [{ jsonrpc: '2.0', id: 1, method: 'ping' }], { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-03-26' });
    assert.equal(batch.status, 400);
    assert.match((await batch.json()).error.message, /batches are not accepted for protocol version 2025-11-25/);
  });

  it('the upstream hears the negotiated version, not the older one a client sends', async () => {
    const token = await t.issuer.mint({ aud: remote });
    const sid = await openSession(remote, token, '2025-11-25');
    const before = upstream.requests.length;
    const res = await post(remote, token, { jsonrpc: '2.0', id: 9, method: 'ping' }, { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-06-18' });
    assert.equal(res.status, 200);
    await messagesOf(res);
    const forwarded = upstream.requests.slice(before).filter((r) => r.method === 'POST');
    assert.ok(forwarded.length >= 1);
    for (const r of forwarded) assert.equal(r.headers['mcp-protocol-version'], '2025-11-25');
  });
});
