/**
 * The bridge's Streamable HTTP side on the wire, against a scripted endpoint on node:http (each
 * test answers as the transport spec lets a server answer, including the cases a gateway rarely
 * produces: SSE resumption, a server stream, a refused token). Whole journeys through the real
 * gateway are in test/e2e/client-*.test.ts.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { once } from 'node:events';
import { PassThrough } from 'node:stream';
import { runStdioBridge } from '../../src/client/bridge.ts';
import type { BridgeAuthority } from '../../src/client/streamable-http.ts';
import { Capture } from './sign-in.ts';

interface Seen {
  method: string;
  headers: IncomingMessage['headers'];
  body: string;
}

const INITIALIZE = '{"jsonrpc":"2.0",  "id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"host","version":"1"},"x":"é"}}';
const INITIALIZED = '{"jsonrpc":"2.0","method":"notifications/initialized"}';
const initializeResult = (id: unknown) => JSON.stringify({ jsonrpc: '2.0', id, result: { protocolVersion: '2025-11-25', capabilities: {}, serverInfo: { name: 'scripted', version: '1' } } });

describe('the bridge speaks MCP 2025-11-25 Streamable HTTP on node:http', () => {
  let server: Server;
  let url: string;
  let seen: Seen[];
  /** The per-test part of the endpoint: answers everything but initialize and initialized. */
  let answer: (req: IncomingMessage, res: ServerResponse, body: string) => void;

  before(async () => {
    server = createServer(async (req, res) => {
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      const body = Buffer.concat(chunks).toString('utf8');
      seen.push({ method: req.method!, headers: req.headers, body });
      const message = body ? (JSON.parse(body) as { id?: unknown; method?: string }) : {};
      if (req.method === 'POST' && message.method === 'initialize') {
        res.writeHead(200, { 'content-type': 'application/json', 'mcp-session-id': 'session-1' }).end(initializeResult(message.id));
      } else if (req.method === 'POST' && message.id === undefined) {
        res.writeHead(202).end();
      } else if (req.method === 'DELETE') {
        res.writeHead(200).end();
      } else {
        answer(req, res, body);
      }
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    url = `http://127.0.0.1:${(server.address() as { port: number }).port}/mcp`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  /** An authority with a stored token whose full-client fetch is counted (and may be given). */
  function authority(token: string | undefined, fullFetch?: BridgeAuthority['fetch']): BridgeAuthority & { fullCalls: number } {
    const a = {
      serverUrl: url,
      fullCalls: 0,
      storedBearerToken: async () => token,
      fetch: async (input: string, init: RequestInit) => {
        a.fullCalls += 1;
        if (!fullFetch) throw new Error('the full client was not expected');
        return fullFetch(input, init);
      },
    };
    return a;
  }

  function start(warden: BridgeAuthority) {
    seen = [];
    const stdin = new PassThrough();
    const stdout = new Capture();
    const notices: string[] = [];
    const done = runStdioBridge({ warden, stdin, stdout, onNotice: (m) => notices.push(m) });
    stdin.write(`${INITIALIZE}\n${INITIALIZED}\n`);
    return { stdin, stdout, notices, done };
  }

  it('transports §Sending Messages: the host\'s lines go out byte for byte with the stored Bearer token, Mcp-Session-Id and MCP-Protocol-Version, and DELETE ends the session', async () => {
    answer = (req, res) => {
      if (req.method === 'GET') return void res.writeHead(405).end();
      // An SSE answer: a notification before the response, both handed to the host as they are.
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end('event: message\ndata: {"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","data":"listing"}}\n\ndata: {"jsonrpc":"2.0","id":2,"result":{"tools":[]}}\n\n');
    };
    const warden = authority('stored-token');
    const { stdin, stdout, done } = start(warden);
    const list = '{"jsonrpc":"2.0","id":2,"method":"tools/list"}';
    stdin.end(`${list}\n`);
    assert.equal(await done, 0);

    const posts = seen.filter((s) => s.method === 'POST');
    assert.deepEqual(posts.map((s) => s.body), [INITIALIZE, INITIALIZED, list]);
    assert.equal(posts[0]!.headers['mcp-session-id'], undefined, 'no session id on initialize');
    for (const post of posts) {
      assert.equal(post.headers.authorization, 'Bearer stored-token');
      assert.equal(post.headers.accept, 'application/json, text/event-stream');
    }
    assert.equal(posts[2]!.headers['mcp-session-id'], 'session-1');
    assert.equal(posts[2]!.headers['mcp-protocol-version'], '2025-11-25');
    const deleted = seen.find((s) => s.method === 'DELETE');
    assert.equal(deleted?.headers['mcp-session-id'], 'session-1', 'transports §Session Management: DELETE with the session id on exit');
    assert.deepEqual(stdout.text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as unknown), [
      JSON.parse(initializeResult(1)),
      { jsonrpc: '2.0', method: 'notifications/message', params: { level: 'info', data: 'listing' } },
      { jsonrpc: '2.0', id: 2, result: { tools: [] } },
    ]);
    assert.equal(warden.fullCalls, 0, 'with a usable stored token the full client is never asked');
  });

  it('transports §Resumability and Redelivery: an SSE answer that ends after its priming event is resumed with GET and Last-Event-ID', async () => {
    answer = (req, res) => {
      if (req.method === 'GET' && req.headers['last-event-id'] === 'call-3-primed') {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        return void res.end('id: call-3-done\ndata: {"jsonrpc":"2.0","id":3,"result":{"content":[]}}\n\n');
      }
      if (req.method === 'GET') return void res.writeHead(405).end();
      // The server closes the stream after a priming event (an id, no data), with a short retry.
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end('retry: 20\nid: call-3-primed\ndata:\n\n');
    };
    const { stdin, stdout, done } = start(authority('stored-token'));
    stdin.write('{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"slow","arguments":{}}}\n');
    await stdout.waitFor(/"id":3,"result"/);
    stdin.end();
    assert.equal(await done, 0);
    const resumed = seen.find((s) => s.method === 'GET' && s.headers['last-event-id'] === 'call-3-primed');
    assert.ok(resumed, 'a GET carried Last-Event-ID');
    assert.equal(resumed.headers['mcp-session-id'], 'session-1');
  });

  it('transports §Listening for Messages from the Server: after initialized, the GET stream\'s messages reach the host', async () => {
    let stream: ServerResponse | undefined;
    answer = (req, res) => {
      if (req.method !== 'GET') return void res.writeHead(400).end();
      stream = res;
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: {"jsonrpc":"2.0","method":"notifications/tools/list_changed"}\n\n');
    };
    const { stdin, stdout, done } = start(authority('stored-token'));
    await stdout.waitFor(/notifications\/tools\/list_changed/);
    stdin.end();
    assert.equal(await done, 0, 'stdin ending closes the open stream too');
    assert.equal(seen.find((s) => s.method === 'GET')?.headers.accept, 'text/event-stream');
    stream?.end();
  });

  it('RFC 6750 §3.1: a 401 to the stored token sends the request again through the full client, whose answer reaches the host', async () => {
    answer = (req, res) => {
      if (req.method === 'GET') return void res.writeHead(405).end();
      if (req.headers.authorization !== 'Bearer renewed') {
        return void res.writeHead(401, { 'www-authenticate': 'Bearer error="invalid_token"' }).end();
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"jsonrpc":"2.0","id":4,"result":{}}');
    };
    // The full client's part (session.ts): a new token, then the request again.
    const warden = authority('revoked', (input, init) => fetch(input, { ...init, headers: { ...(init.headers as Record<string, string>), authorization: 'Bearer renewed' } }));
    const { stdin, stdout, done } = start(warden);
    stdin.end('{"jsonrpc":"2.0","id":4,"method":"ping"}\n');
    assert.equal(await done, 0);
    assert.match(stdout.text, /\{"jsonrpc":"2.0","id":4,"result":\{\}\}\n/);
    const pings = seen.filter((s) => s.body.includes('"ping"'));
    assert.deepEqual(pings.map((s) => s.headers.authorization), ['Bearer revoked', 'Bearer renewed']);
    assert.deepEqual(pings.map((s) => s.body), ['{"jsonrpc":"2.0","id":4,"method":"ping"}', '{"jsonrpc":"2.0","id":4,"method":"ping"}']);
  });
});
