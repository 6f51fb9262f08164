/**
 * An instance that drains (src/http/drain.ts, `Warden.close({ drainMs })`). It answers `/readyz`
 * 503 so a balancer stops sending to it (RFC 9110 §15.6.4), opens no session (503
 * `shutting_down`, Retry-After), closes every connection after its answer (`Connection: close`,
 * RFC 9112 §9.6) including the answers it still owes, and still serves the sessions it has: a call
 * already sent upstream is answered, and so is a new request of that session, which may be what
 * the call waits for (an answer to an elicitation, a cancellation). Then it takes no connection.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startHttpUpstream, type HttpUpstreamFixture } from '../gateway/fixtures/http-upstream.ts';
import { initializeMessage, messagesOf, openSession, post, postInParts, TINY_SERVER } from '../gateway/fixtures/raw.ts';
import { startTestWarden, type TestWarden } from '../gateway/fixtures/warden.ts';
import { waitFor } from '../helpers/wait-for.ts';

const call = (id: number, name: string, args: Record<string, unknown>) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args } });
const textOf = async (res: Response) => (await messagesOf(res)).map((m) => m.result?.content?.[0]?.text as string);

describe('draining at shutdown', () => {
  let upstream: HttpUpstreamFixture;
  let t: TestWarden;
  before(async () => {
    upstream = await startHttpUpstream();
    t = await startTestWarden({ servers: [{ name: 'remote', path: '/mcp/remote', upstream: { http: { url: upstream.url } } }] });
  });
  after(async () => {
    await t.close();
    await upstream.close();
  });

  it('MCP lifecycle §Shutdown: while a call in flight upstream is awaited, the session is served, nothing new is opened, every answer closes its connection; then no connection is taken', async () => {
    const token = await t.issuer.mint({ aud: t.endpoint });
    const readyz = () => fetch(`${t.warden.url}/readyz`);
    // Ready once its issuer's keys are fetched (src/http/health.ts).
    await waitFor(async () => (await readyz()).status === 200, 'the instance to be ready', { timeoutMs: 10_000, intervalMs: 20 });
    const sid = await openSession(t.endpoint, token);
    const h = { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' };
    const posts = () => upstream.requests.filter((r) => r.method === 'POST').length;
    const before = posts();
    const inFlight = post(t.endpoint, token, call(2, 'wait', { ms: 1_500 }), h);
    await waitFor(() => posts() > before, 'the call to reach the upstream', { timeoutMs: 10_000, intervalMs: 5 });
    assert.equal(t.warden.gateway.pendingRequests(), 1);

    const closing = t.warden.close({ drainMs: 10_000 });
    const ready = await readyz();
    assert.equal(ready.status, 503);
    assert.equal(ready.headers.get('connection'), 'close');
    const opening = await post(t.endpoint, token, initializeMessage());
    assert.equal(opening.status, 503);
    assert.equal(opening.headers.get('retry-after'), '1');
    assert.equal((await opening.json() as { error: { code: number } }).error.code, -32603);
    // A request of the session it has, during the drain: served.
    const during = await post(t.endpoint, token, call(3, 'echo', { message: 'during the drain' }), h);
    assert.equal(during.status, 200);
    assert.equal(during.headers.get('connection'), 'close');
    assert.deepEqual(await textOf(during), ['during the drain']);
    // Answered as a stream (progress first): it closes its connection too.
    const streamed = await post(t.endpoint, token, { ...call(4, 'count', { n: 2 }), params: { name: 'count', arguments: { n: 2 }, _meta: { progressToken: 'p' } } }, h);
    assert.match(streamed.headers.get('content-type') ?? '', /^text\/event-stream/);
    assert.equal(streamed.headers.get('connection'), 'close');
    assert.deepEqual((await messagesOf(streamed)).map((m) => m.method ?? m.result?.content?.[0]?.text), ['notifications/progress', 'notifications/progress', 'counted 2']);

    const answered = await inFlight;
    assert.equal(answered.status, 200);
    assert.equal(answered.headers.get('connection'), 'close', 'the answer owed when the drain began closes its connection too');
    assert.deepEqual(await textOf(answered), ['waited 1500']);
    await closing;
    assert.equal(t.warden.gateway.pendingRequests(), 0);
    await assert.rejects(readyz(), (err: Error & { cause?: { code?: string } }) => err.cause?.code === 'ECONNREFUSED', 'a new connection is refused');
  });

  it('MCP lifecycle §Shutdown: an initialize whose upstream is still starting when the drain begins is waited for and answered', async () => {
    // The child's token comes from an RFC 8693 exchange at an authorization server that takes 800 ms.
    let exchanges = 0;
    const as = createServer((req, res) => {
      exchanges++;
      req.resume();
      setTimeout(() => {
        res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
        res.end(JSON.stringify({ access_token: 'exchanged-token-for-the-child', issued_token_type: 'urn:ietf:params:oauth:token-type:access_token', token_type: 'Bearer', expires_in: 300 }));
      }, 800);
    });
    await new Promise<void>((resolve) => as.listen(0, '127.0.0.1', resolve));
    const w = await startTestWarden({ servers: [{
      name: 'exchanged', path: '/mcp/exchanged', upstream: { stdio: TINY_SERVER },
      downstream: { tokenExchange: { audience: 'https://api.example', tokenEndpoint: `http://127.0.0.1:${(as.address() as AddressInfo).port}/token`, clientId: 'gateway', clientSecret: 'gateway-secret', env: 'API_TOKEN' } },
    }] });
    try {
      const token = await w.issuer.mint({ aud: w.endpoint });
      const opening = post(w.endpoint, token, initializeMessage());
      await waitFor(() => exchanges === 1, 'the exchange for the child to begin', { timeoutMs: 10_000, intervalMs: 5 });
      assert.equal(w.warden.gateway.pendingRequests(), 1, 'the initialize still starting its upstream is counted');
      const closing = w.warden.close({ drainMs: 10_000 });
      const res = await opening;
      assert.equal(res.status, 200);
      assert.ok(res.headers.get('mcp-session-id'));
      assert.equal(res.headers.get('connection'), 'close');
      assert.equal((await messagesOf(res))[0]?.result?.serverInfo?.name !== undefined, true);
      await closing;
    } finally {
      await w.close();
      as.close();
    }
  });

  it('MCP lifecycle §Shutdown: a request whose body is still arriving when the drain begins is waited for and answered', async () => {
    const w = await startTestWarden({ servers: [{ name: 'remote', path: '/mcp/remote', upstream: { http: { url: upstream.url } } }] });
    try {
      const token = await w.issuer.mint({ aud: w.endpoint });
      const sid = await openSession(w.endpoint, token);
      // Part of the body now, the rest once the drain has begun.
      const arriving = postInParts(w.endpoint, token, call(5, 'echo', { message: 'sent slowly' }), { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' });
      await waitFor(() => w.warden.gateway.pendingRequests() === 1, 'the request to be counted while its body arrives', { timeoutMs: 5_000, intervalMs: 5 });
      const closing = w.warden.close({ drainMs: 10_000 });
      // The drain's first look (every 50 ms) finds it still arriving.
      await new Promise((resolve) => setTimeout(resolve, 200));
      arriving.rest();
      const res = await arriving.answer;
      assert.equal(res.status, 200);
      assert.equal(res.headers.connection, 'close');
      assert.match(res.text, /sent slowly/);
      await closing;
      assert.equal(w.warden.gateway.pendingRequests(), 0);
    } finally {
      await w.close();
    }
  });
});
