import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseJsonRpcBody, parseJsonRpcMessage, rememberRaw, serialize, serializeBody, serializeLine } from '../../src/gateway/jsonrpc.ts';
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

  it('an HTTP upstream is sent the client\'s own bytes (the same buffer, nothing encoded again) when they are valid UTF-8 (RFC 3629)', () => {
    const body = Buffer.from('{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"h\u00e9llo ✓"}}}');
    const { messages } = parseJsonRpcBody(body);
    assert.equal(serializeBody(messages[0]!), body);
    const ascii = Buffer.from('{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"text":"h\\u00e9llo"}}}');
    assert.equal(serializeBody(parseJsonRpcBody(ascii).messages[0]!), ascii);
    // A batch's messages have no bytes of their own (the HTTP upstream joins their texts), and a
    // re-serialized message is sent as its JSON.stringify.
    for (const m of parseJsonRpcBody(Buffer.from('[{"jsonrpc":"2.0","id":3,"method":"ping"},{"jsonrpc":"2.0","method":"notifications/initialized"}]')).messages) assert.equal(typeof serializeBody(m), 'string');
    const repeated = parseJsonRpcBody(Buffer.from('{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"env","name":"echo"}}')).messages[0]!;
    assert.equal(serializeBody(repeated), JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'echo' } }));
  });

  it('Unicode §3.9 (U+FFFD for a maximal subpart): a body with an ill-formed UTF-8 sequence (RFC 3629) is sent as the text that was parsed and judged (its U+FFFD), never as its bytes', () => {
    // A truncated four-byte sequence (F1 80 80) decodes to one U+FFFD, itself three bytes: the same
    // length as the bytes it replaced, so a length comparison would not tell.
    const body = Buffer.concat([Buffer.from('{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"a'), Buffer.from([0xf1, 0x80, 0x80]), Buffer.from('b"}}}')]);
    const { messages } = parseJsonRpcBody(body);
    const sent = serializeBody(messages[0]!);
    assert.equal(typeof sent, 'string');
    assert.equal(sent, body.toString('utf8'));
    assert.ok((sent as string).includes('a\ufffdb'));
    assert.equal(Buffer.byteLength(sent as string), body.length);
  });

  it('a message given a new text (a rewritten id) is never sent as the bytes it arrived as', () => {
    const body = Buffer.from('{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"}}');
    const message = parseJsonRpcBody(body).messages[0]!;
    rememberRaw(message, '{"jsonrpc":"2.0","id":"s1-1","method":"tools/call","params":{"name":"echo"}}');
    assert.equal(serializeBody(message), '{"jsonrpc":"2.0","id":"s1-1","method":"tools/call","params":{"name":"echo"}}');
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
