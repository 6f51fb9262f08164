import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestWarden, type TestWarden } from './fixtures/warden.ts';
import { initializeMessage, messagesOf, openSession, post, TINY_SERVER } from './fixtures/raw.ts';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startFixtureIssuer } from './fixtures/issuer.ts';
import { parseConfig } from '../../src/config/load.ts';
import { createServerEndpoint } from '../../src/gateway/server-endpoint.ts';
import { createTokenVerifier } from '../../src/gateway/token-verifier.ts';
import { createStdioUpstream } from '../../src/gateway/upstreams/stdio.ts';
import { DownstreamCredentialError } from '../../src/downstream/errors.ts';
import type { DownstreamCredentials } from '../../src/downstream/types.ts';
import { silentLogger } from '../../src/log.ts';
import { createHttpUpstream } from '../../src/gateway/upstreams/http.ts';
import type { Caller } from '../../src/kernel/caller.ts';
import { startHttpUpstream } from './fixtures/http-upstream.ts';

const call = (id: number, name: string, args: Record<string, unknown> = {}) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args } });
const names = (list: { result: { tools: { name: string }[] } }) => list.result.tools.map((x) => x.name).sort();

describe('gateway review fixes', () => {
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
          // Writes a marker file when started: proves whether a child was spawned.
          upstream: { stdio: { command: process.execPath, args: ['-e', "require('fs').writeFileSync(process.env.MARK, 'x'); setInterval(() => {}, 1000)"], env: { MARK: marker } } },
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

  it('issue 4: an initialize the policy denies starts no upstream (no child spawned) and opens no session', async () => {
    const token = await t.issuer.mint({ aud: gatedUrl, scope: 'mcp:read', roles: ['guest'] });
    const res = await post(gatedUrl, token, initializeMessage());
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('mcp-session-id'), null);
    const [answer] = await messagesOf(res);
    assert.equal(answer.error.code, -32003);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(existsSync(marker), false);
  });

  it('RFC 6750 §3.1: an unreachable issuer (discovery/JWKS down) is 503 without a challenge, not 401 invalid_token', async () => {
    const other = await startTestWarden({ servers: [{ name: 'tiny', path: '/mcp', upstream: { stdio: TINY_SERVER }, scopes: ['mcp:read'] }] });
    try {
      const token = await other.issuer.mint({ aud: other.endpoint, scope: 'mcp:read' });
      await other.issuer.close();
      const res = await post(other.endpoint, token, initializeMessage());
      assert.equal(res.status, 503);
      assert.equal(res.headers.get('www-authenticate'), null);
      const body = await res.json();
      assert.equal(body.error.code, -32603);
    } finally {
      await other.close();
    }
  });

  it('MCP transports §Protocol Version Header: a header that differs from the negotiated version is 400 (no batches in a 2025-11-25 session)', async () => {
    const token = await t.issuer.mint({ aud: url, scope: 'mcp:read' });
    const sid = await openSession(url, token, '2025-11-25');
    const batch = await post(url, token, [{ jsonrpc: '2.0', id: 1, method: 'ping' }], { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-03-26' });
    assert.equal(batch.status, 400);
    await batch.text();
    const single = await post(url, token, { jsonrpc: '2.0', id: 2, method: 'ping' }, { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-06-18' });
    assert.equal(single.status, 400);
    await single.text();
    const ok = await post(url, token, { jsonrpc: '2.0', id: 3, method: 'ping' }, { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' });
    assert.equal(ok.status, 200);
    await ok.text();
  });

  it('RFC 9110 §15.5.2: a refused downstream token exchange (invalid_grant, status 401) is 403 with the client-safe message, never a 401 without a challenge', async () => {
    const issuer = await startFixtureIssuer();
    const http = createServer();
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
    const base = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
    const config = parseConfig({ publicUrl: base, authorizationServer: { external: { issuer: issuer.issuer } }, servers: [{ name: 's', path: '/mcp', upstream: { stdio: TINY_SERVER } }] });
    const server = config.servers[0]!;
    // The downstream module reports a refused RFC 8693 exchange of an expired subject token like this.
    const refusing: DownstreamCredentials = {
      envFor: async () => {
        throw new DownstreamCredentialError('exchange_failed', 'the authorization server refused a token (invalid_grant); sign in again', 'invalid_grant', 401);
      },
      headersFor: async () => ({}),
    };
    const endpoint = createServerEndpoint({
      config, server, verifier: createTokenVerifier({ config }), policy: undefined, logger: silentLogger,
      upstream: createStdioUpstream({ server, stdio: { ...TINY_SERVER, env: {} }, logger: silentLogger, downstream: refusing, env: process.env }),
      audit: { record() {}, close: async () => {} }, downstream: refusing, checkOrigin: () => undefined,
    });
    http.on('request', (req, res) => void endpoint.handle(req, res, ''));
    try {
      const token = await issuer.mint({ aud: `${base}/mcp` });
      const res = await post(`${base}/mcp`, token, initializeMessage());
      assert.equal(res.status, 403);
      assert.equal(res.headers.get('www-authenticate'), null);
      assert.match((await res.json()).error.message, /sign in again/);
    } finally {
      await endpoint.close();
      http.closeAllConnections();
      await new Promise((r) => http.close(r));
      await issuer.close();
    }
  });

  it('docs/downstream.md: the first POST of an HTTP session carries the credentials just obtained at connect; later POSTs ask again', async () => {
    const fixture = await startHttpUpstream();
    const config = parseConfig({ publicUrl: 'http://127.0.0.1:9', authorizationServer: { external: { issuer: 'http://127.0.0.1:9' } }, servers: [{ name: 'h', path: '/mcp', upstream: { http: { url: fixture.url } }, downstream: {} }] });
    const server = config.servers[0]!;
    let issued = 0;
    const counting: DownstreamCredentials = { envFor: async () => ({}), headersFor: async () => ({ 'x-credential': String(++issued) }) };
    const upstream = createHttpUpstream({ server, http: { url: fixture.url, headers: {} }, logger: silentLogger, downstream: counting });
    const caller: Caller = { subject: 'alice', clientId: 'c', issuer: 'http://127.0.0.1:9', audience: 'http://127.0.0.1:9/mcp', scopes: [], roles: [], claims: {}, expiresAt: 0, accessToken: 'x' };
    try {
      const connection = await upstream.connect({ sessionId: 's', caller, events: { message() {}, closed() {} } });
      await connection.send([initializeMessage() as never], '2025-11-25', caller);
      await connection.send([{ jsonrpc: '2.0', method: 'notifications/initialized' }], '2025-11-25', caller);
      const posts = fixture.requests.filter((r) => r.method === 'POST').map((r) => r.headers['x-credential']);
      assert.deepEqual(posts, ['1', '2']);
      assert.equal(issued, 2, 'connect and the first POST asked once between them');
      await connection.close();
    } finally {
      await upstream.close();
      await fixture.close();
    }
  });

  it('docs/downstream.md: an HTTP upstream\'s GET stream and DELETE carry credentials asked for at that moment, not those of connect', async () => {
    const fixture = await startHttpUpstream();
    const config = parseConfig({ publicUrl: 'http://127.0.0.1:9', authorizationServer: { external: { issuer: 'http://127.0.0.1:9' } }, servers: [{ name: 'h', path: '/mcp', upstream: { http: { url: fixture.url } }, downstream: {} }] });
    const server = config.servers[0]!;
    let issued = 0;
    // Each call hands out a new credential, as an exchange near expiry would.
    const counting: DownstreamCredentials = { envFor: async () => ({}), headersFor: async () => ({ 'x-credential': String(++issued) }) };
    const upstream = createHttpUpstream({ server, http: { url: fixture.url, headers: {} }, logger: silentLogger, downstream: counting });
    const caller: Caller = { subject: 'alice', clientId: 'c', issuer: 'http://127.0.0.1:9', audience: 'http://127.0.0.1:9/mcp', scopes: [], roles: [], claims: {}, expiresAt: 0, accessToken: 'x' };
    try {
      const connection = await upstream.connect({ sessionId: 's', caller, events: { message() {}, closed() {} } });
      await connection.send([initializeMessage() as never], '2025-11-25', caller);
      await connection.send([{ jsonrpc: '2.0', method: 'notifications/initialized' }], '2025-11-25', caller);
      const atConnect = '1';
      connection.openServerStream('2025-11-25');
      for (let i = 0; i < 100 && !fixture.requests.some((r) => r.method === 'GET'); i++) await new Promise((r) => setTimeout(r, 20));
      await connection.close();
      const get = fixture.requests.find((r) => r.method === 'GET');
      const del = fixture.requests.find((r) => r.method === 'DELETE');
      assert.ok(get && del, 'the upstream saw a GET and a DELETE');
      assert.notEqual(get.headers['x-credential'], atConnect);
      assert.notEqual(del.headers['x-credential'], atConnect);
      assert.ok(Number(del.headers['x-credential']) > Number(get.headers['x-credential']));
    } finally {
      await upstream.close();
      await fixture.close();
    }
  });
});
