import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { createLogger } from '../../src/log.ts';
import { startTestWarden, type TestWarden } from './fixtures/warden.ts';
import { messagesOf, openSession, post, TINY_SERVER } from './fixtures/raw.ts';

describe('gateway logging (pino)', () => {
  const lines: Record<string, unknown>[] = [];
  let raw = '';
  let t: TestWarden;
  let token: string;
  before(async () => {
    const sink = new Writable({
      write(chunk, _enc, done) {
        raw += chunk.toString();
        for (const l of chunk.toString().split('\n')) if (l.trim()) lines.push(JSON.parse(l));
        done();
      },
    });
    t = await startTestWarden({ servers: [{ name: 'tiny', path: '/mcp', upstream: { stdio: TINY_SERVER }, scopes: ['mcp:read'] }], logger: createLogger('debug', sink) });
    token = await t.issuer.mint({ aud: t.endpoint, scope: 'mcp:read' });
  });
  after(async () => t.close());

  it('a stdio child\'s stderr is logged line by line with its session ID', async () => {
    const sid = await openSession(t.endpoint, token);
    const res = await post(t.endpoint, token, { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'echo', arguments: { message: 'x' } } }, { 'mcp-session-id': sid });
    await messagesOf(res);
    const line = lines.find((l) => l.stderr === 'tiny-server started' && l.sessionId === sid);
    assert.ok(line, 'stderr line with sessionId');
    assert.equal(line.server, 'tiny');
  });

  it('never logs a token or an Authorization header, even for refused requests', async () => {
    await (await post(t.endpoint, `${token}x`, { jsonrpc: '2.0', id: 1, method: 'ping' })).text();
    await (await post(`${t.endpoint}?access_token=${token}`, undefined, { jsonrpc: '2.0', id: 1, method: 'ping' })).text();
    const sid = await openSession(t.endpoint, token);
    await fetch(t.endpoint, { method: 'DELETE', headers: { authorization: `Bearer ${token}`, 'mcp-session-id': sid } });
    assert.ok(lines.length > 3, 'something was logged');
    assert.ok(!raw.includes(token.split('.')[2]!), 'no token signature in the logs');
    assert.ok(!/Bearer /.test(raw), 'no Authorization header in the logs');
  });
});
