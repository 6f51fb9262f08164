/**
 * Discovery refusals that our own AS cannot show (it always advertises S256 and echoes its issuer):
 * a small HTTP server on 127.0.0.1 plays a resource whose AS metadata is defective.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WardenClient } from '../../src/client/session.ts';
import { isClientError } from '../../src/client/errors.ts';

describe('client discovery refusals', () => {
  let server: Server;
  let base: string;
  let home: string;
  let metadata: Record<string, unknown> = {};
  const seen: string[] = [];

  before(async () => {
    home = mkdtempSync(join(tmpdir(), 'warden-client-discovery-'));
    server = createServer((req, res) => {
      const path = new URL(req.url ?? '/', base).pathname;
      seen.push(`${req.method} ${path}`);
      const json = (status: number, body: unknown, headers: Record<string, string> = {}) => {
        res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body));
      };
      if (path === '/mcp') return json(401, { error: 'invalid_token' }, { 'www-authenticate': `Bearer resource_metadata="${base}/.well-known/oauth-protected-resource/mcp", scope="read"` });
      if (path === '/.well-known/oauth-protected-resource/mcp') return json(200, { resource: `${base}/mcp`, authorization_servers: [base], scopes_supported: ['read'] });
      if (path === '/.well-known/oauth-authorization-server') return json(200, { issuer: base, ...metadata });
      json(404, { error: 'not_found' });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  after(async () => {
    await new Promise<void>((r) => server.close(() => r()));
    rmSync(home, { recursive: true, force: true });
  });

  const endpoints = () => ({ authorization_endpoint: `${base}/authorize`, token_endpoint: `${base}/token`, registration_endpoint: `${base}/register`, response_types_supported: ['code'] });

  it('MCP 2025-11-25 §Authorization Code Protection: refuses an AS whose metadata has no code_challenge_methods_supported', async () => {
    metadata = endpoints();
    seen.length = 0;
    const opened: URL[] = [];
    const client = new WardenClient({ serverUrl: `${base}/mcp`, home, tokenStore: 'file', openUrl: async (u) => void opened.push(u) });
    await assert.rejects(client.accessToken(), (err) => isClientError(err, 'pkce_unsupported') && err.message.includes('S256'));
    assert.equal(opened.length, 0, 'no authorization request was opened');
    assert.ok(!seen.includes('POST /register'), 'no registration was attempted');
  });

  it('MCP 2025-11-25 §Authorization Code Protection: refuses an AS that offers only plain PKCE', async () => {
    metadata = { ...endpoints(), code_challenge_methods_supported: ['plain'] };
    const client = new WardenClient({ serverUrl: `${base}/mcp`, home, tokenStore: 'file', openUrl: async () => undefined });
    await assert.rejects(client.accessToken(), (err) => isClientError(err, 'pkce_unsupported'));
  });

  it('RFC 8414 §3.3: refuses AS metadata whose issuer differs from the issuer it was fetched for', async () => {
    metadata = { ...endpoints(), code_challenge_methods_supported: ['S256'], issuer: 'https://evil.example' };
    const client = new WardenClient({ serverUrl: `${base}/mcp`, home, tokenStore: 'file', openUrl: async () => undefined });
    await assert.rejects(client.accessToken(), (err) => isClientError(err, 'protocol_error') && /issuer/i.test(err.message));
  });

  it('a non-interactive client (token --no-login) fails with login_required instead of opening anything', async () => {
    metadata = { ...endpoints(), code_challenge_methods_supported: ['S256'] };
    seen.length = 0;
    const client = new WardenClient({ serverUrl: `${base}/mcp`, home, tokenStore: 'file', interactive: false, clientId: 'pre-registered' });
    await assert.rejects(client.accessToken(), (err) => isClientError(err, 'login_required'));
  });
});
