import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { startTestWarden, type TestWarden } from './fixtures/warden.ts';
import { messagesOf, openSession, post } from './fixtures/raw.ts';
import { waitFor } from '../helpers/wait-for.ts';

const require = createRequire(import.meta.url);
const DEADLINE_SERVER = { command: process.execPath, args: ['--import', require.resolve('tsx'), fileURLToPath(new URL('./fixtures/deadline-server.ts', import.meta.url))] };

/** A `hang` call (never answered upstream), padded in `_meta` to make the body bigger. */
const hang = (id: number | string, pad = 0) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'hang', arguments: {}, _meta: { pad: 'x'.repeat(pad) } } });
const ping = (id: number | string) => ({ jsonrpc: '2.0', id, method: 'ping' });

describe('bounded state per session: pending requests capped in count and bytes, released at their deadline', () => {
  let t: TestWarden;
  const at = (path: string) => `${t.warden.url}${path}`;
  // streamAfterMs: a waiting answer becomes SSE at once, so the response headers arriving is the
  // positive signal that the gateway holds the request as pending.
  const common = { upstream: { stdio: DEADLINE_SERVER }, sse: { streamAfterMs: 50 } };
  before(async () => {
    t = await startTestWarden({
      servers: [
        { name: 'count', path: '/mcp/count', ...common, maxPendingRequests: 2, requestTimeoutSeconds: 4 },
        { name: 'bytes', path: '/mcp/bytes', ...common, maxPendingBytes: 3000, requestTimeoutSeconds: 30 },
        { name: 'idle', path: '/mcp/idle', ...common, idleTimeoutSeconds: 1, requestTimeoutSeconds: 1 },
      ],
    });
  });
  after(async () => t.close());

  async function session(path: string, version = '2025-11-25'): Promise<{ url: string; token: string; headers: Record<string, string> }> {
    const tok = await t.issuer.mint({ aud: at(path) });
    const sid = await openSession(at(path), tok, version);
    return { url: at(path), token: tok, headers: { 'mcp-session-id': sid, 'mcp-protocol-version': version } };
  }

  it('past servers[].maxPendingRequests a POST is refused whole with 429, Retry-After and the limit named; an abandoned request frees its place at its deadline', async () => {
    const s = await session('/mcp/count');
    const first = await post(s.url, s.token, hang(1), s.headers);
    const second = await post(s.url, s.token, hang(2), s.headers);
    assert.equal(first.headers.get('content-type'), 'text/event-stream');
    assert.equal(second.headers.get('content-type'), 'text/event-stream');
    const refused = await post(s.url, s.token, hang(3), s.headers);
    assert.equal(refused.status, 429);
    assert.match(refused.headers.get('retry-after') ?? '', /^[1-9]\d*$/);
    const body = await refused.json();
    assert.equal(body.id, null);
    assert.match(body.error.message, /^Too many pending requests: this session already has 2 requests waiting for the upstream \(servers\[\]\.maxPendingRequests\)/);
    // The client goes away without cancelling (a disconnect is not a cancellation): only the
    // deadline frees the two places.
    await first.body!.cancel();
    await second.body!.cancel();
    let id = 10;
    await waitFor(async () => {
      const res = await post(s.url, s.token, ping(id++), s.headers);
      await res.text();
      return res.status === 200;
    }, 'the abandoned requests to leave at their deadline', { timeoutMs: 30_000, intervalMs: 200 });
  });

  it('JSON-RPC 2.0 §6: in a batch (2025-03-26) the requests past the cap get an error naming it, the admitted ones are forwarded and answered', async () => {
    const s = await session('/mcp/count', '2025-03-26');
    const res = await post(s.url, s.token, [hang(1), hang(2), hang(3), ping(4)], s.headers);
    assert.equal(res.status, 200);
    const answers = await messagesOf(res);
    const byId = new Map(answers.map((m) => [m.id, m]));
    assert.equal(byId.size, 4);
    assert.equal(byId.get(3).error.code, -32000);
    assert.match(byId.get(3).error.message, /servers\[\]\.maxPendingRequests/);
    assert.equal(byId.get(4).error.code, -32000, 'the cap counts the requests of the batch itself');
    assert.equal(byId.get(1).error.code, -32001, 'an admitted request is answered at its deadline');
    assert.equal(byId.get(2).error.code, -32001);
  });

  it('past servers[].maxPendingBytes a request is refused (429); a small one still fits, and the only pending request is never refused for its size', async () => {
    const s = await session('/mcp/bytes');
    const big = await post(s.url, s.token, hang(1, 2000), s.headers);
    assert.equal(big.headers.get('content-type'), 'text/event-stream');
    const refused = await post(s.url, s.token, hang(2, 2000), s.headers);
    assert.equal(refused.status, 429);
    assert.match((await refused.json()).error.message, /would exceed 3000 bytes \(servers\[\]\.maxPendingBytes\)/);
    const small = await post(s.url, s.token, ping(3), s.headers);
    assert.deepEqual(await small.json(), { jsonrpc: '2.0', id: 3, result: {} });
    await big.body!.cancel();

    const other = await session('/mcp/bytes');
    const alone = await post(other.url, other.token, hang(1, 5000), other.headers);
    assert.equal(alone.status, 200);
    assert.equal(alone.headers.get('content-type'), 'text/event-stream');
    await alone.body!.cancel();
  });

  it('idle reaping: a session whose only activity is an abandoned request past its deadline is reaped', async () => {
    const endpoint = t.warden.gateway.endpoints.get('/mcp/idle')!;
    const before = endpoint.sessionCount;
    const s = await session('/mcp/idle');
    assert.equal(endpoint.sessionCount, before + 1);
    const res = await post(s.url, s.token, hang(1), s.headers);
    // The client goes away without reading (the answer may already be the -32001 on a slow machine).
    await res.body!.cancel();
    await waitFor(() => endpoint.sessionCount === before, 'the session to be reaped as idle', { timeoutMs: 30_000, intervalMs: 100 });
    const gone = await post(s.url, s.token, ping(2), s.headers);
    assert.equal(gone.status, 404);
  });
});
