import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { createServer as createTcpServer, type AddressInfo, type Server as TcpServer } from 'node:net';
import { startEmbeddedAs, TEST_PASSWORD, type EmbeddedAs } from '../helpers/embedded-as.ts';
import { authorize, Browser, discover, obtainTokens } from '../helpers/oauth.ts';
import * as oauth from 'oauth4webapi';
import { exportJWK, generateKeyPair } from 'jose';

/** Serves client ID metadata documents (and misbehaving variants) on 127.0.0.1, addressed as http://localhost. */
let jwks: { keys: unknown[] } = { keys: [] };

async function startDocumentServer(): Promise<{ base: string; server: Server; hits: Map<string, number>; connections: () => number }> {
  const hits = new Map<string, number>();
  let connections = 0;
  const server = createServer((req, res) => {
    const path = req.url ?? '/';
    hits.set(path, (hits.get(path) ?? 0) + 1);
    const id = `${base}${path}`;
    const doc = (extra: Record<string, unknown> = {}) => JSON.stringify({
      client_id: id, client_name: 'CIMD Test App', redirect_uris: ['http://127.0.0.1/callback'],
      grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'], token_endpoint_auth_method: 'none', ...extra,
    });
    res.setHeader('content-type', 'application/json');
    switch (path) {
      case '/client.json': case '/client2.json': res.end(doc()); return;
      case '/mismatch.json': res.end(doc({ client_id: `${base}/other.json` })); return;
      case '/big.json': res.end(doc({ client_name: 'x'.repeat(6000) })); return;
      case '/redirect.json': res.statusCode = 302; res.setHeader('location', `${base}/client.json`); res.end(); return;
      case '/jwks': res.end(JSON.stringify(jwks)); return;
      case '/http-redirect.json': res.end(doc({ redirect_uris: ['http://app.example/callback'] })); return;
      case '/secret.json': res.end(doc({ token_endpoint_auth_method: 'client_secret_basic' })); return;
      case '/machine.json': res.end(doc({ grant_types: ['client_credentials'], response_types: [], redirect_uris: [], token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [{ kty: 'EC', crv: 'P-256', x: 'f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU', y: 'x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0', kid: 'k' }] } })); return;
      case '/slow.json': case '/slow2.json': {
        // Well past the authorization server's fetch timeout (2 s below), so only the timeout can
        // refuse it; cleared when the server gives up and closes the connection.
        const late = setTimeout(() => res.end(doc()), 5000);
        res.on('close', () => clearTimeout(late));
        return;
      }
      default: res.statusCode = 404; res.end('{}');
    }
  });
  server.on('connection', () => connections++);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const base = `http://localhost:${(server.address() as AddressInfo).port}`;
  return { base, server, hits, connections: () => connections };
}

/** The authorization request's first response: a redirect to our login (client accepted) or an error page. */
async function firstResponse(s: EmbeddedAs, clientId: string, redirectUri = 'http://127.0.0.1/callback'): Promise<{ status: number; location: string | null; body: string }> {
  const url = `${s.url}/oauth/authorize?` + new URLSearchParams({
    client_id: clientId, redirect_uri: redirectUri, response_type: 'code', state: 'st', scope: 'notes:read', resource: s.resource,
    code_challenge: await oauth.calculatePKCECodeChallenge(oauth.generateRandomCodeVerifier()), code_challenge_method: 'S256',
  });
  const res = await fetch(url, { redirect: 'manual', headers: { accept: 'text/html' } });
  return { status: res.status, location: res.headers.get('location'), body: await res.text() };
}

describe('client ID metadata documents', () => {
  let docs: Awaited<ReturnType<typeof startDocumentServer>>;
  let dev: EmbeddedAs;
  let strict: EmbeddedAs;
  let noPrivate: EmbeddedAs;
  let off: EmbeddedAs;
  before(async () => {
    docs = await startDocumentServer();
    // The fetch timeout applies to every document, the good ones too: 2 s leaves a loaded runner
    // time to serve them, while /slow.json still arrives only after it.
    const cimd = (o: Record<string, unknown>) => ({ embedded: { clientIdMetadataDocuments: o }, options: { fetchTimeoutMs: 2000 } });
    dev = await startEmbeddedAs(cimd({ allowedOrigins: [docs.base], allowPrivateAddresses: true }));
    strict = await startEmbeddedAs(cimd({}));
    noPrivate = await startEmbeddedAs(cimd({ allowedOrigins: [docs.base], allowPrivateAddresses: false }));
    off = await startEmbeddedAs(cimd({ enabled: false, allowedOrigins: [docs.base], allowPrivateAddresses: true }));
  });
  after(async () => {
    for (const s of [dev, strict, noPrivate, off]) await s?.close();
    docs.server.closeAllConnections();
    await new Promise<void>((r) => docs.server.close(() => r()));
  });

  it('CIMD §3: a URL client_id is fetched and the full flow works, with redirect_uris from the document', async () => {
    const clientId = `${docs.base}/client.json`;
    const t = await obtainTokens({ issuer: dev.issuer, clientId, username: 'bob', password: TEST_PASSWORD, resource: dev.resource, scope: 'notes:read' });
    const claims = JSON.parse(Buffer.from(t.access_token.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;
    assert.equal(claims.client_id, clientId);
    assert.equal(claims.aud, dev.resource);
  });

  it('CIMD §6: the consent page shows the client name as a claim and the document host as verified identity', async () => {
    const clientId = `${docs.base}/client2.json`;
    const browser = new Browser();
    const url = `${dev.url}/oauth/authorize?` + new URLSearchParams({
      client_id: clientId, redirect_uri: 'http://127.0.0.1/callback', response_type: 'code', state: 'st', scope: 'notes:read', resource: dev.resource,
      code_challenge: await oauth.calculatePKCECodeChallenge(oauth.generateRandomCodeVerifier()), code_challenge_method: 'S256',
    });
    const login = await browser.follow(url, dev.url);
    const r = await browser.submit(login.url, await login.response.text(), { username: 'alice', password: TEST_PASSWORD });
    const consent = await browser.follow(new URL(r.headers.get('location')!, login.url).href, dev.url);
    const html = await consent.response.text();
    assert.match(html, /<span id="client-name">CIMD Test App<\/span> <span id="client-badge" class="warn">\(unverified/);
    assert.match(html, new RegExp(`<dd id="client-origin">described by <strong>${new URL(docs.base).host}</strong></dd>`));
    assert.match(html, /<dd id="redirect-host"><strong>127\.0\.0\.1/);
  });

  it('CIMD §4.1: the document is cached (bounded), not fetched on every request', async () => {
    const clientId = `${docs.base}/client.json`;
    const before = docs.hits.get('/client.json') ?? 0;
    await firstResponse(dev, clientId);
    await firstResponse(dev, clientId);
    assert.equal(docs.hits.get('/client.json') ?? 0, before);
  });

  it('CIMD §4, OAuth 2.1 §4.1.2.1: a redirect_uri not in the document gets an error page, never a redirect', async () => {
    const r = await firstResponse(dev, `${docs.base}/client.json`, 'http://127.0.0.1/elsewhere');
    assert.equal(r.status, 400);
    assert.equal(r.location, null);
  });

  const refusedDocs: Array<[string, string]> = [
    ['CIMD §4.1: the document\'s client_id differs from the URL', '/mismatch.json'],
    ['CIMD §6: a document larger than 5 KB', '/big.json'],
    ['CIMD §6: a redirect instead of the document', '/redirect.json'],
    ['CIMD §4: a document declaring a shared-secret auth method', '/secret.json'],
    ['RFC 8252 §8.4: a document with a non-loopback http redirect_uri', '/http-redirect.json'],
    ['a document that does not arrive within the timeout', '/slow.json'],
    ['a document that does not exist', '/missing.json'],
  ];
  for (const [name, path] of refusedDocs) {
    it(`${name} → invalid_client error page, no redirect`, async () => {
      const r = await firstResponse(dev, `${docs.base}${path}`);
      assert.equal(r.status, 400);
      assert.equal(r.location, null);
      assert.match(r.body, /invalid_client/);
      assert.doesNotMatch(r.body, /node_modules|at \w+ \(/);
    });
  }

  it('draft-ietf-oauth-client-id-metadata-document §6: a document that times out is fetched once per authorization request, not once per lookup (the error page looks the client up again)', async () => {
    const before = docs.hits.get('/slow2.json') ?? 0;
    const r = await firstResponse(dev, `${docs.base}/slow2.json`);
    assert.equal(r.status, 400);
    assert.match(r.body, /invalid_client/);
    assert.equal((docs.hits.get('/slow2.json') ?? 0) - before, 1, 'one fetch of the slow document');
  });

  it('MCP client credentials extension: a CIMD client cannot use client_credentials', async () => {
    const res = await fetch(`${dev.url}/oauth/token`, {
      method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'client_credentials', client_id: `${docs.base}/machine.json`, resource: dev.resource }).toString(),
    });
    assert.ok(res.status === 400 || res.status === 401);
    assert.match((await res.json() as { error: string }).error, /^invalid_client/);
  });

  it('CIMD §3 (https required): an http://localhost client ID at an origin not in allowedOrigins is refused and never contacted', async () => {
    const before = docs.connections();
    const r = await firstResponse(strict, `${docs.base}/client.json`);
    assert.equal(r.status, 400);
    assert.equal(r.location, null);
    assert.match(r.body, /invalid_client/);
    assert.equal(docs.connections(), before, 'no connection reached the document server');
  });

  it('CIMD §3: an origin in allowedOrigins lets its http documents through on loopback, with the address guard still on for every other URL', async () => {
    const r = await firstResponse(noPrivate, `${docs.base}/client2.json`);
    assert.equal(r.status, 303);
    assert.match(r.location ?? '', /\/interaction\//);
  });

  it('SSRF guard on outbound fetches: a jwks_uri on a loopback address is never contacted unless allowPrivateAddresses', async () => {
    const { publicKey, privateKey } = await generateKeyPair('ES256');
    jwks = { keys: [{ ...(await exportJWK(publicKey)), kid: 'k', alg: 'ES256', use: 'sig' }] };
    const jwksUri = `http://127.0.0.1:${new URL(docs.base).port}/jwks`;
    const attempt = async (s: EmbeddedAs, clientId: string) => {
      await s.as.clients.add({ clientId, clientName: 'jwks_uri agent', type: 'confidential', grantTypes: ['client_credentials'], jwksUri });
      const as = await discover(s.issuer);
      const res = await oauth.clientCredentialsGrantRequest(as, { client_id: clientId }, oauth.PrivateKeyJwt({ key: privateKey, kid: 'k' }), { resource: s.resource }, { [oauth.allowInsecureRequests]: true });
      return res.status;
    };
    const before = docs.hits.get('/jwks') ?? 0;
    const connectionsBefore = docs.connections();
    assert.equal(await attempt(noPrivate, 'jwks-guarded'), 401);
    assert.equal(docs.hits.get('/jwks') ?? 0, before, 'the loopback jwks_uri was never requested');
    assert.equal(docs.connections(), connectionsBefore, 'no TCP connection reached the loopback jwks_uri');
    assert.equal(await attempt(dev, 'jwks-allowed'), 200);
    assert.equal(docs.hits.get('/jwks') ?? 0, before + 1);
  });

  it('CIMD §6 (SSRF): a client ID naming loopback in any spelling is refused before connecting: no byte reaches the listening socket', async () => {
    // A bare TCP listener on every loopback address (dual-stack ::), counting connections: a check
    // after connecting would show here as a connection (and a TLS ClientHello) per attempt.
    let connections = 0;
    const listener: TcpServer = createTcpServer((socket) => {
      connections++;
      socket.destroy();
    });
    await new Promise<void>((r) => listener.listen(0, '::', r));
    const port = (listener.address() as AddressInfo).port;
    try {
      const ids = [
        `https://127.0.0.1:${port}/c.json`,
        `https://localhost:${port}/c.json`,
        `https://localhost.:${port}/c.json`,
        `https://[::1]:${port}/c.json`,
        `https://[::ffff:127.0.0.1]:${port}/c.json`,
        `https://[::ffff:7f00:1]:${port}/c.json`,
        `https://2130706433:${port}/c.json`,
        `https://0x7f.1:${port}/c.json`,
        `https://127.1:${port}/c.json`,
        `https://0.0.0.0:${port}/c.json`,
      ];
      for (const s of [strict, noPrivate]) {
        for (const id of ids) {
          const r = await firstResponse(s, id);
          assert.equal(r.status, 400, id);
          assert.equal(r.location, null, id);
          assert.match(r.body, /invalid_client/, id);
          assert.doesNotMatch(r.body, /127\.0\.0\.1|ECONNREFUSED|special-use/, `${id}: no internal detail in the page`);
        }
      }
      assert.equal(connections, 0, 'no connection reached the loopback listener');
    } finally {
      await new Promise<void>((r) => listener.close(() => r()));
    }
  });

  it('CIMD §6 (SSRF): https client IDs naming private or metadata addresses are refused', async () => {
    for (const id of ['https://127.0.0.1/client.json', 'https://169.254.169.254/latest/meta-data', 'https://10.0.0.1/c.json']) {
      const r = await firstResponse(strict, id);
      assert.equal(r.status, 400, id);
      assert.match(r.body, /invalid_client/);
    }
  });

  it('CIMD §3: client IDs with userinfo, fragments or dot segments are not treated as documents', async () => {
    for (const id of [`${docs.base.replace('http://', 'http://user@')}/client.json`, `${docs.base.replace('http://', 'http://@')}/client.json`, `${docs.base}/a/../client.json`, `${docs.base}/a/%2e%2e/client.json`, 'https://app.example/client.json#x']) {
      const r = await firstResponse(dev, id);
      assert.equal(r.status, 400, id);
      assert.equal(r.location, null);
    }
  });

  it('clientIdMetadataDocuments.enabled=false: URL client IDs are unknown clients and metadata says unsupported', async () => {
    const r = await firstResponse(off, `${docs.base}/client.json`);
    assert.equal(r.status, 400);
    const md = await (await fetch(`${off.url}/.well-known/oauth-authorization-server`)).json() as Record<string, unknown>;
    assert.notEqual(md.client_id_metadata_document_supported, true);
  });

  it('a CIMD client gets access_denied at its redirect when the user denies', async () => {
    const r = await authorize({ issuer: dev.issuer, clientId: `${docs.base}/client2.json`, consent: 'deny', username: 'bob', password: TEST_PASSWORD, resource: dev.resource, scope: 'notes:read' });
    assert.equal(r.callbackUrl.searchParams.get('error'), 'access_denied');
  });
});
