import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { Client as ClientV1 } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport as TransportV1 } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { startTestWarden, type TestWarden } from './fixtures/warden.ts';
import { startHttpUpstream, type HttpUpstreamFixture } from './fixtures/http-upstream.ts';
import { initializeMessage, messagesOf, openSession, post } from './fixtures/raw.ts';
import { waitFor } from '../helpers/wait-for.ts';

describe('HTTP upstream: SDK clients through the gateway to an SDK Streamable HTTP server', () => {
  let upstream: HttpUpstreamFixture;
  let t: TestWarden;
  let token: string;
  before(async () => {
    upstream = await startHttpUpstream();
    t = await startTestWarden({
      servers: [
        { name: 'remote', path: '/mcp/remote', upstream: { http: { url: upstream.url, headers: { 'x-upstream-key': 'configured' } } }, scopes: ['mcp:read'], requiredScopes: ['mcp:read'] },
        // Nothing listens on port 1: an unreachable upstream.
        { name: 'down', path: '/mcp/down', upstream: { http: { url: 'http://127.0.0.1:1/mcp' } } },
      ],
    });
    token = await t.issuer.mint({ aud: t.endpoint, scope: 'mcp:read' });
  });
  after(async () => {
    await t.close();
    await upstream.close();
  });

  it('MCP 2025-11-25: the 2.x client lists and calls tools; the upstream session maps to ours and DELETE ends both', async () => {
    const client = new Client({ name: 'v2', version: '1.0.0' });
    const transport = new StreamableHTTPClientTransport(new URL(t.endpoint), { authProvider: { token: async () => token } });
    await client.connect(transport);
    assert.equal(upstream.sessions(), 1);
    const ourId = transport.sessionId;
    const tools = await client.listTools();
    assert.deepEqual(tools.tools.map((x) => x.name).sort(), ['admin_reset', 'count', 'echo', 'poke', 'wait']);
    const result = await client.callTool({ name: 'echo', arguments: { message: 'over http' } });
    assert.deepEqual(result.content, [{ type: 'text', text: 'over http' }]);
    const upstreamIds = new Set(upstream.requests.map((r) => r.headers['mcp-session-id']).filter(Boolean));
    assert.equal(upstreamIds.size, 1);
    assert.ok(!upstreamIds.has(ourId), 'the upstream session ID is not the one the client sees');
    await transport.terminateSession();
    await client.close();
    assert.equal(upstream.sessions(), 0, 'DELETE reached the upstream');
  });

  it('MCP 2025-06-18: the 1.x client gets progress streamed through from the upstream SSE response', async () => {
    const client = new ClientV1({ name: 'v1', version: '1.0.0' });
    const transport = new TransportV1(new URL(t.endpoint), { requestInit: { headers: { Authorization: `Bearer ${token}` } } });
    await client.connect(transport);
    const seen: number[] = [];
    const result = await client.callTool({ name: 'count', arguments: { n: 3 } }, undefined, { onprogress: (p) => seen.push(p.progress) });
    assert.deepEqual(seen, [1, 2, 3]);
    assert.deepEqual(result.content, [{ type: 'text', text: 'counted 3' }]);
    await transport.terminateSession();
    await client.close();
  });

  it('MCP 2025-11-25 transports §Listening for Messages from the Server: a server notification on the upstream\'s GET stream reaches the client\'s GET stream', async () => {
    const client = new ClientV1({ name: 'v1', version: '1.0.0' });
    const transport = new TransportV1(new URL(t.endpoint), { requestInit: { headers: { Authorization: `Bearer ${token}` } } });
    const { ToolListChangedNotificationSchema } = await import('@modelcontextprotocol/sdk/types.js');
    const changed = new Promise<void>((resolve) => client.setNotificationHandler(ToolListChangedNotificationSchema, () => resolve()));
    await client.connect(transport);
    // The 1.x client opens its GET stream after initialization; wait until the gateway has opened the upstream's.
    await waitFor(() => upstream.requests.some((r) => r.method === 'GET'), 'the upstream GET stream');
    await client.callTool({ name: 'poke', arguments: {} });
    await changed;
    assert.ok(upstream.requests.some((r) => r.method === 'GET'), 'the gateway opened the upstream GET stream');
    await transport.terminateSession();
    await client.close();
  });

  it('MCP security (token passthrough): the client\'s Authorization and Cookie never reach the upstream; configured headers do', async () => {
    upstream.requests.length = 0;
    const client = new Client({ name: 'v2', version: '1.0.0' });
    const transport = new StreamableHTTPClientTransport(new URL(t.endpoint), { authProvider: { token: async () => token }, requestInit: { headers: { Cookie: 'session=secret-cookie' } } });
    await client.connect(transport);
    await client.callTool({ name: 'echo', arguments: { message: 'x' } });
    await transport.terminateSession();
    await client.close();
    assert.ok(upstream.requests.length >= 3);
    for (const r of upstream.requests) {
      assert.equal(r.headers.authorization, undefined, `${r.method} carried Authorization`);
      assert.equal(r.headers.cookie, undefined, `${r.method} carried Cookie`);
      assert.equal(r.headers['x-upstream-key'], 'configured');
      assert.ok(!JSON.stringify(r.headers).includes(token));
    }
  });

  it('an unreachable upstream answers initialize with a JSON-RPC error (-32603) that names no internal address, and leaves no session behind', async () => {
    const down = t.endpoint.replace(/\/mcp\/remote$/, '/mcp/down');
    const downToken = await t.issuer.mint({ aud: down });
    const res = await post(down, downToken, initializeMessage());
    assert.equal(res.status, 200);
    const [answer] = await messagesOf(res);
    assert.equal(answer.error.code, -32603);
    assert.doesNotMatch(JSON.stringify(answer), /Bearer|eyJ/, 'no token in the error');
    // MCP Security Best Practices: the system error (`connect ECONNREFUSED 127.0.0.1:1`) stays in the log.
    assert.match(answer.error.message, /^the upstream MCP server failed \(session [0-9a-f-]+\)$/);
    assert.doesNotMatch(JSON.stringify(answer), /ECONNREFUSED|127\.0\.0\.1|:1\b/);
    await waitFor(() => t.warden.gateway.endpoints.get('/mcp/down')!.sessionCount === 0, 'the failed session to end');
  });

  it('MCP 2025-11-25 transports §Session Management: when the upstream forgets its session (404), ours ends too: the request in flight gets -32603, the next one 404', async () => {
    const sid = await (async () => {
      const res = await post(t.endpoint, token, initializeMessage());
      await res.text();
      return res.headers.get('mcp-session-id')!;
    })();
    const headers = { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' };
    await (await post(t.endpoint, token, { jsonrpc: '2.0', method: 'notifications/initialized' }, headers)).text();
    upstream.dropSessions();
    const res = await post(t.endpoint, token, { jsonrpc: '2.0', id: 1, method: 'tools/list' }, headers);
    const [answer] = await messagesOf(res);
    assert.equal(answer.error.code, -32603);
    const next = await post(t.endpoint, token, { jsonrpc: '2.0', id: 2, method: 'tools/list' }, headers);
    assert.equal(next.status, 404);
  });
});

describe('HTTP upstream GET stream: reconnect pacing (HTML §9.2.6 retry, MCP 2025-11-25 transports §Listening for Messages from the Server)', () => {
  let upstream: Server;
  let upstreamUrl: string;
  let gets = 0;
  let t: TestWarden;
  let token: string;
  before(async () => {
    // A Streamable HTTP server that answers its GET stream with a priming event carrying `retry: 0`
    // and closes it at once, every time.
    upstream = createServer((req, res) => {
      if (req.method === 'GET') {
        gets++;
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.end(`id: g${gets}\nretry: 0\ndata: \n\n`);
        return;
      }
      if (req.method === 'DELETE') return void res.writeHead(200).end();
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (c: string) => (body += c));
      req.on('end', () => {
        const m = JSON.parse(body) as { id?: number | string; method?: string; params?: { protocolVersion?: string } };
        if (m.id === undefined) return void res.writeHead(202).end();
        const result = m.method === 'initialize' ? { protocolVersion: m.params?.protocolVersion, capabilities: {}, serverInfo: { name: 'retry-zero', version: '1' } } : {};
        res.writeHead(200, { 'content-type': 'application/json', 'mcp-session-id': 'upstream-1' }).end(JSON.stringify({ jsonrpc: '2.0', id: m.id, result }));
      });
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}/mcp`;
    t = await startTestWarden({ servers: [{ name: 'retry-zero', path: '/mcp', upstream: { http: { url: upstreamUrl } } }] });
    token = await t.issuer.mint({ aud: t.endpoint });
  });
  after(async () => {
    await t.close();
    upstream.closeAllConnections();
    await new Promise<void>((resolve) => upstream.close(() => resolve()));
  });

  it('an upstream `retry: 0` whose GET stream closes at once is reopened at a bounded pace (retry clamped, backoff on empty reopens), not in a tight loop', async () => {
    const sid = await openSession(t.endpoint, token);
    const g = await fetch(t.endpoint, { headers: { accept: 'text/event-stream', authorization: `Bearer ${token}`, 'mcp-session-id': sid } });
    assert.equal(g.status, 200);
    await g.body!.cancel();
    // The gateway keeps listening: it reopens the upstream's GET stream after it closes.
    await waitFor(() => gets >= 2, 'the upstream GET stream to be reopened');
    // A rate, so a window: in a tight loop this sees hundreds of GETs; clamped to 250 ms and
    // doubling per empty reopen, a handful.
    const start = gets;
    await new Promise((resolve) => setTimeout(resolve, 2000));
    const reopened = gets - start;
    assert.ok(reopened <= 6, `${reopened} reopens in 2 s`);
    const del = await fetch(t.endpoint, { method: 'DELETE', headers: { authorization: `Bearer ${token}`, 'mcp-session-id': sid } });
    assert.equal(del.status, 204);
  });
});

describe('MCP basic §Requests: a request ID within a session (an HTTP upstream that fails one request and is slow to answer another)', () => {
  let upstream: Server;
  let t: TestWarden;
  let token: string;
  /** Called when the upstream receives a `slow` request, with the function that answers it. */
  let slowArrived: (answer: () => void) => void = () => {};
  before(async () => {
    // `fail` drops the connection before any answer; `slow` answers when the test says so; the rest at once.
    upstream = createServer((req, res) => {
      if (req.method !== 'POST') return void res.writeHead(405).end();
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (c: string) => (body += c));
      req.on('end', () => {
        const m = JSON.parse(body) as { id?: number | string; method?: string; params?: { protocolVersion?: string } };
        if (m.id === undefined) return void res.writeHead(202).end();
        if (m.method === 'fail') return void req.socket.destroy();
        const result = m.method === 'initialize' ? { protocolVersion: m.params?.protocolVersion, capabilities: {}, serverInfo: { name: 'ids', version: '1' } } : { method: m.method };
        const answer = () => res.writeHead(200, { 'content-type': 'application/json', 'mcp-session-id': 'upstream-1' }).end(JSON.stringify({ jsonrpc: '2.0', id: m.id, result }));
        if (m.method === 'slow') slowArrived(answer);
        else answer();
      });
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    const upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}/mcp`;
    t = await startTestWarden({ servers: [{ name: 'ids', path: '/mcp', upstream: { http: { url: upstreamUrl } } }] });
    token = await t.issuer.mint({ aud: t.endpoint });
  });
  after(async () => {
    await t.close();
    upstream.closeAllConnections();
    await new Promise<void>((resolve) => upstream.close(() => resolve()));
  });

  it('an ID still pending is refused (-32600); the ID of a request the upstream failed (-32603) is free again', async () => {
    const sid = await openSession(t.endpoint, token);
    const headers = { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' };
    const [failed] = await messagesOf(await post(t.endpoint, token, { jsonrpc: '2.0', id: 5, method: 'fail' }, headers));
    assert.equal(failed.id, 5);
    assert.equal(failed.error.code, -32603);
    const [again] = await messagesOf(await post(t.endpoint, token, { jsonrpc: '2.0', id: 5, method: 'ping' }, headers));
    assert.deepEqual(again, { jsonrpc: '2.0', id: 5, result: { method: 'ping' } });

    // The slow request is pending in the session from the moment the gateway sends it upstream
    // until the upstream answers, which it does only once the reused ID has been refused.
    const arrived = new Promise<() => void>((resolve) => (slowArrived = resolve));
    const slow = post(t.endpoint, token, { jsonrpc: '2.0', id: 7, method: 'slow' }, headers);
    const answerSlow = await arrived;
    const [reused] = await messagesOf(await post(t.endpoint, token, { jsonrpc: '2.0', id: 7, method: 'ping' }, headers));
    assert.equal(reused.id, 7);
    assert.equal(reused.error.code, -32600);
    assert.match(reused.error.message, /already in use/);
    answerSlow();
    const [answered] = await messagesOf(await slow);
    assert.deepEqual(answered, { jsonrpc: '2.0', id: 7, result: { method: 'slow' } });
  });
});
