import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type ServerResponse } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { DEFAULT_SSE_LIMITS, Session } from '../../src/gateway/session.ts';
import { startSseResponse } from '../../src/gateway/sse.ts';
import { waitFor } from '../helpers/wait-for.ts';

const binding = { subject: 'alice', clientId: 'c', audience: 'http://127.0.0.1/mcp', serverPath: '/mcp' };

describe('SSE streams of a session: an answered stream whose client does not read (MCP 2025-11-25 transports §Sending Messages)', () => {
  let http: Server;
  const responses: { res: ServerResponse; socket: Socket }[] = [];
  before(async () => {
    http = createServer((req, res) => {
      startSseResponse(res);
      responses.push({ res, socket: req.socket });
    });
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  });
  after(async () => {
    http.closeAllConnections();
    await new Promise<void>((resolve) => http.close(() => resolve()));
  });

  /** An SSE response on a real connection whose client never reads (the socket is paused). */
  async function unreadResponse(): Promise<{ res: ServerResponse; socket: Socket; client: Socket }> {
    const before = responses.length;
    const client = connect((http.address() as AddressInfo).port, '127.0.0.1');
    client.pause();
    client.on('error', () => {});
    client.write('GET /mcp HTTP/1.0\r\nAccept: text/event-stream\r\n\r\n');
    await waitFor(() => responses.length > before, 'the request to arrive');
    return { ...responses[before]!, client };
  }

  it('transports §Sending Messages: an answered stream not drained within drainTimeoutMs is cut (socket destroyed, logged as a cut), not kept open', async () => {
    const session = new Session(binding, 60_000, () => {}, { ...DEFAULT_SSE_LIMITS, maxUnreadBytes: 1 << 30, replayMaxBytes: 1 << 30, replayMaxEvents: 100_000, drainTimeoutMs: 200 });
    const cuts: number[] = [];
    session.onCut = (stream) => cuts.push(stream);
    const { res, socket, client } = await unreadResponse();
    const stream = session.openStream();
    stream.attach(res, undefined, false);
    const pad = 'x'.repeat(16 * 1024);
    // ~10 MB: more than the kernel's socket buffers hold for a client that does not read.
    for (let i = 0; i < 600; i++) stream.send(JSON.stringify({ jsonrpc: '2.0', method: 'notifications/message', params: { i, pad } }));
    stream.send(JSON.stringify({ jsonrpc: '2.0', id: 1, result: {} }));
    stream.finish();
    assert.ok(socket.writableLength > 0, 'the connection is full: the client does not read');
    assert.equal(socket.destroyed, false, 'the answered stream first gets time to drain');
    await waitFor(() => socket.destroyed, 'the undrained connection to be cut at the deadline');
    assert.deepEqual(cuts, [stream.no]);
    client.destroy();
    await session.end('test over');
  });

  it('transports §Sending Messages: an answered stream whose client reads within drainTimeoutMs gets every event and a clean end', async () => {
    const session = new Session(binding, 60_000, () => {}, { ...DEFAULT_SSE_LIMITS, maxUnreadBytes: 1 << 30, replayMaxBytes: 1 << 30, replayMaxEvents: 100_000, drainTimeoutMs: 60_000 });
    const { res, socket, client } = await unreadResponse();
    const stream = session.openStream();
    stream.attach(res, undefined, false);
    const pad = 'x'.repeat(16 * 1024);
    const sent = 600;
    for (let i = 0; i < sent; i++) stream.send(JSON.stringify({ jsonrpc: '2.0', method: 'notifications/message', params: { i, pad } }));
    assert.ok(socket.writableLength > 0, 'the connection is full until the client reads');
    stream.send(JSON.stringify({ jsonrpc: '2.0', id: 1, result: {} }));
    stream.finish();
    let raw = '';
    client.setEncoding('utf8');
    client.on('data', (c: string) => (raw += c));
    const ended = new Promise<void>((resolve) => client.on('end', () => resolve()));
    client.resume();
    await ended;
    assert.equal((raw.match(/notifications\/message/g) ?? []).length, sent, 'every event once');
    assert.match(raw, /"id":1,"result":\{\}\}\n\n$/, 'the response last, then the end');
    await session.end('test over');
  });
});
