import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startTestWarden, type TestWarden } from './fixtures/warden.ts';
import { initializeMessage, post } from './fixtures/raw.ts';

/**
 * An upstream that answers every request with one JSON object (MCP 2025-11-25 transports §Sending
 * Messages to the Server: `Content-Type: application/json`), written by hand so the test knows
 * every byte: members in unusual orders, whitespace, escapes, an error, a repeated id.
 */
function jsonUpstream(): Server {
  const answer = (m: { id?: string | number; method: string; params?: { name?: string } }): string => {
    const id = JSON.stringify(m.id);
    // An older version than the client asked for: the gateway must read it from the answer.
    if (m.method === 'initialize') return `{"result":{"protocolVersion":"2025-03-26","capabilities":{"tools":{}},"serverInfo":{"name":"json","version":"1"}},"jsonrpc":"2.0","id":${id}}`;
    if (m.method === 'tools/list') return `{"jsonrpc":"2.0","id":${id},"result":{"tools":[{"name":"echo","inputSchema":{"type":"object"}},{"name":"secret","inputSchema":{"type":"object"}}]}}`;
    if (m.params?.name === 'fail') return `{"jsonrpc":"2.0","error":{"code":-32001,"message":"tool failed","data":{"why":"\\u00e9"}},"id":${id}}`;
    // RFC 8259 §4 leaves repeated names to the parser; JavaScript's JSON.parse keeps the last: the answer is this request's.
    if (m.params?.name === 'repeated-id') return `{"jsonrpc":"2.0","id":"someone-else","result":{"content":[]},"id":${id}}`;
    return ` { "jsonrpc" : "2.0" ,\n "id" : ${id} , "result" : { "content" : [ { "type" : "text" , "text" : "caf\u00e9 \\"q\\" \\ud83d\\ude00" } ] } } `;
  };
  return createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8').on('data', (c: string) => (body += c)).on('end', () => {
      if (req.method !== 'POST') return void res.writeHead(405).end();
      const value = JSON.parse(body);
      // MCP 2025-11-25 transports §Session Management: after initialize, every request carries the
      // session id the server gave (a server may answer 400 without it). The gateway records the
      // id of the initialize answer before routing that answer.
      if (value.method !== 'initialize' && req.headers['mcp-session-id'] !== 'upstream-1') return void res.writeHead(400).end();
      // A 2025-03-26 batch is answered with an array of the answers to its requests (JSON-RPC 2.0 §6).
      const requests = (Array.isArray(value) ? value : [value]).filter((m) => m.id !== undefined);
      if (requests.length === 0) return void res.writeHead(202).end();
      const text = Array.isArray(value) ? `[${requests.map(answer).join(',')}]` : answer(requests[0]);
      res.writeHead(200, { 'content-type': 'application/json', ...(value.method === 'initialize' ? { 'mcp-session-id': 'upstream-1' } : {}) }).end(text);
    });
  });
}

describe('HTTP upstream answering JSON (MCP 2025-11-25 transports §Sending Messages to the Server; JSON-RPC 2.0 §5)', () => {
  let upstream: Server;
  let t: TestWarden;
  let token: string;
  let sid: string;
  const headers = () => ({ 'mcp-session-id': sid, 'mcp-protocol-version': '2025-03-26' });

  before(async () => {
    upstream = jsonUpstream();
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}/mcp`;
    const policy = { default: 'deny', lists: 'usable', rules: [{ name: 'all', methods: ['*'] }, { name: 'tools', tools: ['echo', 'fail', 'repeated-id'] }] };
    t = await startTestWarden({ servers: [{ name: 'json', path: '/mcp', upstream: { http: { url } }, policy }] });
    token = await t.issuer.mint({ aud: t.endpoint });
    const init = await post(t.endpoint, token, initializeMessage('2025-06-18', 'init-1'));
    assert.equal(init.status, 200);
    assert.equal(init.headers.get('content-type'), 'application/json');
    assert.equal((await init.json()).result.protocolVersion, '2025-03-26');
    sid = init.headers.get('mcp-session-id')!;
    await (await post(t.endpoint, token, { jsonrpc: '2.0', method: 'notifications/initialized' }, headers())).text();
  });
  after(async () => {
    await t.close();
    upstream.closeAllConnections();
    await new Promise<void>((resolve) => upstream.close(() => resolve()));
  });

  it('the answer reaches the client as the bytes the upstream wrote', async () => {
    const res = await post(t.endpoint, token, { jsonrpc: '2.0', id: 41, method: 'tools/call', params: { name: 'echo', arguments: {} } }, headers());
    assert.equal(res.status, 200);
    assert.equal(await res.text(), ' { "jsonrpc" : "2.0" ,\n "id" : 41 , "result" : { "content" : [ { "type" : "text" , "text" : "caf\u00e9 \\"q\\" \\ud83d\\ude00" } ] } } ');
  });

  it('an error answer reaches the client whole, under its string id', async () => {
    const res = await post(t.endpoint, token, { jsonrpc: '2.0', id: 'call-2', method: 'tools/call', params: { name: 'fail', arguments: {} } }, headers());
    assert.equal(await res.text(), '{"jsonrpc":"2.0","error":{"code":-32001,"message":"tool failed","data":{"why":"\\u00e9"}},"id":"call-2"}');
  });

  it('policy `lists: usable`: the list result is read from the answer and filtered, the rest of the answer kept', async () => {
    const res = await post(t.endpoint, token, { jsonrpc: '2.0', id: 43, method: 'tools/list' }, headers());
    const answer = await res.json();
    assert.equal(answer.id, 43);
    assert.deepEqual(answer.result.tools.map((tool: { name: string }) => tool.name), ['echo']);
  });

  it('MCP lifecycle §Version Negotiation: the version in the upstream\'s initialize answer governs the session (2025-03-26 allows a batch)', async () => {
    const res = await post(t.endpoint, token, [
      { jsonrpc: '2.0', id: 51, method: 'tools/call', params: { name: 'echo', arguments: {} } },
      { jsonrpc: '2.0', id: 52, method: 'tools/call', params: { name: 'fail', arguments: {} } },
    ], headers());
    assert.equal(res.status, 200);
    const answers = (await res.json()) as { id: number; result?: { content: { text: string }[] }; error?: { message: string } }[];
    assert.deepEqual(answers.map((a) => a.id).sort(), [51, 52]);
    assert.equal(answers.find((a) => a.id === 51)!.result!.content[0]!.text, 'caf\u00e9 "q" \u{1f600}');
    assert.equal(answers.find((a) => a.id === 52)!.error!.message, 'tool failed');
  });

  it('RFC 8259 §4 leaves repeated names to the parser: an answer with a repeated id is routed by the one JavaScript\'s JSON.parse reads (the last), as the client reads it', async () => {
    const res = await post(t.endpoint, token, { jsonrpc: '2.0', id: 61, method: 'tools/call', params: { name: 'repeated-id', arguments: {} } }, headers());
    assert.equal(res.status, 200);
    assert.equal((await res.json()).id, 61);
  });
});
