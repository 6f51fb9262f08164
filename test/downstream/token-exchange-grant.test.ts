import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createRemoteJWKSet, decodeJwt, decodeProtectedHeader, generateKeyPair, jwtVerify } from 'jose';
import { ACCESS_TOKEN_TYPE, TOKEN_EXCHANGE_GRANT } from '../../src/authorization-server/grants/token-exchange.ts';
import { DOWNSTREAM_API, GATEWAY, MCP_RESOURCE_PATH, startExternalIssuer, startTestAuthorizationServer, type TestAuthorizationServer } from './fixtures.ts';

describe('RFC 8693 token exchange grant (embedded authorization server)', () => {
  let as: TestAuthorizationServer;
  let external: Awaited<ReturnType<typeof startExternalIssuer>>;

  before(async () => {
    external = await startExternalIssuer();
    as = await startTestAuthorizationServer({
      trustedIssuers: [{ issuer: external.issuer, jwksUri: external.jwksUri, audience: 'mcp-warden', algorithms: ['RS256'] }],
      audiences: [
        { audience: DOWNSTREAM_API, scopes: ['notes:read', 'notes:write'], accessTokenTtlSeconds: 120 },
        { audience: 'https://readonly-api.example.test', scopes: ['notes:read'], accessTokenTtlSeconds: 60 },
      ],
    });
  });
  after(async () => {
    await as.close();
    await external.close();
  });

  const exchange = (subjectToken: string, extra: Record<string, string> = {}, client = GATEWAY) =>
    as.tokenRequest({ grant_type: TOKEN_EXCHANGE_GRANT, subject_token: subjectToken, subject_token_type: ACCESS_TOKEN_TYPE, audience: DOWNSTREAM_API, ...extra }, client);

  it('RFC 8693 §2.2.1: issues an at+jwt for the downstream with sub = user, act.sub = gateway, verifiable with the AS JWKS', async () => {
    const subject = await as.issueAccessToken({ sub: 'alice', scope: 'notes:read notes:write profile', roles: ['admin'] });
    const res = await exchange(subject);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.headers.get('cache-control'), 'no-store');
    assert.equal(res.body.issued_token_type, ACCESS_TOKEN_TYPE);
    assert.equal(res.body.token_type, 'Bearer');
    assert.equal(res.body.scope, 'notes:read notes:write');
    assert.ok(typeof res.body.expires_in === 'number' && res.body.expires_in <= 120 && res.body.expires_in > 100);
    const token = res.body.access_token as string;
    assert.notEqual(token, subject);
    assert.equal(decodeProtectedHeader(token).typ, 'at+jwt');
    const { payload } = await jwtVerify(token, createRemoteJWKSet(new URL(as.jwksUri)), { issuer: as.issuer, audience: DOWNSTREAM_API, typ: 'at+jwt' });
    assert.equal(payload.sub, 'alice');
    assert.deepEqual(payload.act, { sub: GATEWAY.clientId });
    assert.equal(payload.client_id, GATEWAY.clientId);
    assert.equal(payload.scope, 'notes:read notes:write');
    // The user's roles from our own token carry over, next to act.
    assert.deepEqual(payload.roles, ['admin']);
  });

  it('RFC 8693 §2.1: scope is narrowed to the intersection of the subject token and the downstream API', async () => {
    const subject = await as.issueAccessToken({ sub: 'bob', scope: 'notes:read notes:write' });
    const res = await exchange(subject, { audience: 'https://readonly-api.example.test' });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.scope, 'notes:read');
    const narrower = await exchange(subject, { scope: 'notes:read' });
    assert.equal(narrower.body.scope, 'notes:read');
  });

  it('RFC 8693 §2.2.2: asking for a scope the subject token lacks is invalid_scope (no widening)', async () => {
    const subject = await as.issueAccessToken({ sub: 'bob', scope: 'notes:read' });
    const res = await exchange(subject, { scope: 'notes:read notes:write' });
    assert.equal(res.status, 400);
    assert.equal(res.body.error, 'invalid_scope');
    assert.equal(res.headers.get('cache-control'), 'no-store');
    const beyondApi = await exchange(subject, { audience: 'https://readonly-api.example.test', scope: 'admin' });
    assert.equal(beyondApi.body.error, 'invalid_scope');
  });

  it('RFC 6749 §5.2: a client not configured for token exchange gets unauthorized_client', async () => {
    const subject = await as.issueAccessToken({ sub: 'alice', scope: 'notes:read' });
    const rogue = await exchange(subject, {}, { clientId: 'rogue', clientSecret: 'rogue-secret-0123456789abcdef0123' });
    assert.equal(rogue.status, 400);
    assert.equal(rogue.body.error, 'unauthorized_client');
    const plain = await exchange(subject, {}, { clientId: 'plain-app', clientSecret: 'plain-app-secret-0123456789abcdef' });
    assert.equal(plain.status, 400);
    assert.equal(plain.body.error, 'unauthorized_client');
    assert.equal(plain.headers.get('cache-control'), 'no-store');
  });

  it('RFC 6749 §5.2: the gateway client with a wrong secret gets invalid_client', async () => {
    const subject = await as.issueAccessToken({ sub: 'alice', scope: 'notes:read' });
    const res = await exchange(subject, {}, { clientId: GATEWAY.clientId, clientSecret: 'wrong-secret-0123456789abcdef0123456' });
    assert.equal(res.status, 401);
    assert.equal(res.body.error, 'invalid_client');
  });

  it('RFC 8693 §2.2.2: an expired subject token is invalid_grant', async () => {
    const subject = await as.issueAccessToken({ sub: 'alice', scope: 'notes:read' }, { expiresIn: -120 });
    const res = await exchange(subject);
    assert.equal(res.status, 400);
    assert.equal(res.body.error, 'invalid_grant');
    assert.match(String(res.body.error_description), /expired/);
  });

  it('RFC 8693 §2.2.2: a subject token signed by a foreign key, or from an untrusted issuer, is invalid_grant', async () => {
    const { privateKey } = await generateKeyPair('ES256');
    const forged = await as.issueAccessToken({ sub: 'alice', scope: 'notes:read' }, { key: privateKey });
    const res = await exchange(forged);
    assert.equal(res.status, 400);
    assert.equal(res.body.error, 'invalid_grant');
    const stranger = await external.sign({ sub: 'mallory', scope: 'notes:read' }, 'someone-else');
    assert.equal((await exchange(stranger)).body.error, 'invalid_grant');
    assert.equal((await exchange('not-a-jwt')).body.error, 'invalid_grant');
  });

  it('RFC 8693 §2.2.2: a subject token not issued for one of our MCP servers (aud) is invalid_grant', async () => {
    // A token the downstream API A received (aud = A) must not buy a token for downstream B.
    const forApiA = await as.issueAccessToken({ sub: 'alice', scope: 'notes:read notes:write' }, { aud: DOWNSTREAM_API });
    const res = await exchange(forApiA, { audience: 'https://readonly-api.example.test' });
    assert.equal(res.status, 400);
    assert.equal(res.body.error, 'invalid_grant');
    assert.match(String(res.body.error_description), /not issued for an MCP server/);
    // The real thing: a token we exchanged before (aud = downstream) is refused as a subject too.
    const first = await exchange(await as.issueAccessToken({ sub: 'alice', scope: 'notes:read' }));
    assert.equal(first.status, 200, JSON.stringify(first.body));
    assert.equal((await exchange(first.body.access_token as string, { audience: 'https://readonly-api.example.test' })).body.error, 'invalid_grant');
    // Elsewhere-aimed tokens and tokens without aud are refused; an aud list naming our MCP server is fine.
    assert.equal((await exchange(await as.issueAccessToken({ sub: 'alice', scope: 'notes:read' }, { aud: 'https://other.example/mcp' }))).body.error, 'invalid_grant');
    assert.equal((await exchange(await as.issueAccessToken({ sub: 'alice', scope: 'notes:read' }, { aud: [] }))).body.error, 'invalid_grant');
    const listed = await exchange(await as.issueAccessToken({ sub: 'alice', scope: 'notes:read' }, { aud: [DOWNSTREAM_API, `${as.issuer}${MCP_RESOURCE_PATH}`] }));
    assert.equal(listed.status, 200, JSON.stringify(listed.body));
  });

  it('RFC 7009 + RFC 8693 §2.2.2: a revoked subject token is invalid_grant', async () => {
    const subject = await as.issueAccessToken({ sub: 'alice', scope: 'notes:read' });
    assert.equal((await exchange(subject)).status, 200);
    as.revoke(String(decodeJwt(subject).jti));
    const res = await exchange(subject);
    assert.equal(res.status, 400);
    assert.equal(res.body.error, 'invalid_grant');
    assert.match(String(res.body.error_description), /revoked/);
  });

  it('RFC 8693 §2.1: a token from a configured trusted external issuer is exchanged for its user', async () => {
    const subject = await external.sign({ sub: 'carol', scope: 'notes:read' }, 'mcp-warden');
    const res = await exchange(subject);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const { payload } = await jwtVerify(res.body.access_token as string, createRemoteJWKSet(new URL(as.jwksUri)), { issuer: as.issuer, audience: DOWNSTREAM_API });
    assert.equal(payload.sub, 'carol');
    assert.equal(payload.subject_issuer, external.issuer);
    assert.equal(payload.scope, 'notes:read');
  });

  it('RFC 8693 §2.2.2: an unknown resource or audience is invalid_target', async () => {
    const subject = await as.issueAccessToken({ sub: 'alice', scope: 'notes:read' });
    const res = await exchange(subject, { audience: 'https://elsewhere.example' });
    assert.equal(res.status, 400);
    assert.equal(res.body.error, 'invalid_target');
    const two = await as.tokenRequest({ grant_type: TOKEN_EXCHANGE_GRANT, subject_token: subject, subject_token_type: ACCESS_TOKEN_TYPE, audience: [DOWNSTREAM_API, 'https://readonly-api.example.test'] });
    assert.equal(two.body.error, 'invalid_target');
    const none = await as.tokenRequest({ grant_type: TOKEN_EXCHANGE_GRANT, subject_token: subject, subject_token_type: ACCESS_TOKEN_TYPE });
    assert.equal(none.body.error, 'invalid_target');
  });

  it('RFC 8693 §2.2.2: missing subject_token or a wrong subject_token_type is invalid_request', async () => {
    const missing = await as.tokenRequest({ grant_type: TOKEN_EXCHANGE_GRANT, subject_token_type: ACCESS_TOKEN_TYPE, audience: DOWNSTREAM_API });
    assert.equal(missing.body.error, 'invalid_request');
    const subject = await as.issueAccessToken({ sub: 'alice', scope: 'notes:read' });
    const wrongType = await exchange(subject, { subject_token_type: 'urn:ietf:params:oauth:token-type:saml2' });
    assert.equal(wrongType.body.error, 'invalid_request');
  });

  it('RFC 8693 §4.4: may_act naming another actor refuses the exchange; naming the gateway allows it', async () => {
    const other = await as.issueAccessToken({ sub: 'alice', scope: 'notes:read', may_act: { sub: 'some-other-service' } });
    const refused = await exchange(other);
    assert.equal(refused.status, 400);
    assert.equal(refused.body.error, 'invalid_grant');
    const ours = await as.issueAccessToken({ sub: 'alice', scope: 'notes:read', may_act: { sub: GATEWAY.clientId } });
    assert.equal((await exchange(ours)).status, 200);
  });

  it('RFC 8693 §4.1: exchanging an already exchanged token nests the prior actor', async () => {
    const subject = await as.issueAccessToken({ sub: 'alice', scope: 'notes:read', act: { sub: 'upstream-service' } });
    const res = await exchange(subject);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const { payload } = await jwtVerify(res.body.access_token as string, createRemoteJWKSet(new URL(as.jwksUri)), { issuer: as.issuer, audience: DOWNSTREAM_API });
    assert.deepEqual(payload.act, { sub: GATEWAY.clientId, act: { sub: 'upstream-service' } });
  });
});
