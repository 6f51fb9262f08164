import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestWarden } from './fixtures/warden.ts';
import { initializeMessage, messagesOf, openSession, post, TINY_SERVER } from './fixtures/raw.ts';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitDead(pid: number): Promise<void> {
  for (let i = 0; i < 50 && alive(pid); i++) await new Promise((r) => setTimeout(r, 50));
}

describe('stdio children follow their sessions', () => {
  it('one child per session; DELETE kills its child, shutdown kills the rest', async () => {
    const t = await startTestWarden({ servers: [{ name: 'tiny', path: '/mcp', upstream: { stdio: TINY_SERVER } }] });
    try {
      const token = await t.issuer.mint({ aud: t.endpoint });
      const pidOf = async (sid: string) => Number((await messagesOf(await post(t.endpoint, token, { jsonrpc: '2.0', id: 9, method: 'tools/call', params: { name: 'pid', arguments: {} } }, { 'mcp-session-id': sid })))[0].result.content[0].text);
      const a = await openSession(t.endpoint, token);
      const b = await openSession(t.endpoint, token);
      const [pa, pb] = [await pidOf(a), await pidOf(b)];
      assert.notEqual(pa, pb, 'a child per session');
      assert.ok(alive(pa) && alive(pb));
      const del = await fetch(t.endpoint, { method: 'DELETE', headers: { authorization: `Bearer ${token}`, 'mcp-session-id': a } });
      assert.equal(del.status, 204);
      await waitDead(pa);
      assert.equal(alive(pa), false, 'DELETE killed the child');
      assert.equal(alive(pb), true, 'the other child lives on');
      await t.warden.close();
      await waitDead(pb);
      assert.equal(alive(pb), false, 'shutdown killed the child');
    } finally {
      await t.close();
    }
  });

  it('initializeTimeoutSeconds: an upstream that never answers initialize ends the session with a JSON-RPC error', async () => {
    const t = await startTestWarden({ servers: [{ name: 'mute', path: '/mcp', upstream: { stdio: { command: 'sh', args: ['-c', 'cat > /dev/null'] } }, initializeTimeoutSeconds: 1 }] });
    try {
      const token = await t.issuer.mint({ aud: t.endpoint });
      const started = Date.now();
      const res = await post(t.endpoint, token, initializeMessage());
      const [answer] = await messagesOf(res);
      assert.equal(answer.error.code, -32603);
      assert.match(answer.error.message, /did not answer initialize/);
      assert.ok(Date.now() - started >= 900);
      assert.equal(t.warden.gateway.endpoints.get('/mcp')!.sessionCount, 0);
    } finally {
      await t.close();
    }
  });
});
