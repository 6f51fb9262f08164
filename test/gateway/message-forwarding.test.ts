import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestWarden, type TestWarden } from './fixtures/warden.ts';
import { initializeMessage, messagesOf, openSession, post, TINY_SERVER } from './fixtures/raw.ts';
import { waitFor } from '../helpers/wait-for.ts';

const call = (id: number, name: string, args: Record<string, unknown> = {}) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args } });
const names = (list: { result: { tools: { name: string }[] } }) => list.result.tools.map((x) => x.name).sort();

describe('what reaches the upstream: the messages the policy judged, with ids unique in the session', () => {
  let t: TestWarden;
  let url: string;
  let gatedUrl: string;
  let dir: string;
  let marker: string;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'warden-review-'));
    marker = join(dir, 'spawned');
    const policy = {
      default: 'deny',
      lists: 'usable',
      rules: [
        { name: 'lifecycle', methods: ['initialize', 'notifications/*', 'ping', 'tools/list'] },
        { name: 'read', tools: ['echo', 'slow'], scopes: 'mcp:read' },
      ],
    };
    t = await startTestWarden({
      servers: [
        { name: 'tiny', path: '/mcp', upstream: { stdio: TINY_SERVER }, scopes: ['mcp:read'], policy },
        {
          name: 'gated',
          path: '/gated',
          // Appends to a marker file when started: proves whether a child was spawned.
          upstream: { stdio: { command: process.execPath, args: ['-e', "require('fs').appendFileSync(process.env.MARK, 'x'); setInterval(() => {}, 1000)"], env: { MARK: marker } } },
          scopes: ['mcp:read'],
          policy: { default: 'deny', rules: [{ name: 'members', methods: ['initialize', 'notifications/*'], roles: 'member' }] },
        },
      ],
    });
    url = t.endpoint;
    gatedUrl = url.replace(/\/mcp$/, '/gated');
  });
  after(async () => {
    await t.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('MCP basic §Requests: an id repeated in a 2025-03-26 batch is refused (-32600) and the tools/list answer stays filtered', async () => {
    const token = await t.issuer.mint({ aud: url, scope: 'mcp:read' });
    const sid = await openSession(url, token, '2025-03-26');
    const batch = [call(9, 'slow'), { jsonrpc: '2.0', id: 2, method: 'tools/list' }, { jsonrpc: '2.0', id: 2, method: 'ping' }];
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json', authorization: `Bearer ${token}`, 'mcp-session-id': sid, 'mcp-protocol-version': '2025-03-26' },
      body: JSON.stringify(batch),
      signal: AbortSignal.timeout(5000),
    });
    const answers = await messagesOf(res);
    assert.equal(answers.length, 3);
    const lists = answers.filter((a) => a.result?.tools);
    assert.equal(lists.length, 1);
    assert.deepEqual(names(lists[0]), ['echo', 'slow']);
    const refused = answers.filter((a) => a.error);
    assert.equal(refused.length, 1);
    assert.equal(refused[0].id, 2);
    assert.equal(refused[0].error.code, -32600);
    assert.equal(answers.find((a) => a.id === 9)?.result.content[0].text, 'slow done');
  });

  it('MCP basic §Requests: a POST reusing the id of a request still pending in the session gets -32600; the first still gets its own answer', async () => {
    const token = await t.issuer.mint({ aud: url, scope: 'mcp:read' });
    const sid = await openSession(url, token);
    const h = { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' };
    // With a progress token the answer turns into SSE at the first progress event: once its headers are
    // here, the request is certainly pending at the gateway.
    const slow = await post(url, token, { ...call(7, 'slow'), params: { name: 'slow', arguments: {}, _meta: { progressToken: 'p7' } } }, h);
    const second = await post(url, token, { jsonrpc: '2.0', id: 7, method: 'tools/list' }, h);
    const [refused] = await messagesOf(second);
    assert.equal(refused.id, 7);
    assert.equal(refused.error.code, -32600);
    const first = await messagesOf(slow);
    assert.equal(first.at(-1).result.content[0].text, 'slow done');
    // The id is free again once answered, and the list is filtered.
    const [list] = await messagesOf(await post(url, token, { jsonrpc: '2.0', id: 7, method: 'tools/list' }, h));
    assert.deepEqual(names(list), ['echo', 'slow']);
  });

  it('RFC 8259 §4: the upstream gets the message the policy judged, not the client text (duplicate "name" keys)', async () => {
    const token = await t.issuer.mint({ aud: url, scope: 'mcp:read' });
    const sid = await openSession(url, token);
    // JSON.parse keeps the last "name" (echo, allowed); a parser keeping the first would run env.
    const body = '{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"env","name":"echo","arguments":{"raw":true}}}';
    const res = await post(url, token, body, { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' });
    const [answer] = await messagesOf(res);
    const forwarded = JSON.parse(answer.result.content[0].text);
    assert.deepEqual(forwarded.params, { name: 'echo', arguments: { raw: true } });
    assert.doesNotMatch(answer.result.content[0].text, /"env"/);
  });

  it('docs/policy.md: an initialize the policy denies starts no upstream (no child spawned) and opens no session', async () => {
    const token = await t.issuer.mint({ aud: gatedUrl, scope: 'mcp:read', roles: ['guest'] });
    const res = await post(gatedUrl, token, initializeMessage());
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('mcp-session-id'), null);
    const [answer] = await messagesOf(res);
    assert.equal(answer.error.code, -32003);
    assert.equal(t.warden.gateway.endpoints.get('/gated')!.sessionCount, 0);
    // A positive signal instead of a fixed sleep: a member's session does spawn a child, which
    // appends its line; had the denied one spawned too, there would be two.
    const member = await t.issuer.mint({ aud: gatedUrl, scope: 'mcp:read', roles: ['member'] });
    const allowed = await post(gatedUrl, member, initializeMessage());
    assert.equal(allowed.status, 200);
    await waitFor(() => existsSync(marker) && readFileSync(marker, 'utf8').length > 0, 'the member session\'s child to start');
    assert.equal(readFileSync(marker, 'utf8'), 'x');
    await allowed.body?.cancel();
  });
});
