import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseJsonRpcBody, parseJsonRpcMessage, rememberRaw, serialize, serializeLine } from '../../src/gateway/jsonrpc.ts';
import { GatewayError } from '../../src/gateway/errors.ts';

describe('JSON-RPC messages: parsing and what is forwarded', () => {
  it('a client message every parser reads alike is forwarded as the text it arrived as; on stdio a multi-line text goes onto one line', () => {
    const pretty = '{\n  "jsonrpc": "2.0",\n  "id": 1,\n  "method": "tools/call",\n  "params": {"name": "e:c\\"ho", "arguments": {"n": -12.5, "ok": true, "x": null, "list": [1, {"a": "b"}]}}\n}';
    const { messages } = parseJsonRpcBody(Buffer.from(pretty));
    assert.equal(serialize(messages[0]!), pretty);
    assert.equal(serializeLine(messages[0]!), JSON.stringify(JSON.parse(pretty)));
  });

  it('RFC 8259 §4, §6: a client text with a repeated member name (however escaped) or a number beyond double precision is forwarded re-serialized, as the policy judged it', () => {
    const cases = [
      '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"env","name":"echo"}}',
      '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"n\\u0061me":"env","name":"echo"}}',
      '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"a":{"k":1,"k":2}}}}',
      '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"n":12345678901234567890}}}',
      '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"n":1e400}}}',
      '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"n":2E+3}}}',
    ];
    for (const text of cases) {
      const { messages } = parseJsonRpcBody(Buffer.from(text));
      assert.equal(serialize(messages[0]!), JSON.stringify(JSON.parse(text)), text);
    }
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
