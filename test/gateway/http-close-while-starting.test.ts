/**
 * An endpoint that stops while a session's HTTP upstream connection is being made: its downstream
 * credentials can take a while (an RFC 8693 exchange), and the endpoint can close meanwhile. The
 * session ended with the endpoint; what the connect produced is let go of, and the client's
 * `initialize` is answered 503 `shutting_down` (MCP lifecycle §Shutdown; RFC 9110 §15.6.4) rather
 * than sent to an upstream the endpoint has closed.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseConfig } from '../../src/config/load.ts';
import type { DownstreamCredentials } from '../../src/downstream/types.ts';
import { createServerEndpoint } from '../../src/gateway/server-endpoint.ts';
import { createTokenVerifier } from '../../src/gateway/token-verifier.ts';
import { createHttpUpstream } from '../../src/gateway/upstreams/http.ts';
import { silentLogger } from '../../src/log.ts';
import { initializeMessage, post } from './fixtures/raw.ts';
import { startFixtureIssuer } from './fixtures/issuer.ts';
import { startHttpUpstream } from './fixtures/http-upstream.ts';
import { waitFor } from '../helpers/wait-for.ts';

describe('an endpoint closed while a session\'s HTTP upstream connects', () => {
  it('MCP lifecycle §Shutdown: the initialize is answered 503 shutting_down with Retry-After, and the upstream is never sent it', async () => {
    const issuer = await startFixtureIssuer();
    const fixture = await startHttpUpstream();
    const http = createServer();
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
    const base = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
    const config = parseConfig({ publicUrl: base, authorizationServer: { external: { issuer: issuer.issuer } }, servers: [{ name: 'remote', path: '/mcp', upstream: { http: { url: fixture.url } } }] });
    const server = config.servers[0]!;
    const upstreamHttp = (server.upstream as { http: NonNullable<Extract<typeof server.upstream, { http: unknown }>['http']> }).http;
    let release: (() => void) | undefined;
    const slow: DownstreamCredentials = {
      envFor: async () => ({}),
      // As an RFC 8693 exchange that takes its time.
      headersFor: () => new Promise((resolve) => { release = () => resolve({}); }),
    };
    const endpoint = createServerEndpoint({
      config, server, verifier: createTokenVerifier({ config }), policy: undefined, logger: silentLogger,
      upstream: createHttpUpstream({ server, http: upstreamHttp, logger: silentLogger, downstream: slow }),
      audit: { record() {}, close: async () => {} }, downstream: slow, checkOrigin: () => undefined,
    });
    http.on('request', (req, res) => void endpoint.handle(req, res, ''));
    let closed = false;
    try {
      const sessions = fixture.sessions();
      const token = await issuer.mint({ aud: `${base}/mcp` });
      const answer = post(`${base}/mcp`, token, initializeMessage());
      await waitFor(() => release !== undefined, 'the upstream connection to be under way');
      assert.equal(endpoint.sessionCount, 1);
      // What the instance's close does (src/app.ts): stopping, then every session ends.
      endpoint.stop();
      closed = true;
      await endpoint.close();
      release!();
      const res = await answer;
      assert.equal(res.status, 503);
      assert.equal(res.headers.get('retry-after'), '1');
      assert.match((await res.json()).error.message, /stopping/);
      assert.equal(endpoint.sessionCount, 0);
      assert.equal(fixture.sessions(), sessions, 'no initialize reached the upstream');
    } finally {
      if (!closed) await endpoint.close();
      http.closeAllConnections();
      await new Promise((r) => http.close(r));
      await fixture.close();
      await issuer.close();
    }
  });
});
