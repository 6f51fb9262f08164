import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as oauth from 'oauth4webapi';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { startEmbeddedAs, TEST_PASSWORD, type EmbeddedAs } from '../helpers/embedded-as.ts';
import { authorize, Browser, discover, obtainTokens, registerPublicClient } from '../helpers/oauth.ts';

const insecure = { [oauth.allowInsecureRequests]: true } as const;

describe('authorization code flow (oauth4webapi)', () => {
  let s: EmbeddedAs;
  before(async () => { s = await startEmbeddedAs(); });
  after(async () => { await s.close(); });

  it('RFC 8414 §2, RFC 9207 §3, RFC 7636 §4.3: metadata advertises S256, CIMD, iss, registration, revocation, introspection and auth methods', async () => {
    for (const path of ['/.well-known/oauth-authorization-server', '/.well-known/openid-configuration']) {
      const res = await fetch(`${s.url}${path}`);
      assert.equal(res.status, 200);
      const md = await res.json() as Record<string, unknown>;
      assert.equal(md.issuer, s.issuer);
      assert.deepEqual(md.code_challenge_methods_supported, ['S256']);
      assert.equal(md.client_id_metadata_document_supported, true);
      assert.equal(md.authorization_response_iss_parameter_supported, true);
      assert.equal(md.registration_endpoint, `${s.url}/oauth/register`);
      assert.equal(md.revocation_endpoint, `${s.url}/oauth/revoke`);
      assert.equal(md.introspection_endpoint, `${s.url}/oauth/introspect`);
      assert.ok((md.token_endpoint_auth_methods_supported as string[]).includes('private_key_jwt'));
      assert.ok((md.token_endpoint_auth_methods_supported as string[]).includes('client_secret_basic'));
      assert.ok((md.scopes_supported as string[]).includes('offline_access'));
    }
  });

  it('RFC 8414 §3.3: endpoint URLs come from the issuer, not from a spoofed Host or X-Forwarded-Host', async () => {
    const res = await fetch(`${s.url}/.well-known/oauth-authorization-server`, { headers: { 'x-forwarded-host': 'evil.example', 'x-forwarded-proto': 'https' } });
    const md = await res.json() as Record<string, string>;
    assert.equal(md.token_endpoint, `${s.url}/oauth/token`);
  });

  it('mounting: claims /oauth, /interaction and AS metadata, never protected resource metadata or MCP paths', () => {
    assert.ok(s.as.handles('/oauth/token'));
    assert.ok(s.as.handles('/interaction/abc'));
    assert.ok(s.as.handles('/.well-known/oauth-authorization-server'));
    assert.ok(!s.as.handles('/.well-known/oauth-protected-resource'));
    assert.ok(!s.as.handles('/.well-known/oauth-protected-resource/mcp'));
    assert.ok(!s.as.handles('/mcp'));
  });

  it('RFC 9068 / RFC 8707 §2: the access token is an ES256 at+jwt with aud = the resource, client_id, scope and roles', async () => {
    const t = await obtainTokens({ issuer: s.issuer, username: 'alice', password: TEST_PASSWORD, resource: s.resource, scope: 'notes:read notes:write' });
    const header = decodeProtectedHeader(t.access_token);
    assert.equal(header.typ, 'at+jwt');
    assert.equal(header.alg, 'ES256');
    const { payload } = await jwtVerify(t.access_token, createLocalJWKSet(await s.as.publicJwks()), { issuer: s.issuer, audience: s.resource, typ: 'at+jwt', algorithms: ['ES256'] });
    assert.equal(payload.sub, 'alice');
    assert.equal(payload.client_id, t.clientId);
    assert.equal(payload.scope, 'notes:read notes:write');
    assert.deepEqual(payload.roles, ['admin']);
    assert.equal(t.expires_in, 900, 'lifetime defaults to 15 minutes');
    assert.ok(t.refresh_token, 'a refresh token is issued to a client registered for refresh_token');
  });

  it('JWKS: the published keys are public only and verify the token', async () => {
    const jwks = await (await fetch(`${s.url}/oauth/jwks`)).json() as { keys: Array<Record<string, unknown>> };
    assert.ok(jwks.keys.length >= 1);
    for (const k of jwks.keys) assert.equal(k.d, undefined);
    assert.deepEqual(jwks.keys.map((k) => k.kid).sort(), (await s.as.publicJwks()).keys.map((k) => k.kid).sort());
  });

  it('RFC 6749 §4.1.2 / RFC 9207: the callback echoes state and carries iss', async () => {
    const clientId = await registerPublicClient(s.issuer);
    const r = await authorize({ issuer: s.issuer, clientId, username: 'bob', password: TEST_PASSWORD, resource: s.resource, scope: 'notes:read' });
    assert.equal(r.callbackUrl.searchParams.get('state'), r.state);
    assert.equal(r.callbackUrl.searchParams.get('iss'), s.issuer);
    assert.ok(r.callbackUrl.searchParams.get('code'));
  });

  it('MCP §Scope Selection Strategy: a request without scope gets the server\'s default scopes, not access_denied', async () => {
    const t = await obtainTokens({ issuer: s.issuer, username: 'bob', password: TEST_PASSWORD, resource: s.resource, offlineAccess: false });
    assert.equal(t.scope, 'notes:read notes:write', 'no requiredScopes configured: all of the server\'s scopes');
  });

  it('RFC 8252 §7.3: a loopback redirect URI matches with any port', async () => {
    const clientId = await registerPublicClient(s.issuer, 'http://127.0.0.1/callback');
    const t = await obtainTokens({ issuer: s.issuer, clientId, redirectUri: 'http://127.0.0.1:53123/callback', username: 'bob', password: TEST_PASSWORD, resource: s.resource, scope: 'notes:read' });
    assert.ok(t.access_token);
  });

  it('OAuth 2.1 §4.1.2.1: a redirect_uri that is not registered gets an error page, never a redirect', async () => {
    const clientId = await registerPublicClient(s.issuer, 'http://127.0.0.1/callback');
    const url = `${s.url}/oauth/authorize?` + new URLSearchParams({
      client_id: clientId, redirect_uri: 'http://127.0.0.1/other', response_type: 'code', code_challenge: 'x'.repeat(43), code_challenge_method: 'S256', resource: s.resource, state: 's',
    });
    const res = await fetch(url, { redirect: 'manual', headers: { accept: 'text/html' } });
    assert.equal(res.status, 400);
    assert.equal(res.headers.get('location'), null);
    const html = await res.text();
    assert.match(html, /redirect_uri/);
    assert.doesNotMatch(html, /at \w+ \(|node_modules/, 'no stack trace');
    assert.match(res.headers.get('content-security-policy') ?? '', /frame-ancestors 'none'/);
  });

  it('RFC 9207 / OAuth 2.1 §7.5.2: plain PKCE is refused', async () => {
    const clientId = await registerPublicClient(s.issuer);
    const r = await authorize({ issuer: s.issuer, clientId, username: 'bob', password: TEST_PASSWORD, resource: s.resource, scope: 'notes:read', extraParams: { code_challenge_method: 'plain' } });
    assert.equal(r.callbackUrl.searchParams.get('error'), 'invalid_request');
    assert.equal(r.callbackUrl.searchParams.get('iss'), s.issuer);
  });

  it('OAuth 2.1 §4.1.1: a request without code_challenge is refused (PKCE required)', async () => {
    const clientId = await registerPublicClient(s.issuer);
    const url = `${s.url}/oauth/authorize?` + new URLSearchParams({ client_id: clientId, redirect_uri: 'http://127.0.0.1/callback', response_type: 'code', resource: s.resource, state: 'st' });
    const res = await fetch(url, { redirect: 'manual' });
    const location = new URL(res.headers.get('location')!);
    assert.equal(location.origin + location.pathname, 'http://127.0.0.1/callback');
    assert.equal(location.searchParams.get('error'), 'invalid_request');
    assert.equal(location.searchParams.get('state'), 'st');
  });

  it('RFC 8707 §2: an unknown resource gets invalid_target at the client', async () => {
    const clientId = await registerPublicClient(s.issuer);
    const url = `${s.url}/oauth/authorize?` + new URLSearchParams({
      client_id: clientId, redirect_uri: 'http://127.0.0.1/callback', response_type: 'code', state: 'st',
      code_challenge: await oauth.calculatePKCECodeChallenge(oauth.generateRandomCodeVerifier()), code_challenge_method: 'S256',
      resource: 'https://elsewhere.example/mcp', scope: 'notes:read',
    });
    const res = await fetch(url, { redirect: 'manual' });
    const location = new URL(res.headers.get('location')!);
    assert.equal(location.searchParams.get('error'), 'invalid_target');
    // Prefix of a configured resource is not the resource either.
    const res2 = await fetch(url.replace(encodeURIComponent('https://elsewhere.example/mcp'), encodeURIComponent(`${s.resource}/sub`)), { redirect: 'manual' });
    assert.equal(new URL(res2.headers.get('location')!).searchParams.get('error'), 'invalid_target');
  });

  it('RFC 7636 §4.6 / RFC 6749 §4.1.2: a wrong code_verifier and a reused code get invalid_grant', async () => {
    const clientId = await registerPublicClient(s.issuer);
    const as = await discover(s.issuer);
    const client = { client_id: clientId };
    const r = await authorize({ issuer: s.issuer, clientId, username: 'bob', password: TEST_PASSWORD, resource: s.resource, scope: 'notes:read' });
    const params = oauth.validateAuthResponse(as, client, r.callbackUrl, r.state);
    const bad = await oauth.authorizationCodeGrantRequest(as, client, oauth.None(), params, 'http://127.0.0.1/callback', oauth.generateRandomCodeVerifier(), { additionalParameters: { resource: s.resource }, ...insecure });
    assert.equal(bad.status, 400);
    assert.equal(bad.headers.get('cache-control'), 'no-store');
    assert.equal((await bad.json() as { error: string }).error, 'invalid_grant');
    const good = await oauth.authorizationCodeGrantRequest(as, client, oauth.None(), params, 'http://127.0.0.1/callback', r.codeVerifier, { additionalParameters: { resource: s.resource }, ...insecure });
    assert.equal(good.status, 200);
    await good.arrayBuffer();
    const reused = await oauth.authorizationCodeGrantRequest(as, client, oauth.None(), params, 'http://127.0.0.1/callback', r.codeVerifier, { additionalParameters: { resource: s.resource }, ...insecure });
    assert.equal(reused.status, 400);
    assert.equal((await reused.json() as { error: string }).error, 'invalid_grant');
  });

  it('RFC 8707 §2.2: a token request for a different resource than authorized gets invalid_target', async () => {
    const clientId = await registerPublicClient(s.issuer);
    const as = await discover(s.issuer);
    const client = { client_id: clientId };
    const r = await authorize({ issuer: s.issuer, clientId, username: 'bob', password: TEST_PASSWORD, resource: s.resource, scope: 'notes:read' });
    const params = oauth.validateAuthResponse(as, client, r.callbackUrl, r.state);
    const res = await oauth.authorizationCodeGrantRequest(as, client, oauth.None(), params, 'http://127.0.0.1/callback', r.codeVerifier, { additionalParameters: { resource: 'https://elsewhere.example/mcp' }, ...insecure });
    assert.equal(res.status, 400);
    assert.equal((await res.json() as { error: string }).error, 'invalid_target');
  });

  it('consent is remembered per (user, client, scopes) and asked again for a new scope', async () => {
    // A pre-registered client: a DCR client's remembered consent needs the user's own navigation
    // (remembered-consent.test.ts).
    const { clientId } = await s.as.clients.add({ clientName: 'Remembered', type: 'public', applicationType: 'native', redirectUris: ['http://127.0.0.1/callback'] });
    const browser = new Browser();
    const first = await authorize({ issuer: s.issuer, clientId, browser, username: 'alice', password: TEST_PASSWORD, resource: s.resource, scope: 'notes:read' });
    assert.equal(first.consentShown, true);
    // A new browser (no session) still skips consent: it is remembered server-side.
    const second = await authorize({ issuer: s.issuer, clientId, username: 'alice', password: TEST_PASSWORD, resource: s.resource, scope: 'notes:read' });
    assert.equal(second.consentShown, false);
    assert.ok(second.callbackUrl.searchParams.get('code'));
    const third = await authorize({ issuer: s.issuer, clientId, username: 'alice', password: TEST_PASSWORD, resource: s.resource, scope: 'notes:read notes:write' });
    assert.equal(third.consentShown, true, 'a scope not consented before needs consent');
    const listed = await s.as.consents.list({ accountId: 'alice', clientId });
    assert.equal(listed.length, 1);
    assert.deepEqual(listed[0]!.scopes.filter((x) => x.startsWith('notes:')).sort(), ['notes:read', 'notes:write']);
  });

  it('revoking a consent asks again and revokes the tokens of its grant', async () => {
    const t = await obtainTokens({ issuer: s.issuer, username: 'bob', password: TEST_PASSWORD, resource: s.resource, scope: 'notes:read' });
    assert.equal(await s.as.consents.revoke('bob', t.clientId), 1);
    const as = await discover(s.issuer);
    const res = await oauth.refreshTokenGrantRequest(as, { client_id: t.clientId }, oauth.None(), t.refresh_token!, { additionalParameters: { resource: s.resource }, ...insecure });
    assert.equal((await res.json() as { error: string }).error, 'invalid_grant');
    const again = await authorize({ issuer: s.issuer, clientId: t.clientId, username: 'bob', password: TEST_PASSWORD, resource: s.resource, scope: 'notes:read' });
    assert.equal(again.consentShown, true);
  });

  it('RFC 6749 §4.1.2.1: Deny reaches the client as access_denied with state and iss', async () => {
    const clientId = await registerPublicClient(s.issuer);
    const r = await authorize({ issuer: s.issuer, clientId, consent: 'deny', username: 'bob', password: TEST_PASSWORD, resource: s.resource, scope: 'notes:read' });
    assert.equal(r.callbackUrl.searchParams.get('error'), 'access_denied');
    assert.equal(r.callbackUrl.searchParams.get('state'), r.state);
    assert.equal(r.callbackUrl.searchParams.get('iss'), s.issuer);
    assert.equal(r.callbackUrl.searchParams.get('code'), null);
  });
});

describe('login and consent pages', () => {
  let s: EmbeddedAs;
  before(async () => { s = await startEmbeddedAs(); });
  after(async () => { await s.close(); });

  async function openLogin(browser: Browser): Promise<{ url: string; html: string; res: Response }> {
    const clientId = await registerPublicClient(s.issuer, 'http://127.0.0.1/callback', 'Page Test Client');
    const url = `${s.url}/oauth/authorize?` + new URLSearchParams({
      client_id: clientId, redirect_uri: 'http://127.0.0.1/callback', response_type: 'code', state: 'st', scope: 'notes:read',
      code_challenge: await oauth.calculatePKCECodeChallenge(oauth.generateRandomCodeVerifier()), code_challenge_method: 'S256', resource: s.resource,
    });
    const step = await browser.follow(url, s.url);
    return { url: step.url, html: await step.response.text(), res: step.response };
  }

  it('the login page is labelled, framed-off by CSP, not cached, and has no external assets', async () => {
    const { html, res } = await openLogin(new Browser());
    assert.match(html, /<label for="username">Username<\/label>/);
    assert.match(html, /<label for="password">Password<\/label>/);
    assert.match(html, /<button type="submit">Sign in<\/button>/);
    assert.match(html, /Page Test Client/);
    assert.doesNotMatch(html, /https?:\/\/(?!127\.0\.0\.1)/, 'no external URLs');
    assert.doesNotMatch(html, /<script/);
    const csp = res.headers.get('content-security-policy') ?? '';
    assert.match(csp, /frame-ancestors 'none'/);
    assert.match(csp, /default-src 'none'/);
    assert.equal(res.headers.get('cache-control'), 'no-store');
    assert.equal(res.headers.get('x-frame-options'), 'DENY');
  });

  it('a wrong password re-renders the login with 401 and no hint which part was wrong', async () => {
    const browser = new Browser();
    const { url, html } = await openLogin(browser);
    const res = await browser.submit(url, html, { username: 'alice', password: 'wrong password' });
    assert.equal(res.status, 401);
    assert.match(await res.text(), /Invalid username or password/);
    const unknown = await openLogin(browser);
    const res2 = await browser.submit(unknown.url, unknown.html, { username: 'nobody', password: 'wrong password' });
    assert.equal(res2.status, 401);
  });

  it('CSRF: a login POST without the form token, or with a foreign Origin, is refused with 403', async () => {
    const browser = new Browser();
    const { url, html } = await openLogin(browser);
    const action = new URL(/<form[^>]*action="([^"]+)"/.exec(html)![1]!, url).href;
    const noToken = await browser.fetch(action, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ username: 'alice', password: TEST_PASSWORD }).toString() });
    assert.equal(noToken.status, 403);
    const csrf = /name="csrf" value="([^"]+)"/.exec(html)![1]!;
    const foreign = await browser.fetch(action, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'https://evil.example' }, body: new URLSearchParams({ csrf, username: 'alice', password: TEST_PASSWORD }).toString() });
    assert.equal(foreign.status, 403);
    const wrongToken = await browser.fetch(action, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ csrf: csrf.slice(1) + 'A', username: 'alice', password: TEST_PASSWORD }).toString() });
    assert.equal(wrongToken.status, 403);
  });

  it('bad form input: repeated fields → 400, GET on a POST target → 405 with Allow, unknown interaction path → 404', async () => {
    const browser = new Browser();
    const { url, html } = await openLogin(browser);
    const action = new URL(/<form[^>]*action="([^"]+)"/.exec(html)![1]!, url).href;
    const csrf = /name="csrf" value="([^"]+)"/.exec(html)![1]!;
    const dup = await browser.fetch(action, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `csrf=${csrf}&username=alice&username=bob&password=x` });
    assert.equal(dup.status, 400);
    const json = await browser.fetch(action, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    assert.equal(json.status, 400);
    const get = await browser.fetch(action);
    assert.equal(get.status, 405);
    assert.equal(get.headers.get('allow'), 'POST');
    assert.equal((await fetch(`${s.url}/interaction/..%2Fetc`)).status, 404);
    const big = await browser.fetch(action, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `csrf=${csrf}&username=${'a'.repeat(20_000)}` });
    assert.equal(big.status, 400);
  });

  it('consent: a missing or forged CSRF token → 403; an unknown decision → 400; nothing is granted', async () => {
    const browser = new Browser();
    const { url, html } = await openLogin(browser);
    const r = await browser.submit(url, html, { username: 'alice', password: TEST_PASSWORD });
    const step = await browser.follow(new URL(r.headers.get('location')!, url).href, s.url);
    const consent = await step.response.text();
    const action = new URL(/<form[^>]*action="([^"]+)"/.exec(consent)![1]!, step.url).href;
    const forged = await browser.fetch(action, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'csrf=forged&decision=allow' });
    assert.equal(forged.status, 403);
    const odd = await browser.submit(step.url, consent, { decision: 'maybe' });
    assert.equal(odd.status, 400);
    const loginToken = /name="csrf" value="([^"]+)"/.exec(html)![1]!;
    const crossStep = await browser.fetch(action, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `csrf=${loginToken}&decision=allow` });
    assert.equal(crossStep.status, 403, 'the login form token is not valid for consent');
  });

  it('metadata is read-only: POST → 405 with Allow', async () => {
    const res = await fetch(`${s.url}/.well-known/oauth-authorization-server`, { method: 'POST' });
    assert.equal(res.status, 405);
    assert.match(res.headers.get('allow') ?? '', /GET/);
    assert.equal(res.headers.get('cache-control'), 'no-store');
  });

  it('an interaction opened without its cookie (another browser) is refused', async () => {
    const { url } = await openLogin(new Browser());
    const res = await fetch(url);
    assert.equal(res.status, 400);
    assert.match(await res.text(), /expired|another browser/);
  });

  it('the consent page names the client, "unverified" for DCR, the redirect host, and scopes in plain words', async () => {
    const browser = new Browser();
    const { url, html } = await openLogin(browser);
    const r = await browser.submit(url, html, { username: 'bob', password: TEST_PASSWORD });
    const step = await browser.follow(new URL(r.headers.get('location')!, url).href, s.url);
    const consent = await step.response.text();
    assert.match(consent, /<span id="client-name">Page Test Client<\/span> <span id="client-badge" class="warn">\(unverified/);
    assert.match(consent, /<dd id="client-origin" class="warn">registered itself: unverified<\/dd>/);
    assert.match(consent, /<dd id="redirect-host"><strong>127\.0\.0\.1/);
    assert.match(consent, /Read your notes/);
    assert.doesNotMatch(consent, /Create and delete notes/, 'only the requested scopes are listed');
    assert.match(consent, />Allow</);
    assert.match(consent, />Deny</);
  });
});

describe('issuer with a path', () => {
  let s: EmbeddedAs;
  before(async () => {
    s = await startEmbeddedAs({ configure: (url) => ({ issuer: `${url}/auth` }) });
  });
  after(async () => { await s.close(); });

  it('RFC 8414 §3.1: metadata at the path-inserted location names endpoints under the issuer path, and the flow works', async () => {
    assert.equal(s.issuer, `${s.url}/auth`);
    assert.ok(s.as.handles('/.well-known/oauth-authorization-server/auth'));
    assert.ok(s.as.handles('/auth/oauth/token'));
    assert.ok(!s.as.handles('/oauth/token'));
    const md = await (await fetch(`${s.url}/.well-known/oauth-authorization-server/auth`)).json() as Record<string, string>;
    assert.equal(md.issuer, s.issuer);
    assert.equal(md.token_endpoint, `${s.url}/auth/oauth/token`);
    const t = await obtainTokens({ issuer: s.issuer, username: 'bob', password: TEST_PASSWORD, resource: s.resource, scope: 'notes:read' });
    const claims = JSON.parse(Buffer.from(t.access_token.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;
    assert.equal(claims.iss, s.issuer);
  });
});

describe('several MCP servers', () => {
  let s: EmbeddedAs;
  before(async () => {
    s = await startEmbeddedAs({ servers: [
      { name: 'notes', path: '/mcp', upstream: { stdio: { command: 'true' } }, scopes: ['notes:read'] },
      { name: 'gh', path: '/mcp/github', upstream: { stdio: { command: 'true' } }, scopes: ['repo:read'] },
    ] });
  });
  after(async () => { await s.close(); });

  it('RFC 8707 §2: without resource the request is ambiguous → invalid_target at the client', async () => {
    const clientId = await registerPublicClient(s.issuer);
    const url = `${s.url}/oauth/authorize?` + new URLSearchParams({
      client_id: clientId, redirect_uri: 'http://127.0.0.1/callback', response_type: 'code', state: 'st', scope: 'notes:read',
      code_challenge: await oauth.calculatePKCECodeChallenge(oauth.generateRandomCodeVerifier()), code_challenge_method: 'S256',
    });
    const location = new URL((await fetch(url, { redirect: 'manual' })).headers.get('location')!);
    assert.equal(location.searchParams.get('error'), 'invalid_target');
  });

  it('RFC 8707 §2: each token names one server and carries only that server\'s scopes', async () => {
    const t = await obtainTokens({ issuer: s.issuer, username: 'bob', password: TEST_PASSWORD, resource: `${s.url}/mcp/github`, scope: 'repo:read notes:read' });
    const claims = JSON.parse(Buffer.from(t.access_token.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;
    assert.equal(claims.aud, `${s.url}/mcp/github`);
    assert.equal(claims.scope, 'repo:read');
  });
});

describe('scopes limited by the user', () => {
  let s: EmbeddedAs;
  before(async () => {
    s = await startEmbeddedAs({ options: { scopesForUser: (user, resource) => (user.roles.includes('admin') ? resource.scopes : resource.scopes.filter((x) => x !== 'notes:write')) } });
  });
  after(async () => { await s.close(); });

  it('RFC 6749 §3.3: scope is the requested scopes ∩ the server\'s ∩ what the user may have', async () => {
    const bob = await obtainTokens({ issuer: s.issuer, username: 'bob', password: TEST_PASSWORD, resource: s.resource, scope: 'notes:read notes:write other:scope' });
    assert.equal(bob.scope, 'notes:read');
    const alice = await obtainTokens({ issuer: s.issuer, username: 'alice', password: TEST_PASSWORD, resource: s.resource, scope: 'notes:read notes:write other:scope' });
    assert.equal(alice.scope, 'notes:read notes:write');
  });
});
