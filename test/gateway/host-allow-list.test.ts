import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { request, type IncomingMessage } from 'node:http';
import { startTestWarden, type TestWarden } from './fixtures/warden.ts';
import { initializeMessage, TINY_SERVER } from './fixtures/raw.ts';
import { startDemoWarden, type DemoWarden } from '../helpers/demo-warden.ts';
import { createHostPolicy, parseHost } from '../../src/http/host.ts';
import { parseConfig } from '../../src/config/load.ts';

/** One request with an explicit Host header (fetch does not let a caller choose it). */
function send(url: string, host: string | undefined, init: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<{ status: number; headers: IncomingMessage['headers']; body: string }> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { ...init.headers };
    const req = request({ host: u.hostname, port: u.port, path: `${u.pathname}${u.search}`, method: init.method ?? 'GET', headers, setHost: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    if (host !== undefined) req.setHeader('Host', host);
    req.on('error', reject);
    req.end(init.body);
  });
}

const mcpPost = (token: string) => ({
  method: 'POST',
  headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: `Bearer ${token}` },
  body: JSON.stringify(initializeMessage()),
});

const fakeReq = (host: string | undefined) => ({ headers: host === undefined ? {} : { host } }) as IncomingMessage;

describe('Host allow-list (MCP security best practices, DNS rebinding; RFC 9110 §15.5.20 421)', () => {
  it('parseHost accepts uri-host [":" port] and refuses userinfo, paths, spaces and bad ports', () => {
    assert.deepEqual(parseHost('Example.COM:8080'), { name: 'example.com', port: '8080' });
    assert.deepEqual(parseHost('[::1]:80'), { name: '[::1]', port: '80' });
    assert.deepEqual(parseHost('127.0.0.1'), { name: '127.0.0.1', port: '' });
    for (const bad of ['evil@127.0.0.1:80', '127.0.0.1/x', 'a b', '', 'host:123456', '::1', 'h:', undefined]) assert.equal(parseHost(bad), undefined, String(bad));
  });

  it('publicUrl\'s host (with or without its default port), allowedHosts, and loopback names only when listening on loopback or a wildcard', () => {
    const proxied = createHostPolicy({ publicUrl: 'https://mcp.example.com', allowedHosts: ['internal.lan', 'ops.lan:9000'], listenHost: '10.0.0.5', port: 8080 });
    for (const ok of ['mcp.example.com', 'MCP.example.com:443', 'internal.lan:1234', 'ops.lan:9000']) assert.ok(proxied(fakeReq(ok)), ok);
    for (const no of ['evil.example', 'mcp.example.com:8443', 'mcp.example.com.evil.example', 'ops.lan:9001', 'localhost:8080', '127.0.0.1:8080', undefined]) assert.ok(!proxied(fakeReq(no)), String(no));
    const local = createHostPolicy({ publicUrl: 'http://localhost:8080', allowedHosts: [], listenHost: '127.0.0.1', port: 8080 });
    for (const ok of ['localhost:8080', '127.0.0.1:8080', '[::1]:8080']) assert.ok(local(fakeReq(ok)), ok);
    for (const no of ['localhost:9999', '127.0.0.1', 'evil.example:8080']) assert.ok(!local(fakeReq(no)), no);
    // The same values again, interleaved: a remembered answer never outlives its value.
    for (const value of ['localhost:8080', 'localhost:9999', 'localhost:9999', 'localhost:8080', 'localhost:8080', 'evil.example:8080', '127.0.0.1:8080']) {
      assert.equal(local(fakeReq(value)), value !== 'localhost:9999' && value !== 'evil.example:8080', value);
    }
    const wildcard = createHostPolicy({ publicUrl: 'https://mcp.example.com', allowedHosts: [], listenHost: '0.0.0.0', port: 8080 });
    assert.ok(wildcard(fakeReq('127.0.0.1:8080')));
  });

  it('config: an allowedHosts entry that is not a host is refused at start-up, naming the key', () => {
    assert.throws(() => parseConfig({ publicUrl: 'https://mcp.example.com', allowedHosts: ['https://mcp.example.com/'], servers: [{ name: 's', path: '/mcp', upstream: { stdio: TINY_SERVER } }] }), /allowedHosts/);
  });

  describe('behind a reverse proxy that forwards the public Host (trustProxy)', () => {
    let t: TestWarden;
    const publicUrl = 'https://mcp.example.com';
    before(async () => {
      t = await startTestWarden({ servers: [{ name: 'tiny', path: '/mcp', upstream: { stdio: TINY_SERVER } }], config: { publicUrl, trustProxy: { hops: 1 } } });
    });
    after(async () => t.close());

    it('a valid token with Host: evil.example is refused with 421 before authentication; the public Host is served', async () => {
      const token = await t.issuer.mint({ aud: `${publicUrl}/mcp` });
      const local = `${t.warden.url}/mcp`;
      const evil = await send(local, 'evil.example', mcpPost(token));
      assert.equal(evil.status, 421);
      assert.match(evil.body, /^Misdirected Request/);
      assert.equal(evil.headers['www-authenticate'], undefined, 'refused before authentication');
      assert.equal(evil.headers['cache-control'], 'no-store');
      const proxied = await send(local, 'mcp.example.com', { ...mcpPost(token), headers: { ...mcpPost(token).headers, 'x-forwarded-for': '203.0.113.7' } });
      assert.equal(proxied.status, 200);
      assert.ok(proxied.headers['mcp-session-id']);
      // Every route: protected resource metadata and unknown paths too.
      assert.equal((await send(`${t.warden.url}/.well-known/oauth-protected-resource/mcp`, 'evil.example')).status, 421);
      assert.equal((await send(`${t.warden.url}/.well-known/oauth-protected-resource/mcp`, 'mcp.example.com')).status, 200);
      assert.equal((await send(`${t.warden.url}/nowhere`, 'evil.example')).status, 421);
    });
  });

  describe('the demo (embedded authorization server and account page, listening on loopback)', () => {
    let d: DemoWarden;
    before(async () => {
      d = await startDemoWarden({ dirPrefix: 'warden-host-', password: 'host test password', clientSecret: 'host-test-client-secret' });
    });
    after(async () => d.close());

    it('the authorization server\'s metadata is served at 127.0.0.1 and localhost, refused for a rebound name', async () => {
      const { port } = d.warden;
      const path = `http://127.0.0.1:${port}/.well-known/oauth-authorization-server`;
      assert.equal((await send(path, `127.0.0.1:${port}`)).status, 200);
      assert.equal((await send(path, `localhost:${port}`)).status, 200);
      assert.equal((await send(path, `evil.example:${port}`)).status, 421);
      assert.equal((await send(`http://127.0.0.1:${port}/account`, `evil.example:${port}`)).status, 421);
    });
  });
});
