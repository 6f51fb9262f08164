import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createSseParser } from '../../src/gateway/sse.ts';
import { parseJsonRpcBody, parseJsonRpcMessage, rememberRaw, serialize, serializeLine } from '../../src/gateway/jsonrpc.ts';
import { accepts } from '../../src/gateway/accept.ts';
import { GatewayError } from '../../src/gateway/errors.ts';
import { clientSecretBasic } from '../../src/kernel/client-secret-basic.ts';

describe('gateway units', () => {
  it('HTML §9.2.6: the SSE parser joins multi-line data, ignores comments, handles CRLF and split chunks', () => {
    const events: { event: string; data: string; id?: string }[] = [];
    const feed = createSseParser((e) => events.push(e));
    feed(': comment\r\nid: 7\r\nevent: message\r\ndata: {"a":\r\n');
    feed('data: 1}\r\n\r\ndata: x\n');
    feed('\n');
    assert.deepEqual(events, [{ event: 'message', data: '{"a":\n1}', id: '7' }, { event: 'message', data: 'x', id: '7' }]);
    assert.deepEqual(JSON.parse(events[0]!.data), { a: 1 });
  });

  it('a client message is forwarded re-serialized (what the policy judged), never as the text it arrived as', () => {
    const pretty = '{\n  "jsonrpc": "2.0",\n  "id": 1,\n  "method": "ping"\n}';
    const { messages } = parseJsonRpcBody(Buffer.from(pretty));
    assert.equal(serialize(messages[0]!), '{"jsonrpc":"2.0","id":1,"method":"ping"}');
    assert.equal(serializeLine(messages[0]!), '{"jsonrpc":"2.0","id":1,"method":"ping"}');
  });

  it('an upstream message remembered with its text is passed through as that text; on stdio a multi-line text goes onto one line', () => {
    const pretty = '{\n  "jsonrpc": "2.0",\n  "id": 1,\n  "result": {}\n}';
    const message = parseJsonRpcMessage(JSON.parse(pretty));
    rememberRaw(message, pretty);
    assert.equal(serialize(message), pretty);
    assert.equal(serializeLine(message), '{"jsonrpc":"2.0","id":1,"result":{}}');
  });

  it('JSON-RPC 2.0 §4/§5: requests need a method string, responses exactly one of result and error', () => {
    const bad = ['{"jsonrpc":"1.0","id":1,"method":"x"}', '{"jsonrpc":"2.0","id":{},"method":"x"}', '{"jsonrpc":"2.0","id":1}', '{"jsonrpc":"2.0","id":1,"result":1,"error":{}}', '[]', '7'];
    for (const b of bad) assert.throws(() => parseJsonRpcBody(Buffer.from(b)), (e: unknown) => e instanceof GatewayError && e.code === 'invalid_message', b);
    assert.throws(() => parseJsonRpcBody(Buffer.from('{')), (e: unknown) => e instanceof GatewayError && e.code === 'parse_error');
  });

  it('RFC 6749 §2.3.1: client_secret_basic form-urlencodes the client_id and secret before base64', () => {
    const header = clientSecretBasic('my client:1', 'p@ss+w%rd é');
    assert.match(header, /^Basic /);
    const decoded = Buffer.from(header.slice('Basic '.length), 'base64').toString('utf8');
    assert.equal(decoded, 'my+client%3A1:p%40ss%2Bw%25rd+%C3%A9');
    const [id, secret] = decoded.split(':').map((v) => decodeURIComponent(v.replace(/\+/g, ' ')));
    assert.deepEqual([id, secret], ['my client:1', 'p@ss+w%rd é']);
  });

  it('RFC 9110 §12.5.1: Accept matching with parameters and wildcards', () => {
    assert.ok(accepts('application/json;q=0.9, text/event-stream', 'text/event-stream'));
    assert.ok(accepts('*/*', 'application/json'));
    assert.ok(accepts('text/*', 'text/event-stream'));
    assert.ok(!accepts('text/html', 'application/json'));
    assert.ok(accepts(undefined, 'application/json'));
  });
});
