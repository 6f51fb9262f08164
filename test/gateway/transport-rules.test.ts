import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestWarden, type TestWarden } from './fixtures/warden.ts';
import { initializeMessage, messagesOf, openSession, post, TINY_SERVER } from './fixtures/raw.ts';
import { waitFor } from '../helpers/wait-for.ts';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const call = (id: number | string, name: string, args: Record<string, unknown> = {}, meta?: Record<string, unknown>) => ({
  jsonrpc: '2.0',
  id,
  method: 'tools/call',
  params: { name, arguments: args, ...(meta ? { _meta: meta } : {}) },
});

describe('Streamable HTTP front: transport rules (MCP 2025-11-25 basic/transports)', () => {
  let t: TestWarden;
  let token: string;
  let url: string;
  const secretBefore = process.env.WARDEN_TEST_GATEWAY_SECRET;
  const auditDir = mkdtempSync(join(tmpdir(), 'warden-rules-'));
  before(async () => {
    // A secret in the gateway's own environment must never reach a child.
    process.env.WARDEN_TEST_GATEWAY_SECRET = 'do-not-leak';
    t = await startTestWarden({
      servers: [
        { name: 'tiny', path: '/mcp', upstream: { stdio: { ...TINY_SERVER, env: { CONFIGURED_VAR: 'configured' } } }, scopes: ['mcp:read'] },
        { name: 'idle', path: '/mcp/idle', upstream: { stdio: TINY_SERVER }, idleTimeoutSeconds: 1 },
        { name: 'capped', path: '/mcp/capped', upstream: { stdio: TINY_SERVER }, maxSessionsPerCaller: 2 },
        { name: 'peruser', path: '/mcp/peruser', upstream: { stdio: TINY_SERVER }, maxSessionsPerUser: 2 },
      ],
      config: { allowedOrigins: ['https://app.example'], maxBodyBytes: 4096, audit: { jsonl: join(auditDir, 'audit.jsonl') } },
    });
    url = t.endpoint;
    token = await t.issuer.mint({ aud: url, scope: 'mcp:read' });
  });
  after(async () => {
    await t.close();
    rmSync(auditDir, { recursive: true, force: true });
    if (secretBefore === undefined) delete process.env.WARDEN_TEST_GATEWAY_SECRET;
    else process.env.WARDEN_TEST_GATEWAY_SECRET = secretBefore;
  });

  it('MCP transports §Security Warning: a present, disallowed Origin gets 403 before anything else', async () => {
    const res = await post(url, token, initializeMessage(), { origin: 'https://evil.example' });
    assert.equal(res.status, 403);
    const body = await res.json();
    assert.equal(body.error.code, -32600);
  });

  it('MCP transports §Security Warning: an allowed Origin (configured or the public origin) passes and gets CORS headers', async () => {
    for (const origin of ['https://app.example', new URL(url).origin]) {
      const res = await post(url, token, initializeMessage(), { origin });
      assert.equal(res.status, 200, origin);
      assert.equal(res.headers.get('access-control-allow-origin'), origin);
      assert.match(res.headers.get('access-control-expose-headers') ?? '', /Mcp-Session-Id/);
      await res.text();
      await fetch(url, { method: 'DELETE', headers: { authorization: `Bearer ${token}`, 'mcp-session-id': res.headers.get('mcp-session-id')! } });
    }
  });

  it('MCP transports §Protocol Version Header: an unsupported MCP-Protocol-Version gets 400', async () => {
    const sid = await openSession(url, token);
    const res = await post(url, token, call(1, 'echo', { message: 'x' }), { 'mcp-session-id': sid, 'mcp-protocol-version': '1999-01-01' });
    assert.equal(res.status, 400);
    assert.match((await res.json()).error.message, /Unsupported MCP-Protocol-Version/);
  });

  it('MCP 2025-06-18 changelog (batching removed): a batch is refused (400, -32600) for 2025-06-18 and 2025-11-25 clients', async () => {
    const sid = await openSession(url, token, '2025-06-18');
    for (const version of ['2025-06-18', '2025-11-25']) {
      const res = await post(url, token, [call(1, 'echo', { message: 'a' }), call(2, 'echo', { message: 'b' })], { 'mcp-session-id': sid, 'mcp-protocol-version': version });
      assert.equal(res.status, 400);
      assert.equal((await res.json()).error.code, -32600);
    }
  });

  it('MCP 2025-03-26 transports, §Protocol Version Header: a 2025-03-26 client may batch, also without the header (missing header means 2025-03-26)', async () => {
    const sid = await openSession(url, token, '2025-03-26');
    const res = await post(url, token, [call(1, 'echo', { message: 'a' }), call('two', 'echo', { message: 'b' })], { 'mcp-session-id': sid });
    assert.equal(res.status, 200);
    const messages = await messagesOf(res);
    assert.deepEqual(messages.map((m) => m.id).sort(), [1, 'two'].sort());
    assert.deepEqual(messages.map((m) => m.result.content[0].text).sort(), ['a', 'b']);
  });

  it('413: a body over maxBodyBytes is refused', async () => {
    const sid = await openSession(url, token);
    const res = await post(url, token, call(1, 'echo', { message: 'x'.repeat(10_000) }), { 'mcp-session-id': sid });
    assert.equal(res.status, 413);
  });

  it('JSON-RPC 2.0 §5.1: invalid JSON gets 400 with a parse error (-32700); a non-message gets -32600', async () => {
    const sid = await openSession(url, token);
    const bad = await post(url, token, '{"jsonrpc": "2.0", "id": 1,', { 'mcp-session-id': sid });
    assert.equal(bad.status, 400);
    assert.deepEqual((await bad.json()).error.code, -32700);
    const notRpc = await post(url, token, { hello: 'world' }, { 'mcp-session-id': sid });
    assert.equal(notRpc.status, 400);
    assert.equal((await notRpc.json()).error.code, -32600);
  });

  it('415/406: wrong Content-Type and an Accept without JSON or SSE are refused', async () => {
    const sid = await openSession(url, token);
    const text = await post(url, token, call(1, 'echo'), { 'mcp-session-id': sid, 'content-type': 'text/plain' });
    assert.equal(text.status, 415);
    const accept = await post(url, token, call(1, 'echo'), { 'mcp-session-id': sid, accept: 'text/html' });
    assert.equal(accept.status, 406);
    const get = await fetch(url, { headers: { authorization: `Bearer ${token}`, 'mcp-session-id': sid, accept: 'application/json' } });
    assert.equal(get.status, 406);
  });

  it('RFC 9110 §12.4.2: Accept naming application/json with q=0 (and no SSE) is 406; q=0 on SSE alone leaves a JSON answer', async () => {
    const sid = await openSession(url, token);
    const refused = await post(url, token, call(1, 'echo'), { 'mcp-session-id': sid, accept: 'application/json;q=0' });
    assert.equal(refused.status, 406);
    assert.match((await refused.json()).error.message, /Not Acceptable/);
    const json = await post(url, token, call(2, 'slow', {}, { progressToken: 'p' }), { 'mcp-session-id': sid, accept: 'application/json, text/event-stream;q=0' });
    assert.equal(json.status, 200);
    assert.match(json.headers.get('content-type') ?? '', /^application\/json/);
    assert.equal((await messagesOf(json))[0].result.content[0].text, 'slow done');
  });

  it('RFC 9110 §15.5.6: other methods get 405 with Allow', async () => {
    const res = await fetch(url, { method: 'PUT', headers: { authorization: `Bearer ${token}` } });
    assert.equal(res.status, 405);
    assert.match(res.headers.get('allow') ?? '', /POST/);
  });

  it('MCP transports §Session Management: no session ID gets 400, an unknown one 404', async () => {
    const none = await post(url, token, call(1, 'echo'));
    assert.equal(none.status, 400);
    const unknown = await post(url, token, call(1, 'echo'), { 'mcp-session-id': 'not-a-session' });
    assert.equal(unknown.status, 404);
  });

  it('MCP security best practices §Session Hijacking: the same session ID with another caller\'s token gets 404; the owner keeps working', async () => {
    const sid = await openSession(url, token);
    const mallory = await t.issuer.mint({ aud: url, scope: 'mcp:read', sub: 'mallory' });
    const stolen = await post(url, mallory, call(1, 'echo', { message: 'x' }), { 'mcp-session-id': sid });
    assert.equal(stolen.status, 404);
    const otherClient = await t.issuer.mint({ aud: url, scope: 'mcp:read', client_id: 'other-client' });
    assert.equal((await post(url, otherClient, call(1, 'echo'), { 'mcp-session-id': sid })).status, 404);
    const mine = await post(url, token, call(2, 'echo', { message: 'still mine' }), { 'mcp-session-id': sid });
    assert.equal(mine.status, 200);
    assert.equal((await messagesOf(mine))[0].result.content[0].text, 'still mine');
  });

  it('MCP transports §Session Management: DELETE ends the session (204), after which it is 404', async () => {
    const sid = await openSession(url, token);
    const del = await fetch(url, { method: 'DELETE', headers: { authorization: `Bearer ${token}`, 'mcp-session-id': sid } });
    assert.equal(del.status, 204);
    const after = await post(url, token, call(1, 'echo'), { 'mcp-session-id': sid });
    assert.equal(after.status, 404);
  });

  it('MCP transports §Sending Messages to the Server: a notification is accepted with 202 and no body', async () => {
    const sid = await openSession(url, token);
    const res = await post(url, token, { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 99 } }, { 'mcp-session-id': sid });
    assert.equal(res.status, 202);
    assert.equal(await res.text(), '');
  });

  it('a crashed child ends its session: pending request gets a JSON-RPC error, then 404; other sessions are unaffected', async () => {
    const victim = await openSession(url, token);
    const bystander = await openSession(url, token);
    const crash = await post(url, token, call(1, 'crash'), { 'mcp-session-id': victim });
    assert.equal(crash.status, 200);
    const [answer] = await messagesOf(crash);
    assert.equal(answer.id, 1);
    assert.equal(answer.error.code, -32603);
    const next = await post(url, token, call(2, 'echo'), { 'mcp-session-id': victim });
    assert.equal(next.status, 404);
    const other = await post(url, token, call(3, 'echo', { message: 'alive' }), { 'mcp-session-id': bystander });
    assert.equal((await messagesOf(other))[0].result.content[0].text, 'alive');
  });

  it('stdio children get only the configured env (+ PATH/HOME/LANG), never the gateway\'s own', async () => {
    const sid = await openSession(url, token);
    const res = await post(url, token, call(1, 'env'), { 'mcp-session-id': sid });
    const env = JSON.parse((await messagesOf(res))[0].result.content[0].text) as Record<string, string>;
    assert.equal(env.CONFIGURED_VAR, 'configured');
    assert.equal(env.WARDEN_TEST_GATEWAY_SECRET, undefined);
    for (const key of Object.keys(env)) assert.ok(['CONFIGURED_VAR', 'PATH', 'HOME', 'LANG', 'TMPDIR'].includes(key), `unexpected variable ${key}`);
  });

  it('MCP transports §Sending Messages to the Server: progress is streamed as SSE on the request\'s own stream, unbuffered headers', async () => {
    const sid = await openSession(url, token);
    const res = await post(url, token, call(7, 'slow', {}, { progressToken: 'p1' }), { 'mcp-session-id': sid });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'text/event-stream');
    assert.equal(res.headers.get('x-accel-buffering'), 'no');
    assert.match(res.headers.get('cache-control') ?? '', /no-cache/);
    const messages = await messagesOf(res);
    assert.deepEqual(messages.filter((m) => m.method === 'notifications/progress').map((m) => m.params.progress), [1, 2, 3]);
    assert.equal(messages.at(-1).id, 7);
    assert.equal(messages.at(-1).result.content[0].text, 'slow done');
  });

  it('MCP transports §Listening for Messages from the Server, §Multiple Connections: a server notification unrelated to a request goes to the GET stream, once', async () => {
    const sid = await openSession(url, token);
    const get = await fetch(url, { headers: { authorization: `Bearer ${token}`, 'mcp-session-id': sid, accept: 'text/event-stream' } });
    assert.equal(get.status, 200);
    assert.equal(get.headers.get('content-type'), 'text/event-stream');
    assert.equal(get.headers.get('x-accel-buffering'), 'no');
    const streamed = messagesOf(get, 1);
    const res = await post(url, token, call(1, 'notify'), { 'mcp-session-id': sid });
    const own = await messagesOf(res);
    assert.deepEqual(own.map((m) => m.id), [1], 'the request stream carries only the response');
    const [notification] = await streamed;
    assert.equal(notification.method, 'notifications/message');
  });

  it('a server request reaches the client, and the client\'s response POST is forwarded (202)', async () => {
    const sid = await openSession(url, token);
    const res = await post(url, token, call(1, 'ask'), { 'mcp-session-id': sid });
    assert.equal(res.headers.get('content-type'), 'text/event-stream');
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let buf = '';
    let serverRequest: any;
    while (!serverRequest) {
      const { value } = await reader.read();
      buf += decoder.decode(value);
      // Skips the 2025-11-25 priming event (an ID and empty data).
      const m = /data: (.+)\n\n/.exec(buf);
      if (m) serverRequest = JSON.parse(m[1]!);
    }
    assert.equal(serverRequest.method, 'roots/list');
    const reply = await post(url, token, { jsonrpc: '2.0', id: serverRequest.id, result: { roots: [] } }, { 'mcp-session-id': sid });
    assert.equal(reply.status, 202);
    let rest = buf.slice(buf.indexOf('\n\n') + 2);
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      rest += decoder.decode(value);
    }
    assert.match(rest, /client said \{\\"roots\\":\[\]\}/);
  });

  it('idleTimeoutSeconds: an idle session is closed with its child (then 404)', async () => {
    const idleUrl = url.replace(/\/mcp$/, '/mcp/idle');
    const idleToken = await t.issuer.mint({ aud: idleUrl });
    const sid = await openSession(idleUrl, idleToken);
    assert.equal(t.warden.gateway.endpoints.get('/mcp/idle')!.sessionCount, 1);
    await waitFor(() => t.warden.gateway.endpoints.get('/mcp/idle')!.sessionCount === 0, 'the idle session to close');
    const res = await post(idleUrl, idleToken, call(1, 'echo'), { 'mcp-session-id': sid });
    assert.equal(res.status, 404);
  });

  it('idleTimeoutSeconds: each request restarts the idle clock; the session ends one idle period after the last one', async () => {
    const idleUrl = url.replace(/\/mcp$/, '/mcp/idle');
    const idleToken = await t.issuer.mint({ aud: idleUrl });
    const sid = await openSession(idleUrl, idleToken);
    const endpoint = t.warden.gateway.endpoints.get('/mcp/idle')!;
    // 2.4 s of requests 400 ms apart: more than two idle periods (1 s), never one without a request.
    // `last` is read before the last request is sent: its arrival restarts the idle clock, so the
    // session cannot end sooner than an idle period after this instant, however long the answer takes.
    let last = 0;
    for (let i = 1; i <= 6; i++) {
      await new Promise((r) => setTimeout(r, 400));
      last = Date.now();
      const res = await post(idleUrl, idleToken, call(i, 'echo', { text: 'still here' }), { 'mcp-session-id': sid });
      assert.equal(res.status, 200, `request ${i} finds its session`);
      await res.text();
    }
    await waitFor(() => endpoint.sessionCount === 0, 'the idle session to close');
    assert.ok(Date.now() - last >= 900, 'not before an idle period since the last request');
  });

  it('MCP transports §Session Management: session IDs are random UUIDs of visible ASCII', async () => {
    const a = await openSession(url, token);
    const b = await openSession(url, token);
    assert.notEqual(a, b);
    assert.match(a, /^[0-9a-f-]{36}$/);
  });

  it('maxSessionsPerCaller: one more session ends that caller\'s least recently used one; other callers are untouched', async () => {
    const capped = url.replace(/\/mcp$/, '/mcp/capped');
    const alice = await t.issuer.mint({ aud: capped });
    const bob = await t.issuer.mint({ aud: capped, sub: 'bob' });
    const bobs = await openSession(capped, bob);
    const first = await openSession(capped, alice);
    const second = await openSession(capped, alice);
    await (await post(capped, alice, call(1, 'echo'), { 'mcp-session-id': first })).text();
    const third = await openSession(capped, alice);
    assert.equal((await post(capped, alice, call(2, 'echo'), { 'mcp-session-id': second })).status, 404, 'the least recently used one ended');
    for (const [sid, token] of [[first, alice], [third, alice], [bobs, bob]] as const) {
      const res = await post(capped, token, call(3, 'echo', { message: 'ok' }), { 'mcp-session-id': sid });
      assert.equal((await messagesOf(res))[0].result.content[0].text, 'ok');
    }
  });

  it('maxSessionsPerUser: past the bound a user\'s new session is refused with 429 and a JSON-RPC error, whichever client asks; nothing of theirs is ended, other users are served', async () => {
    const peruser = url.replace(/\/mcp$/, '/mcp/peruser');
    // One person registering client after client (DCR) gets a new client_id each time.
    const [a, b, c] = await Promise.all(['dcr-1', 'dcr-2', 'dcr-3'].map((client_id) => t.issuer.mint({ aud: peruser, client_id })));
    const first = await openSession(peruser, a!);
    const second = await openSession(peruser, b!);
    const refused = await post(peruser, c!, initializeMessage());
    assert.equal(refused.status, 429);
    assert.equal(refused.headers.get('mcp-session-id'), null);
    const body = await refused.json();
    assert.equal(body.error.code, -32000);
    assert.match(body.error.message, /already holds 2 sessions on this server.*DELETE/);
    assert.equal(t.warden.gateway.endpoints.get('/mcp/peruser')!.sessionCount, 2);
    // The JSON Lines sink writes asynchronously: wait for the event rather than a fixed time.
    const audited = () => readFileSync(join(auditDir, 'audit.jsonl'), 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
    await t.warden.flushAudit();
    await waitFor(() => audited().some((e) => e.server === 'peruser' && e.clientId === 'dcr-3' && e.method === 'initialize' && e.decision === 'deny' && /maxSessionsPerUser/.test(e.reason)), 'the refusal to be audited');
    for (const [sid, tk] of [[first, a], [second, b]] as const) {
      const res = await post(peruser, tk!, call(3, 'echo', { message: 'kept' }), { 'mcp-session-id': sid });
      assert.equal((await messagesOf(res))[0].result.content[0].text, 'kept');
    }
    const bob = await t.issuer.mint({ aud: peruser, sub: 'bob' });
    await openSession(peruser, bob);
    // A DELETE frees a slot.
    assert.equal((await fetch(peruser, { method: 'DELETE', headers: { authorization: `Bearer ${a}`, 'mcp-session-id': first } })).status, 204);
    await openSession(peruser, c!);
  });
});
