/**
 * An endpoint that has closed (the instance's close, after its drain) still receives requests on
 * connections kept alive until the listener lets them go, and requests whose body was still
 * arriving. Their sessions are ending or gone, but they are not unknown: 404 would have the
 * client initialize again (MCP 2025-11-25 transports §Session Management), where a retry reaches
 * an instance that serves the session (a cluster's others adopt it) or answers for itself. So
 * they get 503 `shutting_down` with Retry-After (RFC 9110 §15.6.4; MCP lifecycle §Shutdown).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseConfig } from '../../src/config/load.ts';
import type { DownstreamCredentials } from '../../src/downstream/types.ts';
import { createServerEndpoint } from '../../src/gateway/server-endpoint.ts';
import { createTokenVerifier } from '../../src/gateway/token-verifier.ts';
import { createHttpUpstream } from '../../src/gateway/upstreams/http.ts';
import { silentLogger } from '../../src/log.ts';
import { openSession, post } from './fixtures/raw.ts';
import { startFixtureIssuer } from './fixtures/issuer.ts';
import { startHttpUpstream } from './fixtures/http-upstream.ts';
import { waitFor } from '../helpers/wait-for.ts';

const call = (id: number) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'echo', arguments: { message: 'hi' } } });

describe('a closed endpoint', () => {
  it('MCP lifecycle §Shutdown: a request after the close, or one whose session the close ended while its body arrived, is 503 shutting_down, not 404', async () => {
    const issuer = await startFixtureIssuer();
    const fixture = await startHttpUpstream();
    const http = createServer();
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
    const base = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
    const config = parseConfig({ publicUrl: base, authorizationServer: { external: { issuer: issuer.issuer } }, servers: [{ name: 'remote', path: '/mcp', upstream: { http: { url: fixture.url } } }] });
    const server = config.servers[0]!;
    const upstreamHttp = (server.upstream as { http: NonNullable<Extract<typeof server.upstream, { http: unknown }>['http']> }).http;
    const downstream: DownstreamCredentials = { envFor: async () => ({}), headersFor: async () => ({}) };
    const endpoint = createServerEndpoint({
      config, server, verifier: createTokenVerifier({ config }), policy: undefined, logger: silentLogger,
      upstream: createHttpUpstream({ server, http: upstreamHttp, logger: silentLogger, downstream }),
      audit: { record() {}, close: async () => {} }, downstream, checkOrigin: () => undefined,
    });
    http.on('request', (req, res) => void endpoint.handle(req, res, ''));
    try {
      const token = await issuer.mint({ aud: `${base}/mcp` });
      const sid = await openSession(`${base}/mcp`, token);
      const h = { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' };
      // A request whose body is still arriving when the close begins.
      const body = Buffer.from(JSON.stringify(call(2)));
      let rest!: () => void;
      const arriving = new Promise<{ status: number; retryAfter: string | undefined; text: string }>((resolve, reject) => {
        const req = request(`${base}/mcp`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'content-length': String(body.length), ...h },
        }, (res) => {
          let text = '';
          res.setEncoding('utf8').on('data', (c: string) => { text += c; }).on('end', () => resolve({ status: res.statusCode!, retryAfter: res.headers['retry-after'] as string | undefined, text }));
        });
        req.on('error', reject);
        req.write(body.subarray(0, 10));
        rest = () => req.end(body.subarray(10));
      });
      await waitFor(() => endpoint.pendingRequests === 1, 'the request to be in the endpoint', { timeoutMs: 5_000, intervalMs: 5 });
      endpoint.stop();
      await endpoint.close();
      assert.equal(endpoint.sessionCount, 0, 'the close ended the session');
      rest();
      const cut = await arriving;
      assert.equal(cut.status, 503);
      assert.equal(cut.retryAfter, '1');
      assert.match(cut.text, /stopping/);
      // A request after the close, which this test's listener still accepts.
      const after = await post(`${base}/mcp`, token, call(3), h);
      assert.equal(after.status, 503);
      assert.equal(after.headers.get('retry-after'), '1');
      assert.match((await after.json()).error.message, /stopping/);
    } finally {
      http.closeAllConnections();
      await new Promise((r) => http.close(r));
      await fixture.close();
      await issuer.close();
    }
  });
});
