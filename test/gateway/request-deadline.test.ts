import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { startTestWarden, type TestWarden } from './fixtures/warden.ts';
import { messagesOf, openSession, post } from './fixtures/raw.ts';
import { waitFor } from '../helpers/wait-for.ts';

const require = createRequire(import.meta.url);
/** The SDK (v2) deadline fixture over stdio, run through tsx. */
const DEADLINE_SERVER = { command: process.execPath, args: ['--import', require.resolve('tsx'), fileURLToPath(new URL('./fixtures/deadline-server.ts', import.meta.url))] };

const call = (id: number | string, name: string, args: Record<string, unknown> = {}, meta?: Record<string, unknown>) => ({
  jsonrpc: '2.0',
  id,
  method: 'tools/call',
  params: { name, arguments: args, ...(meta ? { _meta: meta } : {}) },
});

describe('a deadline for every forwarded request (MCP 2025-11-25 lifecycle §Timeouts, basic/utilities §Cancellation)', () => {
  let t: TestWarden;
  let token: string;
  let url: string;
  const capped = () => `${t.warden.url}/mcp/capped`;
  before(async () => {
    t = await startTestWarden({
      servers: [
        { name: 'deadline', path: '/mcp', upstream: { stdio: DEADLINE_SERVER }, requestTimeoutSeconds: 2 },
        { name: 'capped', path: '/mcp/capped', upstream: { stdio: DEADLINE_SERVER }, requestTimeoutSeconds: 2, maxRequestTimeoutSeconds: 3 },
      ],
    });
    url = t.endpoint;
    token = await t.issuer.mint({ aud: url });
  });
  after(async () => t.close());

  it('a tool that never answers: the SDK client gets -32001 at the deadline, the upstream notifications/cancelled with that request id and a reason', async () => {
    const client = new Client({ name: 'deadline', version: '1.0.0' });
    const transport = new StreamableHTTPClientTransport(new URL(url), { authProvider: { token: async () => token } });
    await client.connect(transport);
    // The client's own timeout is far longer: the answer can only come from the gateway.
    await assert.rejects(client.callTool({ name: 'hang', arguments: {} }, { timeout: 120_000 }), (err: Error & { code?: unknown }) => {
      assert.equal(err.code, -32001);
      assert.match(err.message, /Request timed out: the upstream MCP server did not answer within 2 s \(servers\[\]\.requestTimeoutSeconds\)/);
      return true;
    });
    // The SDK server aborted the handler of exactly that request (it matches notifications/cancelled by request id).
    let seen: { requestId: unknown; reason: unknown }[] = [];
    await waitFor(async () => {
      const result = await client.callTool({ name: 'cancellations', arguments: {} });
      seen = JSON.parse((result.content as { text: string }[])[0]!.text);
      return seen.length > 0;
    }, 'the upstream to record the cancellation');
    assert.equal(seen.length, 1);
    assert.match(String(seen[0]!.reason), /mcp-warden: no answer within 2 s/);
    await transport.terminateSession();
    await client.close();
  });

  it('a raw client: the -32001 answer carries the request id, and the session keeps working afterwards', async () => {
    const sid = await openSession(url, token);
    const headers = { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' };
    const res = await post(url, token, call('never', 'hang'), headers);
    const messages = await messagesOf(res);
    const answer = messages.find((m) => m.id === 'never');
    assert.equal(answer.error.code, -32001);
    let next = 2;
    await waitFor(async () => {
      const id = next++;
      const again = await messagesOf(await post(url, token, call(id, 'cancellations'), headers));
      return (JSON.parse(again.find((m) => m.id === id).result.content[0].text) as { requestId: unknown }[]).some((c) => c.requestId === 'never');
    }, 'the cancellation of request "never" at the upstream');
  });

  it('MCP lifecycle §Timeouts: progress notifications for the request push its deadline back (4 s of work, 2 s deadline)', async () => {
    const sid = await openSession(url, token);
    const headers = { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' };
    const res = await post(url, token, call(1, 'progress', { ticks: 8, intervalMs: 500 }, { progressToken: 'p1' }), headers);
    const messages = await messagesOf(res);
    assert.ok(messages.filter((m) => m.method === 'notifications/progress').length >= 4, 'progress arrived on the request stream');
    const answer = messages.find((m) => m.id === 1);
    assert.deepEqual(answer.result.content, [{ type: 'text', text: 'done after 8 ticks' }]);
  });

  it('MCP lifecycle §Timeouts: progress never pushes the deadline past maxRequestTimeoutSeconds', async () => {
    const ctoken = await t.issuer.mint({ aud: capped() });
    const sid = await openSession(capped(), ctoken);
    const headers = { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' };
    const res = await post(capped(), ctoken, call(1, 'progress', { ticks: 20, intervalMs: 500 }, { progressToken: 'p1' }), headers);
    const messages = await messagesOf(res);
    assert.ok(messages.some((m) => m.method === 'notifications/progress'), 'progress arrived before the deadline');
    const answer = messages.find((m) => m.id === 1);
    assert.equal(answer.error.code, -32001);
    assert.match(answer.error.message, /within 3 s \(servers\[\]\.maxRequestTimeoutSeconds\)/);
  });
});
