import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { demoServerCommand } from '../../src/config/demo.ts';
import { parseJsonRpcBody } from '../../src/gateway/jsonrpc.ts';
import { scanShape } from '../../src/gateway/json-depth.ts';
import { GatewayError } from '../../src/gateway/errors.ts';
import { startTestWarden, type TestWarden } from './fixtures/warden.ts';
import { openSession, post } from './fixtures/raw.ts';

/** RFC 8259 §9: the nesting depth the one-pass scan reports. */
const jsonDepth = (text: Uint8Array, limit: number) => scanShape(text, limit).depth;

/** A message whose `params.a` nests `depth` arrays (about 2 bytes per level). */
function deeplyNested(depth: number, id?: number): string {
  const idPart = id === undefined ? '' : `"id":${id},`;
  return `{"jsonrpc":"2.0",${idPart}"method":"${id === undefined ? 'notifications/deep' : 'ping'}","params":{"a":${'['.repeat(depth)}${']'.repeat(depth)}}}`;
}

describe('the gateway answers what the SDK server would drop: the official demo server over stdio', () => {
  let t: TestWarden;
  let token: string;
  let sid: string;
  const headers = () => ({ 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' });
  before(async () => {
    t = await startTestWarden({ servers: [{ name: 'notes', path: '/mcp', upstream: { stdio: demoServerCommand() } }] });
    token = await t.issuer.mint({ aud: t.endpoint });
    sid = await openSession(t.endpoint, token);
  });
  after(async () => t.close());

  /** The session still answers a valid request after each refusal. */
  async function stillWorks(id: number): Promise<void> {
    const res = await post(t.endpoint, token, { jsonrpc: '2.0', id, method: 'ping' }, headers());
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { jsonrpc: '2.0', id, result: {} });
  }

  it('JSON-RPC 2.0 §5: a fractional id gets -32600 with id null (the id itself is invalid), at once', async () => {
    const res = await post(t.endpoint, token, '{"jsonrpc":"2.0","id":1.5,"method":"ping"}', headers());
    assert.equal(res.status, 400);
    const body = await res.json();
    assert.equal(body.id, null);
    assert.equal(body.error.code, -32600);
    assert.match(body.error.message, /^Invalid Request: id must be a string or an integer/);
    await stillWorks(100);
  });

  it('JSON-RPC 2.0 §5: an id beyond 2^53 (not a safe integer) gets -32600 with id null', async () => {
    const res = await post(t.endpoint, token, '{"jsonrpc":"2.0","id":9007199254740993,"method":"ping"}', headers());
    assert.equal(res.status, 400);
    const body = await res.json();
    assert.equal(body.id, null);
    assert.equal(body.error.code, -32600);
    await stillWorks(101);
  });

  it('MCP basic §Requests: "params": [] gets -32602 Invalid params under the request id', async () => {
    const res = await post(t.endpoint, token, '{"jsonrpc":"2.0","id":2,"method":"ping","params":[]}', headers());
    assert.equal(res.status, 200);
    const body = await res.json();
    assert.equal(body.id, 2);
    assert.equal(body.error.code, -32602);
    assert.match(body.error.message, /params must be an object/);
    await stillWorks(102);
  });

  it('JSON-RPC 2.0 §4: an extra top-level member gets -32600 under the request id, naming the member', async () => {
    const res = await post(t.endpoint, token, '{"jsonrpc":"2.0","id":3,"method":"ping","extra":1}', headers());
    assert.equal(res.status, 200);
    const body = await res.json();
    assert.equal(body.id, 3);
    assert.equal(body.error.code, -32600);
    assert.match(body.error.message, /unexpected member "extra"/);
    await stillWorks(103);
  });

  it('MCP basic/utilities §Progress: a _meta.progressToken that is neither string nor integer gets -32602', async () => {
    for (const [id, token_] of [[4, 'true'], [5, '1.5'], [6, '{}']] as const) {
      const res = await post(t.endpoint, token, `{"jsonrpc":"2.0","id":${id},"method":"ping","params":{"_meta":{"progressToken":${token_}}}}`, headers());
      assert.equal(res.status, 200);
      const body = await res.json();
      assert.equal(body.id, id);
      assert.equal(body.error.code, -32602);
      assert.match(body.error.message, /progressToken must be a string or an integer/);
    }
    await stillWorks(104);
  });

  it('an invalid notification gets 400 with a JSON-RPC error without id (MCP transports §Sending Messages)', async () => {
    const res = await post(t.endpoint, token, '{"jsonrpc":"2.0","method":"notifications/initialized","params":[]}', headers());
    assert.equal(res.status, 400);
    const body = await res.json();
    assert.equal(body.id, null);
    assert.match(body.error.message, /params must be an object/);
  });

  it('RFC 8259 §9: a 10 000-deep request and a 10 000-deep notification both get 400 -32600, and the session keeps working', async () => {
    for (const body of [deeplyNested(10_000, 7), deeplyNested(10_000)]) {
      assert.ok(body.length > 20_000);
      const res = await post(t.endpoint, token, body, headers());
      assert.equal(res.status, 400);
      const answer = await res.json();
      assert.equal(answer.id, null);
      assert.equal(answer.error.code, -32600);
      assert.equal(answer.error.message, 'Invalid Request: nesting deeper than 64');
    }
    // 64 levels in all (the envelope and params count) is accepted and answered by the upstream.
    const res = await post(t.endpoint, token, deeplyNested(62, 8), headers());
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { jsonrpc: '2.0', id: 8, result: {} });
    await stillWorks(105);
  });
});

describe('edge parsing units', () => {
  it('RFC 8259 §9: the depth scan counts objects and arrays, not brackets inside strings or after escaped quotes', () => {
    const text = (s: string) => Buffer.from(s);
    assert.equal(jsonDepth(text('{"a":[1,{"b":[]}]}'), 64), 4);
    assert.equal(jsonDepth(text('{"a":"[[[[{{{{"}'), 64), 1);
    assert.equal(jsonDepth(text('{"a":"\\"[[[[","b":[[]]}'), 64), 3);
    assert.equal(jsonDepth(text('"é[ü{"'), 64), 0);
    // The scan stops as soon as the limit is passed.
    assert.equal(jsonDepth(text('['.repeat(1_000_000)), 64), 65);
  });

  it('JSON-RPC 2.0 §6: in a batch each invalid message gets its own error (id null when its id is invalid); valid ones go on', () => {
    const { messages, refused, batch } = parseJsonRpcBody(Buffer.from('[{"jsonrpc":"2.0","id":1.5,"method":"ping"},{"jsonrpc":"2.0","id":"a","method":"ping","params":[]},{"jsonrpc":"2.0","id":2,"method":"ping"}]'));
    assert.equal(batch, true);
    assert.deepEqual(messages, [{ jsonrpc: '2.0', id: 2, method: 'ping' }]);
    assert.deepEqual(refused.map((r) => [r.id, r.error?.code]), [[null, -32600], ['a', -32602]]);
  });

  it('a response from the client is checked too: an error response with id null (JSON-RPC 2.0 §5) passes, a result without id does not', () => {
    assert.equal(parseJsonRpcBody(Buffer.from('{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"Parse error"}}')).messages.length, 1);
    assert.throws(() => parseJsonRpcBody(Buffer.from('{"jsonrpc":"2.0","result":{}}')), (e: unknown) => e instanceof GatewayError && e.status === 400);
  });

  it('the depth limit is configurable (maxJsonDepth)', () => {
    assert.throws(() => parseJsonRpcBody(Buffer.from(deeplyNested(10, 1)), { maxDepth: 8 }), (e: unknown) => e instanceof GatewayError && e.description === 'Invalid Request: nesting deeper than 8');
    assert.equal(parseJsonRpcBody(Buffer.from(deeplyNested(10, 1)), { maxDepth: 12 }).messages.length, 1);
  });
});
