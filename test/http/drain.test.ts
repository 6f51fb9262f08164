/**
 * An instance that drains (src/http/drain.ts, `Warden.close({ drainMs })`): it takes no new
 * connection, answers `/readyz` 503 so a balancer stops sending to it (RFC 9110 §15.6.4), tells
 * clients on the connections it still has not to reuse them (`Connection: close`, RFC 9112 §9.6),
 * and a call already sent upstream is answered before the sessions end.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { connect } from 'node:net';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { startHttpUpstream, type HttpUpstreamFixture } from '../gateway/fixtures/http-upstream.ts';
import { startTestWarden, type TestWarden } from '../gateway/fixtures/warden.ts';
import { waitFor } from '../helpers/wait-for.ts';

function readyz(port: number): Promise<{ status: number }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/readyz', agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode! }));
    });
    req.on('error', reject);
    req.end();
  });
}

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

  it('MCP lifecycle §Shutdown: while a call in flight upstream is awaited, /readyz is 503 with Connection: close, no new connection is taken, and the call is answered', async () => {
    const token = await t.issuer.mint({ aud: t.endpoint });
    const { port } = t.warden;
    // A connection in the middle of its request when the drain starts: Node closes idle ones at
    // once (server.close), and this one is answered.
    const socket = connect(port, '127.0.0.1');
    let answer = '';
    socket.on('data', (chunk: Buffer) => { answer += chunk.toString('latin1'); });
    const answered = new Promise<void>((resolve) => socket.on('end', resolve));
    try {
      // Ready once its issuer's keys are fetched (src/http/health.ts).
      await waitFor(async () => (await readyz(port)).status === 200, 'the instance to be ready', { timeoutMs: 10_000, intervalMs: 20 });
      const client = new Client({ name: 'drain', version: '1.0.0' });
      await client.connect(new StreamableHTTPClientTransport(new URL(t.endpoint), { authProvider: { token: async () => token } }));
      const posts = () => upstream.requests.filter((r) => r.method === 'POST').length;
      const before = posts();
      const call = client.callTool({ name: 'wait', arguments: { ms: 1_000 } });
      await waitFor(() => posts() > before, 'the call to reach the upstream', { timeoutMs: 10_000, intervalMs: 5 });
      assert.equal(t.warden.gateway.pendingRequests(), 1);

      await new Promise<void>((resolve) => socket.write(`GET /readyz HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n`, () => resolve()));
      const closing = t.warden.close({ drainMs: 10_000 });
      socket.write('\r\n');
      await answered;
      // Not ready, and the connection not to be reused (the server ends it after the answer).
      assert.match(answer, /^HTTP\/1\.1 503 /);
      assert.match(answer, /\r\nConnection: close\r\n/i);
      await assert.rejects(readyz(port), /ECONNREFUSED/, 'a new connection is refused');
      assert.deepEqual((await call).content, [{ type: 'text', text: 'waited 1000' }]);
      await closing;
      assert.equal(t.warden.gateway.pendingRequests(), 0);
      await client.close().catch(() => {});
    } finally {
      socket.destroy();
    }
  });
});
