/**
 * Three `mcp-warden start` processes on one PostgreSQL schema and one Redis, behind Debian's nginx
 * round-robin with no stickiness (test/helpers/cluster.ts). Every request of a sign-in — discovery,
 * dynamic client registration, the authorization request, the login and consent forms, the code
 * redemption, each refresh — goes to whichever instance nginx picks next, and the journey works
 * because the authorization server's state lives in PostgreSQL. nginx's access log
 * (`$upstream_addr`) shows that each instance served part of it.
 *
 * The official SDK clients (v2 `@modelcontextprotocol/client`, v1 `@modelcontextprotocol/sdk`)
 * run their own `auth()` against the public URL, the user signs in in Chromium; the token they get
 * is then used at each instance directly (an MCP session stays on the instance that opened it
 * until sessions are shared: test/e2e/scale-out-sessions.test.ts covers MCP through nginx).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Client, StreamableHTTPClientTransport, auth as authV2, type OAuthClientProvider } from '@modelcontextprotocol/client';
import { Client as ClientV1 } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport as TransportV1 } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { auth as authV1 } from '@modelcontextprotocol/sdk/client/auth.js';
import { startHttpUpstream, type HttpUpstreamFixture } from '../gateway/fixtures/http-upstream.ts';
import { CLUSTER_PASSWORD, startCluster, type Cluster } from '../helpers/cluster.ts';
import { launchChromium, type ChromiumSignIn } from '../helpers/chromium-sign-in.ts';
import { nginxUnavailable, type AccessLogLine } from '../helpers/nginx.ts';
import { waitFor } from '../helpers/wait-for.ts';
import { obtainTokens, refreshTokens } from '../helpers/oauth.ts';
import { postgresUnavailable } from '../helpers/postgres.ts';
import { redisUnavailable } from '../helpers/redis.ts';

const skip = nginxUnavailable() ?? await postgresUnavailable() ?? await redisUnavailable();

/** An OAuthClientProvider kept in memory whose user agent is Chromium (same shape in SDK v1 and v2). */
function chromiumProvider(chromium: ChromiumSignIn, name: string) {
  const state: { client?: unknown; tokens?: { access_token: string; refresh_token?: string }; verifier?: string; callback?: URL } = {};
  const provider = {
    get redirectUrl() { return chromium.redirectUri; },
    get clientMetadata() {
      return { client_name: name, redirect_uris: [chromium.redirectUri], grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'], token_endpoint_auth_method: 'none' };
    },
    clientInformation: () => state.client as never,
    saveClientInformation: (c: unknown) => { state.client = c; },
    tokens: () => state.tokens as never,
    saveTokens: (t: { access_token: string }) => { state.tokens = t; },
    saveCodeVerifier: (v: string) => { state.verifier = v; },
    codeVerifier: () => state.verifier!,
    async redirectToAuthorization(url: URL) {
      state.callback = await chromium.signIn(url.href, { username: 'alice', password: CLUSTER_PASSWORD });
    },
  };
  return { provider, state };
}

const tokenRequest = (line: AccessLogLine) => line.method === 'POST' && line.uri === '/oauth/token';


describe('three instances behind nginx round-robin, no stickiness: sign-in and refresh', { skip }, () => {
  let upstream: HttpUpstreamFixture;
  let cluster: Cluster;
  let chromium: ChromiumSignIn;

  before(async () => {
    upstream = await startHttpUpstream();
    cluster = await startCluster({ upstreamUrl: upstream.url, dirPrefix: 'warden-scale-out-sign-in-' });
    chromium = await launchChromium();
  });
  after(async () => {
    await chromium?.close();
    await cluster?.stop();
    await upstream?.close();
  });

  /** The token works at each instance: an MCP session opened there lists and calls tools. */
  async function useAtEachInstance(token: string, sdk: 'v1' | 'v2'): Promise<void> {
    for (const instance of cluster.instances) {
      const url = new URL(`${instance.url}/mcp`);
      const authProvider = { token: async () => token };
      if (sdk === 'v2') {
        const client = new Client({ name: 'scale-out-v2', version: '1.0.0' });
        await client.connect(new StreamableHTTPClientTransport(url, { authProvider }));
        assert.ok((await client.listTools()).tools.some((t) => t.name === 'echo'));
        assert.deepEqual((await client.callTool({ name: 'echo', arguments: { message: `at ${instance.index}` } })).content, [{ type: 'text', text: `at ${instance.index}` }]);
        await client.close();
      } else {
        const client = new ClientV1({ name: 'scale-out-v1', version: '1.0.0' });
        await client.connect(new TransportV1(url, { requestInit: { headers: { authorization: `Bearer ${token}` } } }));
        assert.ok((await client.listTools()).tools.some((t) => t.name === 'echo'));
        assert.deepEqual((await client.callTool({ name: 'echo', arguments: { message: `at ${instance.index}` } })).content, [{ type: 'text', text: `at ${instance.index}` }]);
        await client.close();
      }
    }
  }

  it('MCP 2025-11-25 authorization + RFC 7591 + RFC 8707: SDK v2 auth() through nginx, sign-in in Chromium; every instance served part of it and accepts the token', async () => {
    const from = cluster.nginx.accessLog().length;
    const { provider, state } = chromiumProvider(chromium, 'scale-out SDK v2');
    const serverUrl = `${cluster.front}/mcp`;
    assert.equal(await authV2(provider as OAuthClientProvider, { serverUrl }), 'REDIRECT');
    assert.equal(state.callback?.searchParams.get('error'), null, `authorization failed: ${state.callback?.href}`);
    // RFC 9207 §2.4: the SDK checks the callback's `iss` against the issuer it discovered.
    const callback = state.callback!.searchParams;
    assert.equal(await authV2(provider as OAuthClientProvider, { serverUrl, authorizationCode: callback.get('code')!, iss: callback.get('iss') ?? undefined }), 'AUTHORIZED');
    const hits = cluster.hitsPerInstance(from);
    assert.ok(hits.every((n) => n >= 1), `each instance served part of the sign-in: ${hits.join(', ')}`);
    await useAtEachInstance(state.tokens!.access_token, 'v2');
  });

  it('MCP 2025-11-25 authorization + RFC 7591 + RFC 8707: SDK v1 auth() through nginx, sign-in in Chromium; every instance served part of it and accepts the token', async () => {
    const from = cluster.nginx.accessLog().length;
    const { provider, state } = chromiumProvider(chromium, 'scale-out SDK v1');
    const serverUrl = `${cluster.front}/mcp`;
    assert.equal(await authV1(provider as never, { serverUrl }), 'REDIRECT');
    assert.equal(state.callback?.searchParams.get('error'), null, `authorization failed: ${state.callback?.href}`);
    assert.equal(await authV1(provider as never, { serverUrl, authorizationCode: state.callback!.searchParams.get('code')! }), 'AUTHORIZED');
    const hits = cluster.hitsPerInstance(from);
    assert.ok(hits.every((n) => n >= 1), `each instance served part of the sign-in: ${hits.join(', ')}`);
    await useAtEachInstance(state.tokens!.access_token, 'v1');
  });

  it('OAuth 2.1 §4.3.1: refresh tokens rotate while requests hit all three; every rotation, on any instance, is honoured by the next one', async () => {
    const resource = `${cluster.front}/mcp`;
    // Six grants, each refreshed eight times in a row; the grants run at once, with tool calls
    // pinned to each instance alongside, so refreshes and MCP requests interleave on all three.
    const beforeGrants = cluster.nginx.accessLog().length;
    const grants = await Promise.all(Array.from({ length: 6 }, () => obtainTokens({ issuer: cluster.front, resource, scope: 'notes:read', username: 'alice', password: CLUSTER_PASSWORD })));
    // nginx logs a request once it has finished it, which can be just after its client read the
    // answer: the grants' own token requests must be in the log before counting starts.
    await waitFor(() => cluster.hitsPerInstance(beforeGrants, tokenRequest).reduce((a, b) => a + b, 0) >= grants.length, 'the grants\' token requests in the access log');
    const from = cluster.nginx.accessLog().length;
    let refreshed = 0;
    let stop = false;
    const background = cluster.instances.map(async (instance) => {
      let calls = 0;
      const client = new Client({ name: 'background', version: '1.0.0' });
      await client.connect(new StreamableHTTPClientTransport(new URL(`${instance.url}/mcp`), { authProvider: { token: async () => grants[0]!.access_token } }));
      while (!stop) {
        await client.callTool({ name: 'echo', arguments: { message: 'x' } });
        calls++;
      }
      await client.close();
      return calls;
    });
    await Promise.all(grants.map(async (g) => {
      let refresh = g.refresh_token!;
      for (let i = 0; i < 8; i++) {
        const r = await refreshTokens({ issuer: cluster.front, clientId: g.clientId, refreshToken: refresh, resource });
        assert.ok(r.refresh_token && r.refresh_token !== refresh, 'a new refresh token each time');
        refresh = r.refresh_token;
        refreshed++;
        // The new access token is valid wherever the next request lands.
        const probe = await fetch(`${cluster.front}/mcp`, {
          method: 'POST',
          headers: { authorization: `Bearer ${r.access_token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
          body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'probe', version: '1' } } }),
        });
        assert.equal(probe.status, 200);
        await probe.arrayBuffer();
      }
    }));
    stop = true;
    const calls = await Promise.all(background);
    assert.equal(refreshed, 48);
    const tokenHits = cluster.hitsPerInstance(from, tokenRequest);
    assert.equal(tokenHits.reduce((a, b) => a + b, 0), 48);
    // nginx's round robin interleaves these with the probes and the other flows' requests, so the
    // split is uneven (7 of 48 on one instance has been seen): every instance must take its part.
    assert.ok(tokenHits.every((n) => n >= 3), `refreshes spread over every instance: ${tokenHits.join(', ')}`);
    assert.ok(calls.every((n) => n > 0), `tool calls ran on every instance meanwhile: ${calls.join(', ')}`);
  });
});
