import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startTestWarden, type TestWarden } from './fixtures/warden.ts';
import { messagesOf, openSession, post } from './fixtures/raw.ts';
import { waitFor } from '../helpers/wait-for.ts';
import { createParser } from 'eventsource-parser';
import { completeTrailingCr, createHttpUpstream } from '../../src/gateway/upstreams/http.ts';
import { noDownstreamCredentials } from '../../src/downstream/types.ts';
import { createLogger } from '../../src/log.ts';
import type { JsonRpcMessage } from '../../src/gateway/jsonrpc.ts';
import type { Caller } from '../../src/kernel/caller.ts';
import type { ServerConfig } from '../../src/config/schema.ts';

const TEXT = '日本語 ✓ 𝄞';

/** Writes `parts` one by one, each after the previous one left the socket, so they arrive as separate chunks. */
async function writeApart(res: ServerResponse, parts: Buffer[]): Promise<void> {
  res.socket?.setNoDelay(true);
  for (const part of parts) {
    await new Promise<void>((resolve) => res.write(part, () => resolve()));
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** Cuts `bytes` inside every multi-byte UTF-8 character, so no character arrives whole in one chunk. */
function splitInsideCharacters(bytes: Buffer): Buffer[] {
  const parts: Buffer[] = [];
  let start = 0;
  for (let i = 1; i < bytes.length; i++) {
    // A continuation byte (10xxxxxx) right after a lead byte: cut between them.
    if ((bytes[i]! & 0xc0) === 0x80 && (bytes[i - 1]! & 0xc0) === 0xc0) {
      parts.push(bytes.subarray(start, i));
      start = i;
    }
  }
  parts.push(bytes.subarray(start));
  return parts;
}

/**
 * A Streamable HTTP upstream written on node:http: `tools/call` answers on an SSE stream whose
 * bytes are cut inside UTF-8 characters and whose lines end in bare CR (both allowed on the wire).
 */
function rawUpstream(): Server {
  return createServer((req, res) => {
    if (req.method === 'GET') return void res.writeHead(405).end();
    if (req.method === 'DELETE') return void res.writeHead(200).end();
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      const m = JSON.parse(body) as { id?: number | string; method?: string; params?: { protocolVersion?: string; name?: string } };
      if (m.id === undefined) return void res.writeHead(202).end();
      if (m.method === 'initialize') {
        const result = { protocolVersion: m.params?.protocolVersion, capabilities: { tools: {} }, serverInfo: { name: 'raw', version: '1' } };
        return void res.writeHead(200, { 'content-type': 'application/json', 'mcp-session-id': 'raw-1' }).end(JSON.stringify({ jsonrpc: '2.0', id: m.id, result }));
      }
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      const progress = JSON.stringify({ jsonrpc: '2.0', method: 'notifications/message', params: { level: 'info', data: TEXT } });
      const answer = JSON.stringify({ jsonrpc: '2.0', id: m.id, result: { content: [{ type: 'text', text: TEXT }] } });
      const stream = m.params?.name === 'cr' || m.params?.name === 'cr-open'
        // HTML §9.2.5: end-of-line is CRLF, LF or a bare CR; an event ends with an empty line.
        ? `event: message\rdata: ${progress}\r\rid: e1\rdata: ${answer}\r\r`
        : `data: ${progress}\n\nid: e1\ndata: ${answer}\n\n`;
      // `cr-open` keeps the stream open after its last event: the event must be dispatched on its
      // own final CR, not when the stream ends.
      void writeApart(res, splitInsideCharacters(Buffer.from(stream, 'utf8'))).then(() => (m.params?.name === 'cr-open' ? undefined : res.end()));
    });
  });
}

describe('HTTP upstream SSE decoding (HTML §9.2 event streams, MCP 2025-11-25 transports §Streamable HTTP)', () => {
  let upstream: Server;
  let t: TestWarden;
  let token: string;
  before(async () => {
    upstream = rawUpstream();
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}/mcp`;
    t = await startTestWarden({ servers: [{ name: 'raw', path: '/mcp', upstream: { http: { url } } }] });
    token = await t.issuer.mint({ aud: t.endpoint });
  });
  after(async () => {
    await t.close();
    upstream.closeAllConnections();
    await new Promise<void>((resolve) => upstream.close(() => resolve()));
  });

  for (const [name, tool] of [['LF line ends', 'lf'], ['bare CR line ends', 'cr'], ['bare CR line ends, stream left open after the last event', 'cr-open']] as const) {
    it(`HTML §9.2.5 (UTF-8 decode as a stream, ${name}): a character split across chunks arrives whole, and every event is delivered`, async () => {
      const sid = await openSession(t.endpoint, token);
      const res = await post(t.endpoint, token, { jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: tool, arguments: {} } }, { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' });
      assert.equal(res.status, 200);
      const messages = await messagesOf(res, 2);
      assert.equal(messages.length, 2, 'the notification and the answer both arrive');
      assert.equal(messages[0].params.data, TEXT);
      assert.equal(messages[1].id, 7);
      assert.equal(messages[1].result.content[0].text, TEXT);
      assert.doesNotMatch(JSON.stringify(messages), /\uFFFD/);
    });
  }
});

describe('HTML §9.2.5 line ends across chunk boundaries', () => {
  const events = (chunks: string[]) => {
    const out: string[] = [];
    const parser = createParser({ onEvent: (e) => out.push(e.data) });
    const feed = completeTrailingCr((text) => parser.feed(text));
    for (const chunk of chunks) feed(chunk);
    return out;
  };

  it('a CR ending one chunk and an LF opening the next are one line end (CRLF), not two', () => {
    assert.deepEqual(events(['data: a\r', '\ndata: b\r', '\n\r', '\n']), ['a\nb']);
  });

  it('a bare CR ending a chunk ends its line at once (the event is not held until more bytes arrive)', () => {
    assert.deepEqual(events(['data: a\r\r']), ['a']);
    assert.deepEqual(events(['data: a\r', '\r']), ['a']);
  });

  it('a chunk that is only the LF of a CRLF adds nothing', () => {
    assert.deepEqual(events(['data: a\r', '\n', '\n']), ['a']);
  });
});

describe('HTTP upstream SSE buffer bound', () => {
  let upstream: Server;
  let url: string;
  let closedSockets = 0;
  before(async () => {
    // An upstream that answers with an event whose data line never ends.
    upstream = createServer((req, res) => {
      res.on('close', () => closedSockets++);
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (c: string) => (body += c));
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write('data: ');
        const line = Buffer.alloc(4096, 'x');
        const more = () => {
          if (res.destroyed || !res.writable) return;
          if (res.write(line)) setImmediate(more);
          else res.once('drain', more);
        };
        more();
      });
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}/mcp`;
  });
  after(async () => {
    upstream.closeAllConnections();
    await new Promise<void>((resolve) => upstream.close(() => resolve()));
  });

  it('an upstream line that never ends is cut at the bound: the stream closes and the waiting request gets a JSON-RPC -32603 error', async () => {
    const http = createHttpUpstream({
      server: { name: 'endless', path: '/mcp' } as ServerConfig,
      http: { url, headers: {} } as never,
      logger: createLogger('silent'),
      downstream: noDownstreamCredentials,
      maxSseBufferChars: 64 * 1024,
    });
    const received: JsonRpcMessage[] = [];
    const connection = await http.connect({ sessionId: 's', caller: {} as Caller, events: { message: (m) => received.push(m), closed: () => {} } });
    try {
      await connection.send([{ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'x' } }], '2025-11-25', {} as Caller);
      await waitFor(() => received.length > 0, 'the error answer for the cut stream');
      const answer = received[0] as { id: number; error?: { code: number; message: string } };
      assert.equal(answer.id, 1);
      assert.equal(answer.error?.code, -32603);
      assert.match(answer.error!.message, /larger than the gateway accepts/);
      await waitFor(() => closedSockets > 0, 'the upstream response to be closed by the gateway');
    } finally {
      await connection.close();
      await http.close();
    }
  });
});
