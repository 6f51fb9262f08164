import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as oauth from 'oauth4webapi';
import { exportJWK, generateKeyPair } from 'jose';
import { startEmbeddedAs, TEST_PASSWORD, type EmbeddedAs } from '../helpers/embedded-as.ts';
import { clientCredentialsToken, discover, obtainTokens, refreshTokens } from '../helpers/oauth.ts';

const insecure = { [oauth.allowInsecureRequests]: true } as const;

function claimsOf(jwt: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;
}

/** RFC 7662 as the confidential demo client would ask; the AS's own answer, `active` only. */
async function introspectActive(s: EmbeddedAs, token: string): Promise<boolean> {
  const as = await discover(s.issuer);
  const { clientId, clientSecret } = await introspector(s);
  const response = await oauth.introspectionRequest(as, { client_id: clientId }, oauth.ClientSecretBasic(clientSecret), token, insecure);
  return (await oauth.processIntrospectionResponse(as, { client_id: clientId }, response)).active;
}

const introspectors = new WeakMap<EmbeddedAs, Promise<{ clientId: string; clientSecret: string }>>();
function introspector(s: EmbeddedAs): Promise<{ clientId: string; clientSecret: string }> {
  let p = introspectors.get(s);
  if (!p) {
    p = s.as.clients.add({ clientName: 'resource server', type: 'confidential' }).then((c) => ({ clientId: c.clientId, clientSecret: c.clientSecret! }));
    introspectors.set(s, p);
  }
  return p;
}

describe('refresh tokens (OAuth 2.1 §4.3.1)', () => {
  let s: EmbeddedAs;
  let strict: EmbeddedAs;
  before(async () => {
    s = await startEmbeddedAs({ embedded: { refreshGraceSeconds: 30 } });
    strict = await startEmbeddedAs({ embedded: { refreshGraceSeconds: 0 } });
  });
  after(async () => { await s.close(); await strict.close(); });

  it('OAuth 2.1 §4.3.1: every refresh rotates the refresh token and keeps the resource binding', async () => {
    const t = await obtainTokens({ issuer: strict.issuer, username: 'bob', password: TEST_PASSWORD, resource: strict.resource, scope: 'notes:read' });
    const r1 = await refreshTokens({ issuer: strict.issuer, clientId: t.clientId, refreshToken: t.refresh_token!, resource: strict.resource });
    assert.ok(r1.refresh_token);
    assert.notEqual(r1.refresh_token, t.refresh_token);
    const claims = JSON.parse(Buffer.from(r1.access_token.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;
    assert.equal(claims.aud, strict.resource);
    assert.equal(claims.scope, 'notes:read');
  });

  it('RFC 9700 §4.14.2: reusing a rotated refresh token revokes the whole family', async () => {
    const t = await obtainTokens({ issuer: strict.issuer, username: 'bob', password: TEST_PASSWORD, resource: strict.resource, scope: 'notes:read' });
    const r1 = await refreshTokens({ issuer: strict.issuer, clientId: t.clientId, refreshToken: t.refresh_token!, resource: strict.resource });
    await assert.rejects(refreshTokens({ issuer: strict.issuer, clientId: t.clientId, refreshToken: t.refresh_token!, resource: strict.resource }),
      (err: oauth.ResponseBodyError) => err.error === 'invalid_grant');
    await assert.rejects(refreshTokens({ issuer: strict.issuer, clientId: t.clientId, refreshToken: r1.refresh_token!, resource: strict.resource }),
      (err: oauth.ResponseBodyError) => err.error === 'invalid_grant', 'the newest token of the family is revoked too');
  });

  it('OAuth 2.1 §4.3.1: two parallel refreshes with one token inside the grace window get the same successor (the family never forks)', async () => {
    const t = await obtainTokens({ issuer: s.issuer, username: 'bob', password: TEST_PASSWORD, resource: s.resource, scope: 'notes:read' });
    const [a, b] = await Promise.all([
      refreshTokens({ issuer: s.issuer, clientId: t.clientId, refreshToken: t.refresh_token!, resource: s.resource }),
      refreshTokens({ issuer: s.issuer, clientId: t.clientId, refreshToken: t.refresh_token!, resource: s.resource }),
    ]);
    assert.ok(a.access_token && b.access_token);
    assert.equal(a.refresh_token, b.refresh_token, 'one successor for both');
    assert.equal(claimsOf(a.access_token).grant_id, claimsOf(b.access_token).grant_id, 'access tokens of the same grant');
    const c = await refreshTokens({ issuer: s.issuer, clientId: t.clientId, refreshToken: a.refresh_token!, resource: s.resource });
    assert.ok(c.access_token);
  });

  it('RFC 9700 §2.2.2: a retry of the same refresh token inside the grace window replays the same successor, every time, while it is unused', async () => {
    const t = await obtainTokens({ issuer: s.issuer, username: 'bob', password: TEST_PASSWORD, resource: s.resource, scope: 'notes:read' });
    const refresh = (refreshToken: string) => refreshTokens({ issuer: s.issuer, clientId: t.clientId, refreshToken, resource: s.resource });
    const r1 = await refresh(t.refresh_token!);
    const r2 = await refresh(t.refresh_token!);
    const r3 = await refresh(t.refresh_token!);
    assert.equal(r2.refresh_token, r1.refresh_token, 'the retry gets the first answer\'s refresh token, not a new branch');
    assert.equal(r3.refresh_token, r1.refresh_token);
    assert.equal(claimsOf(r2.access_token).grant_id, claimsOf(r1.access_token).grant_id);
    assert.equal((await s.as.store.models.list('RefreshToken')).filter((r) => r.payload.grantId === claimsOf(r1.access_token).grant_id).length, 2,
      'the grant holds the rotated-out token and one successor, no fork');
  });

  it('RFC 9700 §4.14.2: a rotated-out token used after its successor was used revokes the whole family, access tokens included', async () => {
    const t = await obtainTokens({ issuer: s.issuer, username: 'bob', password: TEST_PASSWORD, resource: s.resource, scope: 'notes:read' });
    const refresh = (refreshToken: string) => refreshTokens({ issuer: s.issuer, clientId: t.clientId, refreshToken, resource: s.resource });
    const r1 = await refresh(t.refresh_token!);
    const r2 = await refresh(r1.refresh_token!); // the successor is used
    assert.equal(await introspectActive(s, r2.access_token), true);
    await assert.rejects(refresh(t.refresh_token!), (err: oauth.ResponseBodyError) => err.error === 'invalid_grant', 'reuse inside the window is refused');
    await assert.rejects(refresh(r2.refresh_token!), (err: oauth.ResponseBodyError) => err.error === 'invalid_grant', 'the newest token of the family is revoked');
    for (const at of [t.access_token, r1.access_token, r2.access_token]) assert.equal(await introspectActive(s, at), false, 'every access token of the grant is inactive');
  });

  it('RFC 9700 §4.14.2: a rotated-out token used after the grace window revokes the whole family, access tokens included', async () => {
    const t = await obtainTokens({ issuer: strict.issuer, username: 'bob', password: TEST_PASSWORD, resource: strict.resource, scope: 'notes:read' });
    const refresh = (refreshToken: string) => refreshTokens({ issuer: strict.issuer, clientId: t.clientId, refreshToken, resource: strict.resource });
    const r1 = await refresh(t.refresh_token!);
    await assert.rejects(refresh(t.refresh_token!), (err: oauth.ResponseBodyError) => err.error === 'invalid_grant');
    await assert.rejects(refresh(r1.refresh_token!), (err: oauth.ResponseBodyError) => err.error === 'invalid_grant');
    assert.equal(await introspectActive(strict, r1.access_token), false);
  });

  it('OAuth 2.1 §4.3.1: two instances on one database rotating the same token at once answer with one successor', async () => {
    const twin = await startEmbeddedAs({ dir: s.config.storage.sqlite.path.replace(/\/warden\.db$/, ''), config: { publicUrl: s.url }, embedded: { refreshGraceSeconds: 30 } });
    try {
      const t = await obtainTokens({ issuer: s.issuer, username: 'bob', password: TEST_PASSWORD, resource: s.resource, scope: 'notes:read' });
      const rotate = (base: string) => fetch(`${base}/oauth/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: t.refresh_token!, client_id: t.clientId, resource: s.resource }),
      }).then(async (r) => ({ status: r.status, body: await r.json() as { refresh_token?: string } }));
      const [a, b] = await Promise.all([rotate(s.url), rotate(twin.url)]);
      assert.deepEqual([a.status, b.status], [200, 200]);
      assert.equal(a.body.refresh_token, b.body.refresh_token, 'one successor, whichever instance committed first');
    } finally {
      await twin.close();
    }
  });

  it('RFC 8707 §2.2: refreshing for an unknown resource gets invalid_target', async () => {
    const t = await obtainTokens({ issuer: s.issuer, username: 'bob', password: TEST_PASSWORD, resource: s.resource, scope: 'notes:read' });
    await assert.rejects(refreshTokens({ issuer: s.issuer, clientId: t.clientId, refreshToken: t.refresh_token!, resource: 'https://elsewhere.example/mcp' }),
      (err: oauth.ResponseBodyError) => err.error === 'invalid_target');
  });

  it('RFC 6749 §6: a refresh token presented by another client gets invalid_grant', async () => {
    const t = await obtainTokens({ issuer: s.issuer, username: 'bob', password: TEST_PASSWORD, resource: s.resource, scope: 'notes:read' });
    const other = await obtainTokens({ issuer: s.issuer, username: 'bob', password: TEST_PASSWORD, resource: s.resource, scope: 'notes:read' });
    await assert.rejects(refreshTokens({ issuer: s.issuer, clientId: other.clientId, refreshToken: t.refresh_token!, resource: s.resource }),
      (err: oauth.ResponseBodyError) => err.error === 'invalid_grant');
  });
});

describe('client credentials, introspection and revocation', () => {
  let s: EmbeddedAs;
  let agentSecret: string;
  let jwtClient: { clientId: string; key: CryptoKey };
  before(async () => {
    s = await startEmbeddedAs({ embedded: { demo: true } });
    agentSecret = /client_secret: (\S+)/.exec(s.announced.join('\n'))![1]!;
    const { publicKey, privateKey } = await generateKeyPair('ES256');
    const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
    const { clientId } = await s.as.clients.add({ clientName: 'JWT agent', type: 'confidential', grantTypes: ['client_credentials'], jwks: { keys: [jwk] }, scope: 'notes:read', roles: ['member'] });
    jwtClient = { clientId, key: privateKey };
  });
  after(async () => { await s.close(); });

  it('demo mode: the generated demo-agent secret and user password are announced once', async () => {
    assert.equal(s.announced.filter((l) => l.includes('demo-agent')).length, 1);
    assert.equal(s.announced.filter((l) => l.includes('alice')).length, 0, 'alice existed already (seeded by the test)');
  });

  it('MCP client credentials (client_secret_basic): a resource-bound token for demo-agent', async () => {
    const t = await clientCredentialsToken({ issuer: s.issuer, clientSecret: agentSecret, resource: s.resource, scope: 'notes:read' });
    const claims = JSON.parse(Buffer.from(t.access_token.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;
    assert.equal(claims.aud, s.resource);
    assert.equal(claims.client_id, 'demo-agent');
    assert.equal(claims.sub, 'demo-agent');
    assert.equal(claims.scope, 'notes:read');
    assert.equal(t.refresh_token, undefined);
  });

  it('MCP client credentials (private_key_jwt, RFC 7523 §2.2): a resource-bound token with the client\'s roles', async () => {
    const as = await discover(s.issuer);
    const client = { client_id: jwtClient.clientId };
    const res = await oauth.clientCredentialsGrantRequest(as, client, oauth.PrivateKeyJwt({ key: jwtClient.key, kid: 'k1' }), { resource: s.resource, scope: 'notes:read' }, insecure);
    const t = await oauth.processClientCredentialsResponse(as, client, res);
    const claims = JSON.parse(Buffer.from(t.access_token.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;
    assert.equal(claims.aud, s.resource);
    assert.deepEqual(claims.roles, ['member']);
  });

  it('RFC 6749 §5.2: a wrong client secret gets 401 invalid_client with no-store', async () => {
    const as = await discover(s.issuer);
    const res = await oauth.clientCredentialsGrantRequest(as, { client_id: 'demo-agent' }, oauth.ClientSecretBasic('wrong-secret'), { resource: s.resource }, insecure);
    assert.equal(res.status, 401);
    assert.equal(res.headers.get('cache-control'), 'no-store');
    assert.equal((await res.json() as { error: string }).error, 'invalid_client');
  });

  it('client secrets are stored hashed, never in clear', async () => {
    const row = await s.as.store.models.find('Client', 'demo-agent');
    assert.match(String(row!.client_secret), /^sha256\$/);
    assert.notEqual(row!.client_secret, agentSecret);
  });

  it('RFC 8707: client credentials for an unknown resource get invalid_target', async () => {
    await assert.rejects(clientCredentialsToken({ issuer: s.issuer, clientSecret: agentSecret, resource: 'https://elsewhere.example/mcp' }),
      (err: oauth.ResponseBodyError) => err.error === 'invalid_target');
  });

  it('RFC 7662 §2.2: introspection reports an active access token with its claims, and a garbage token as inactive', async () => {
    const t = await clientCredentialsToken({ issuer: s.issuer, clientSecret: agentSecret, resource: s.resource, scope: 'notes:read' });
    const as = await discover(s.issuer);
    const client = { client_id: 'demo-agent' };
    const res = await oauth.introspectionRequest(as, client, oauth.ClientSecretBasic(agentSecret), t.access_token, insecure);
    const body = await oauth.processIntrospectionResponse(as, client, res);
    assert.equal(body.active, true);
    assert.equal(body.aud, s.resource);
    assert.equal(body.scope, 'notes:read');
    const junk = await oauth.introspectionRequest(as, client, oauth.ClientSecretBasic(agentSecret), 'not-a-token', insecure);
    assert.equal((await oauth.processIntrospectionResponse(as, client, junk)).active, false);
  });

  it('RFC 7662 §2.1: introspection requires client authentication', async () => {
    const res = await fetch(`${s.url}/oauth/introspect`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'token=abc' });
    assert.ok(res.status === 400 || res.status === 401);
    assert.match((await res.json() as { error: string }).error, /invalid_(client|request)/);
  });

  it('RFC 7009 §2.1: a revoked access token introspects as inactive; a revoked refresh token no longer refreshes', async () => {
    const t = await clientCredentialsToken({ issuer: s.issuer, clientSecret: agentSecret, resource: s.resource });
    const as = await discover(s.issuer);
    const client = { client_id: 'demo-agent' };
    const rev = await oauth.revocationRequest(as, client, oauth.ClientSecretBasic(agentSecret), t.access_token, insecure);
    await oauth.processRevocationResponse(rev);
    const res = await oauth.introspectionRequest(as, client, oauth.ClientSecretBasic(agentSecret), t.access_token, insecure);
    assert.equal((await oauth.processIntrospectionResponse(as, client, res)).active, false);

    const u = await obtainTokens({ issuer: s.issuer, username: 'bob', password: TEST_PASSWORD, resource: s.resource, scope: 'notes:read' });
    const pub = { client_id: u.clientId };
    const rev2 = await oauth.revocationRequest(as, pub, oauth.None(), u.refresh_token!, insecure);
    await oauth.processRevocationResponse(rev2);
    await assert.rejects(refreshTokens({ issuer: s.issuer, clientId: u.clientId, refreshToken: u.refresh_token!, resource: s.resource }),
      (err: oauth.ResponseBodyError) => err.error === 'invalid_grant');
  });

  it('RFC 7009 §2.1 / RFC 7662 §2.1: a public client cannot revoke or learn about another client\'s token', async () => {
    const t = await clientCredentialsToken({ issuer: s.issuer, clientSecret: agentSecret, resource: s.resource });
    const u = await obtainTokens({ issuer: s.issuer, username: 'bob', password: TEST_PASSWORD, resource: s.resource, scope: 'notes:read' });
    const as = await discover(s.issuer);
    const pub = { client_id: u.clientId };
    await oauth.processRevocationResponse(await oauth.revocationRequest(as, pub, oauth.None(), t.access_token, insecure));
    const res = await oauth.introspectionRequest(as, pub, oauth.None(), t.access_token, insecure);
    assert.equal((await oauth.processIntrospectionResponse(as, pub, res)).active, false);
    const owner = await oauth.introspectionRequest(as, { client_id: 'demo-agent' }, oauth.ClientSecretBasic(agentSecret), t.access_token, insecure);
    assert.equal((await oauth.processIntrospectionResponse(as, { client_id: 'demo-agent' }, owner)).active, true, 'still active: the foreign revocation had no effect');
  });

  it('RFC 6749 §5.2: an unsupported grant type gets unsupported_grant_type', async () => {
    const res = await fetch(`${s.url}/oauth/token`, {
      method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`demo-agent:${agentSecret}`).toString('base64')}` },
      body: 'grant_type=password&username=alice&password=x',
    });
    assert.equal(res.status, 400);
    assert.equal((await res.json() as { error: string }).error, 'unsupported_grant_type');
  });
});
