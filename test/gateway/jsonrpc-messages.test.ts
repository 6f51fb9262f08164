import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseJsonRpcBody, parseJsonRpcMessage, rememberRaw, serialize, serializeLine } from '../../src/gateway/jsonrpc.ts';
import { GatewayError } from '../../src/gateway/errors.ts';

describe('JSON-RPC messages: parsing and what is forwarded', () => {
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
});
