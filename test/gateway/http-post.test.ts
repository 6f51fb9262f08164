import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Pool } from 'undici';
import { postUpstream, type PostReply } from '../../src/gateway/upstreams/http-post.ts';

/** An upstream whose answer the path picks: JSON, an event stream, or 202. */
function upstream(): Server {
  return createServer((req, res) => {
    req.resume().on('end', () => {
      if (req.url === '/json') res.writeHead(200, { 'content-type': 'application/json', 'mcp-session-id': 's-1' }).end('{"jsonrpc":"2.0","id":1,"result":{}}');
      else if (req.url === '/sse') res.writeHead(200, { 'content-type': 'text/event-stream' }).end('event: message\ndata: {"jsonrpc":"2.0","id":1,"result":{}}\n\n');
      else res.writeHead(202).end();
    });
  });
}

describe('POST to an HTTP upstream: a reply taken as undici completes it (MCP 2025-11-25 transports §Sending Messages to the Server)', () => {
  let server: Server;
  let pool: Pool;
  before(async () => {
    server = upstream();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    pool = new Pool(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  });
  after(async () => {
    await pool.close();
    await new Promise((resolve) => server.close(resolve));
  });
  const options = (path: string) => ({ path, method: 'POST' as const, headers: { 'content-type': 'application/json' }, body: '{"jsonrpc":"2.0","id":1,"method":"ping"}' });

  it('a reply the early reader takes is not handed back; one it declines is, whole', async () => {
    const seen: PostReply[] = [];
    const taken = await postUpstream(pool, options('/json'), (reply) => (seen.push(reply), true));
    assert.equal(taken, undefined);
    assert.equal(seen.length, 1);
    assert.deepEqual({ ...seen[0] }, { statusCode: 200, contentType: 'application/json', sessionId: 's-1', text: '{"jsonrpc":"2.0","id":1,"result":{}}', stream: undefined });

    const declined = await postUpstream(pool, options('/json'), () => false);
    assert.equal(declined?.text, '{"jsonrpc":"2.0","id":1,"result":{}}');
    const accepted = await postUpstream(pool, options('/accepted'), () => false);
    assert.equal(accepted?.statusCode, 202);
  });

  it('the early reader runs before the promise settles', async () => {
    const order: string[] = [];
    const pending = postUpstream(pool, options('/json'), () => (order.push('early'), true));
    void pending.then(() => order.push('settled'));
    await pending;
    await Promise.resolve();
    assert.deepEqual(order, ['early', 'settled']);
  });

  it('an early reader that throws rejects the promise with its error: the request is not left waiting', { timeout: 5000 }, async () => {
    await assert.rejects(
      postUpstream(pool, options('/json'), () => {
        throw new Error('reader failed');
      }),
      /reader failed/,
    );
    // The connection serves the next request.
    assert.equal((await postUpstream(pool, options('/json')))?.statusCode, 200);
  });

  it('an event stream never goes to the early reader: it is handed back as a stream', async () => {
    let called = false;
    const reply = await postUpstream(pool, options('/sse'), () => (called = true));
    assert.equal(called, false);
    assert.ok(reply?.stream);
    let text = '';
    for await (const chunk of reply.stream) text += chunk;
    assert.match(text, /"result":\{\}/);
  });
});
