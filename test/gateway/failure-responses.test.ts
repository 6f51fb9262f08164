import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startTestWarden } from './fixtures/warden.ts';
import { initializeMessage, post, TINY_SERVER } from './fixtures/raw.ts';
import { startFixtureIssuer } from './fixtures/issuer.ts';
import { parseConfig } from '../../src/config/load.ts';
import { createServerEndpoint } from '../../src/gateway/server-endpoint.ts';
import { createTokenVerifier } from '../../src/gateway/token-verifier.ts';
import { createStdioUpstream } from '../../src/gateway/upstreams/stdio.ts';
import { DownstreamCredentialError } from '../../src/downstream/errors.ts';
import type { DownstreamCredentials } from '../../src/downstream/types.ts';
import { silentLogger } from '../../src/log.ts';
import { messagesOf } from './fixtures/raw.ts';
import { capturingLogger } from '../helpers/capturing-logger.ts';
import { waitFor } from '../helpers/wait-for.ts';

describe('errors a client sees when something behind the gateway fails', () => {
  it('RFC 6750 §3.1: an issuer unreachable from the start (discovery/JWKS down) is reported once at start, and a request is 503 without a challenge, not 401 invalid_token', async () => {
    // Closed before the gateway starts: its keys are never fetched (mint signs locally).
    const issuer = await startFixtureIssuer();
    await issuer.close();
    const { logger, lines } = capturingLogger();
    const other = await startTestWarden({ servers: [{ name: 'tiny', path: '/mcp', upstream: { stdio: TINY_SERVER }, scopes: ['mcp:read'] }], issuer, logger });
    try {
      await waitFor(() => lines.some((l) => l.event === 'issuer_unavailable_at_start'), 'the start-up warning');
      const token = await issuer.mint({ aud: other.endpoint, scope: 'mcp:read' });
      const res = await post(other.endpoint, token, initializeMessage());
      assert.equal(res.status, 503);
      assert.equal(res.headers.get('www-authenticate'), null);
      const body = await res.json();
      assert.equal(body.error.code, -32603);
      assert.equal(lines.filter((l) => l.event === 'issuer_unavailable_at_start').length, 1);
    } finally {
      await other.close();
    }
  });

  it('RFC 8414 §3 / RFC 7517: an external issuer\'s metadata and keys are fetched at start, so a first request verifies with no fetch on its path, and with the issuer gone since', async () => {
    const other = await startTestWarden({ servers: [{ name: 'tiny', path: '/mcp', upstream: { stdio: TINY_SERVER }, scopes: ['mcp:read'] }] });
    try {
      await waitFor(() => other.issuer.jwksCalls === 1, 'the JWKS fetched at start, before any request');
      const token = await other.issuer.mint({ aud: other.endpoint, scope: 'mcp:read' });
      await other.issuer.close();
      const res = await post(other.endpoint, token, initializeMessage());
      assert.equal(res.status, 200, await res.clone().text());
      assert.equal(other.issuer.jwksCalls, 1);
    } finally {
      await other.close();
    }
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

  it('MCP security best practices: an unreachable HTTP upstream is reported as "the upstream MCP server failed" with the session ID; the address and cause go only to the log', async () => {
    // A port that was just free: nothing listens on it.
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const closedPort = (probe.address() as AddressInfo).port;
    await new Promise((r) => probe.close(r));
    const { logger, lines } = capturingLogger();
    const t = await startTestWarden({ servers: [{ name: 'down', path: '/mcp', upstream: { http: { url: `http://127.0.0.1:${closedPort}/mcp` } } }], logger });
    try {
      const token = await t.issuer.mint({ aud: t.endpoint });
      const res = await post(t.endpoint, token, initializeMessage());
      assert.equal(res.status, 200);
      const sid = res.headers.get('mcp-session-id');
      assert.ok(sid, 'the session the failure happened in is named');
      const [answer] = await messagesOf(res);
      assert.equal(answer.error.code, -32603);
      assert.equal(answer.error.message, `the upstream MCP server failed (session ${sid})`);
      const text = JSON.stringify(answer);
      assert.doesNotMatch(text, /ECONNREFUSED|127\.0\.0\.1|connect /);
      assert.ok(!text.includes(String(closedPort)), 'no port in the answer');
      const logged = lines.find((l) => l.sessionId === sid && typeof l.reason === 'string' && (l.reason as string).includes('ECONNREFUSED'));
      assert.ok(logged, 'the cause is logged with the session ID');
      assert.match(logged.reason as string, new RegExp(`127\\.0\\.0\\.1:${closedPort}`));
    } finally {
      await t.close();
    }
  });
});
