import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestWarden, type TestWarden } from './fixtures/warden.ts';
import { messagesOf, openSession, post, TINY_SERVER } from './fixtures/raw.ts';

const call = (id: number, name: string, args: Record<string, unknown> = {}) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args } });

describe('policy and audit hooks: the gateway asks the policy for every message and audits the decision (docs/policy.md)', () => {
  let t: TestWarden;
  let url: string;
  let dir: string;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'warden-audit-'));
    t = await startTestWarden({
      servers: [
        {
          name: 'tiny',
          path: '/mcp',
          upstream: { stdio: TINY_SERVER },
          scopes: ['mcp:read', 'mcp:write'],
          policy: {
            default: 'deny',
            lists: 'usable',
            rules: [
              { name: 'lifecycle', methods: ['initialize', 'notifications/*', 'ping', 'tools/list'] },
              { name: 'read', tools: ['echo', 'slow'], scopes: 'mcp:read' },
              { name: 'admin-crash', tools: 'crash', roles: 'admin', scopes: 'mcp:write' },
            ],
          },
        },
      ],
      config: { audit: { jsonl: join(dir, 'audit.jsonl') } },
    });
    url = t.endpoint;
  });
  after(async () => {
    await t.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('tools/list results pass through filterList, and are not cacheable (private, no-store)', async () => {
    const token = await t.issuer.mint({ aud: url, scope: 'mcp:read' });
    const sid = await openSession(url, token);
    const res = await post(url, token, { jsonrpc: '2.0', id: 1, method: 'tools/list' }, { 'mcp-session-id': sid });
    assert.equal(res.headers.get('cache-control'), 'private, no-store');
    const [list] = await messagesOf(res);
    assert.deepEqual(list.result.tools.map((x: { name: string }) => x.name).sort(), ['echo', 'slow']);
  });

  it('a denial without step-up is HTTP 200 with JSON-RPC error -32003 for that id, never forwarded', async () => {
    const token = await t.issuer.mint({ aud: url, scope: 'mcp:read mcp:write', roles: ['member'] });
    const sid = await openSession(url, token);
    const res = await post(url, token, call(5, 'crash'), { 'mcp-session-id': sid });
    assert.equal(res.status, 200);
    const [answer] = await messagesOf(res);
    assert.equal(answer.id, 5);
    assert.equal(answer.error.code, -32003);
    assert.match(answer.error.message, /^Forbidden: /);
    const alive = await post(url, token, call(6, 'echo', { message: 'child still running' }), { 'mcp-session-id': sid });
    assert.equal((await messagesOf(alive))[0].result.content[0].text, 'child still running');
  });

  it('MCP authorization §Scope Challenge Handling, step-up: a denial with stepUpScopes is HTTP 403 insufficient_scope naming those scopes', async () => {
    const token = await t.issuer.mint({ aud: url, scope: 'mcp:read', roles: ['admin'] });
    const sid = await openSession(url, token);
    const res = await post(url, token, call(7, 'crash'), { 'mcp-session-id': sid });
    assert.equal(res.status, 403);
    const header = res.headers.get('www-authenticate') ?? '';
    assert.match(header, /error="insufficient_scope"/);
    const scope = /scope="([^"]*)"/.exec(header)![1]!.split(' ').sort();
    assert.deepEqual(scope, ['mcp:read', 'mcp:write']);
    assert.match(header, /resource_metadata="[^"]+\/\.well-known\/oauth-protected-resource\/mcp"/);
  });

  it('every decision and every gateway-level denial is audited, with tool arguments redacted', async () => {
    const token = await t.issuer.mint({ aud: url, scope: 'mcp:read', sub: 'auditee' });
    const sid = await openSession(url, token);
    await (await post(url, token, call(1, 'echo', { message: 'secret words' }), { 'mcp-session-id': sid })).text();
    await (await post(url, undefined, call(2, 'echo'), { 'mcp-session-id': sid })).text();
    const mallory = await t.issuer.mint({ aud: url, scope: 'mcp:read', sub: 'mallory' });
    await (await post(url, mallory, call(3, 'echo'), { 'mcp-session-id': sid })).text();
    await (await post(url, token, call(4, 'echo'), { 'mcp-session-id': sid, origin: 'https://evil.example' })).text();
    await t.warden.close();
    const events = readFileSync(join(dir, 'audit.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    const echo = events.find((e) => e.subject === 'auditee' && e.target === 'echo');
    assert.ok(echo, 'the tools/call decision');
    assert.equal(echo.decision, 'allow');
    assert.equal(echo.rule, 'read');
    assert.equal(echo.sessionId, sid);
    assert.ok(!JSON.stringify(echo).includes('secret words'), 'arguments redacted');
    assert.ok(events.some((e) => e.method === 'http' && e.decision === 'deny' && e.reason === 'no access token'), '401 audited');
    assert.ok(events.some((e) => e.subject === 'mallory' && e.decision === 'deny' && /another caller/.test(e.reason)), 'session-binding 404 audited');
    assert.ok(events.some((e) => e.method === 'http' && e.decision === 'deny' && e.reason === 'origin not allowed'), 'Origin 403 audited');
    assert.ok(!readFileSync(join(dir, 'audit.jsonl'), 'utf8').includes(token), 'no token in the audit trail');
  });
});
