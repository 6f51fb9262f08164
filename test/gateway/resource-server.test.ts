import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import { startTestWarden, type TestWarden } from './fixtures/warden.ts';
import { initializeMessage, post, TINY_SERVER } from './fixtures/raw.ts';
import { quotedString, renderBearerChallenge } from '../../src/gateway/challenge.ts';
import { createTokenVerifier } from '../../src/gateway/token-verifier.ts';
import { createIntrospector } from '../../src/gateway/introspection.ts';
import { parseConfig } from '../../src/config/load.ts';
import { GatewayError } from '../../src/gateway/errors.ts';
import { startFixtureIssuer } from './fixtures/issuer.ts';

const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');

/** Parses `Bearer a="b", c="d"` the way RFC 9110 §11.2 reads auth-params (quoted-string unescaped). */
function parseChallenge(header: string | null): Record<string, string> {
  assert.ok(header, 'WWW-Authenticate present');
  assert.ok(header.startsWith('Bearer '));
  const out: Record<string, string> = {};
  const re = /([a-z_]+)="((?:[^"\\]|\\.)*)"/g;
  for (const m of header.slice(7).matchAll(re)) out[m[1]!] = m[2]!.replace(/\\(.)/g, '$1');
  return out;
}

describe('resource server duties (RFC 9728, RFC 6750, RFC 9068, RFC 7662)', () => {
  let t: TestWarden;
  let url: string;
  let prm: string;
  before(async () => {
    t = await startTestWarden({
      servers: [{ name: 'tiny', path: '/mcp/tiny', upstream: { stdio: TINY_SERVER }, scopes: ['mcp:read', 'mcp:write'], requiredScopes: ['mcp:read'] }],
      external: { introspection: { clientId: 'gateway', clientSecret: 'gateway secret' } },
    });
    url = t.endpoint;
    prm = `${t.warden.url}/.well-known/oauth-protected-resource/mcp/tiny`;
  });
  after(async () => t.close());

  const initWith = (token: string) => post(url, token, initializeMessage());

  it('RFC 9728 §3.1/§3.3: metadata at the path-inserted well-known URI names exactly the endpoint as resource', async () => {
    const res = await fetch(prm);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('access-control-allow-origin'), '*');
    const doc = await res.json();
    assert.equal(doc.resource, url);
    assert.deepEqual(doc.authorization_servers, [t.issuer.issuer]);
    assert.deepEqual(doc.scopes_supported, ['mcp:read', 'mcp:write']);
    assert.deepEqual(doc.bearer_methods_supported, ['header']);
    const root = await fetch(`${t.warden.url}/.well-known/oauth-protected-resource`);
    assert.deepEqual(await root.json(), doc, 'RFC 9728 §3.1: the root document too, with one server');
  });

  it('RFC 6750 §3 / RFC 9728 §5.1: 401 without a token carries resource_metadata and scope, no error', async () => {
    const res = await post(url, undefined, initializeMessage());
    assert.equal(res.status, 401);
    const c = parseChallenge(res.headers.get('www-authenticate'));
    assert.equal(c.resource_metadata, prm);
    assert.equal(c.scope, 'mcp:read');
    assert.equal(c.error, undefined);
  });

  it('RFC 6750 §3.1: 401 with a bad token adds error="invalid_token"', async () => {
    const res = await initWith('not-a-token');
    assert.equal(res.status, 401);
    const c = parseChallenge(res.headers.get('www-authenticate'));
    assert.equal(c.error, 'invalid_token');
    assert.equal(c.resource_metadata, prm);
    assert.equal(res.headers.get('cache-control'), 'no-store');
  });

  it('RFC 6750 §2: a token in the query string or a non-Bearer scheme is 400 invalid_request', async () => {
    const token = await t.issuer.mint({ aud: url, scope: 'mcp:read' });
    const q = await post(`${url}?access_token=${token}`, undefined, initializeMessage());
    assert.equal(q.status, 400);
    assert.equal(parseChallenge(q.headers.get('www-authenticate')).error, 'invalid_request');
    const basic = await post(url, undefined, initializeMessage(), { authorization: 'Basic YTpi' });
    assert.equal(basic.status, 400);
  });

  it('RFC 9068 §4 / RFC 8725 §3.1: alg "none" and HS256 tokens are rejected (401)', async () => {
    const claims = { iss: t.issuer.issuer, aud: url, sub: 'alice', client_id: 'c', scope: 'mcp:read', exp: Math.floor(Date.now() / 1000) + 300 };
    const none = `${b64({ alg: 'none', typ: 'at+jwt' })}.${b64(claims)}.`;
    assert.equal((await initWith(none)).status, 401);
    const hs = await new SignJWT(claims).setProtectedHeader({ alg: 'HS256', typ: 'at+jwt' }).sign(new TextEncoder().encode('x'.repeat(32)));
    const res = await initWith(hs);
    assert.equal(res.status, 401);
    assert.equal(parseChallenge(res.headers.get('www-authenticate')).error, 'invalid_token');
  });

  it('RFC 9068 §4: wrong iss, wrong aud, a foreign key, or expiry beyond 60 s skew are 401; within skew is accepted', async () => {
    const now = Math.floor(Date.now() / 1000);
    const wrongIss = await t.issuer.mint({ aud: url, scope: 'mcp:read', iss: 'https://other.example' });
    assert.equal((await initWith(wrongIss)).status, 401);
    const wrongAud = await t.issuer.mint({ aud: 'http://127.0.0.1:1/mcp/other', scope: 'mcp:read' });
    assert.equal((await initWith(wrongAud)).status, 401);
    const { privateKey } = await generateKeyPair('ES256');
    const foreign = await t.issuer.mint({ aud: url, scope: 'mcp:read' }, { key: privateKey });
    assert.equal((await initWith(foreign)).status, 401);
    const expired = await t.issuer.mint({ aud: url, scope: 'mcp:read', exp: now - 120 });
    const expiredRes = await initWith(expired);
    assert.equal(expiredRes.status, 401);
    assert.match(parseChallenge(expiredRes.headers.get('www-authenticate')).error_description!, /expired/);
    const notYet = await t.issuer.mint({ aud: url, scope: 'mcp:read', nbf: now + 120 });
    assert.equal((await initWith(notYet)).status, 401);
    const skewed = await t.issuer.mint({ aud: [url, 'another'], scope: 'mcp:read', exp: now - 20 });
    const ok = await initWith(skewed);
    assert.equal(ok.status, 200);
    await ok.text();
  });

  it('RFC 6750 §3.1, MCP authorization §Scope Selection Strategy: a token without a required scope gets 403 insufficient_scope with every scope needed and resource_metadata', async () => {
    const token = await t.issuer.mint({ aud: url, scope: 'mcp:write' });
    const res = await initWith(token);
    assert.equal(res.status, 403);
    const c = parseChallenge(res.headers.get('www-authenticate'));
    assert.equal(c.error, 'insufficient_scope');
    assert.deepEqual(c.scope!.split(' ').sort(), ['mcp:read', 'mcp:write']);
    assert.equal(c.resource_metadata, prm);
  });

  it('RFC 7662: an opaque token is introspected with client authentication, and the answer is cached', async () => {
    const opaque = t.issuer.opaque({ aud: url, scope: 'mcp:read' });
    const before = t.issuer.introspectionCalls;
    const first = await initWith(opaque);
    assert.equal(first.status, 200);
    await first.text();
    const second = await initWith(opaque);
    assert.equal(second.status, 200);
    await second.text();
    assert.equal(t.issuer.introspectionCalls - before, 1, 'second request served from the cache');
    const unknown = await initWith('0123456789abcdef0123456789abcdef');
    assert.equal(unknown.status, 401);
    const otherAudience = t.issuer.opaque({ aud: 'https://elsewhere.example/mcp', scope: 'mcp:read' });
    assert.equal((await initWith(otherAudience)).status, 401);
  });
});

describe('challenge rendering and verifier units', () => {
  it('RFC 9110 §5.6.4: challenge values are escaped quoted-strings; CR/LF never reach the header', () => {
    assert.equal(quotedString('a"b\\c'), '"a\\"b\\\\c"');
    assert.equal(quotedString('x\r\nSet-Cookie: y'), '"xSet-Cookie: y"');
    const header = renderBearerChallenge({ error: 'invalid_token', errorDescription: 'bad "token"', scope: 'a b', resourceMetadata: 'https://x.example/.well-known/oauth-protected-resource/mcp' });
    assert.equal(header, 'Bearer error="invalid_token", error_description="bad \\"token\\"", scope="a b", resource_metadata="https://x.example/.well-known/oauth-protected-resource/mcp"');
  });

  it('RFC 7662 cache: bounded in size and never beyond the token\'s exp', async () => {
    const issuer = await startFixtureIssuer();
    try {
      let now = Math.floor(Date.now() / 1000);
      const intro = createIntrospector({ endpoint: `${issuer.issuer}/introspect`, ...issuer.introspectionClient, maxEntries: 2, maxAgeSeconds: 60, nowSeconds: () => now });
      const short = issuer.opaque({ exp: now + 5 });
      const tokens = [short, issuer.opaque({}), issuer.opaque({})];
      for (const tok of tokens) assert.equal((await intro.introspect(tok)).active, true);
      assert.equal(intro.size, 2, 'oldest entry evicted');
      const calls = intro.calls;
      await intro.introspect(tokens[2]!);
      assert.equal(intro.calls, calls, 'cached');
      const shortAgain = issuer.opaque({ exp: now + 5 });
      await intro.introspect(shortAgain);
      now += 6;
      await intro.introspect(shortAgain);
      assert.equal(intro.calls, calls + 2, 'an entry is not reused past the token exp');
      const wrong = createIntrospector({ endpoint: `${issuer.issuer}/introspect`, clientId: 'gateway', clientSecret: 'wrong' });
      await assert.rejects(wrong.introspect(short), /401/);
    } finally {
      await issuer.close();
    }
  });

  it('RFC 7517 key rotation: an unknown kid re-fetches the JWKS (bounded by a cooldown)', async () => {
    const issuer = await startFixtureIssuer();
    try {
      const config = parseConfig({ publicUrl: 'http://127.0.0.1:9', authorizationServer: { external: { issuer: issuer.issuer } }, servers: [{ name: 's', path: '/mcp', upstream: { stdio: { command: 'x' } } }] });
      const server = config.servers[0]!;
      const strict = createTokenVerifier({ config, jwksCooldownMs: 60_000 });
      const relaxed = createTokenVerifier({ config, jwksCooldownMs: 0 });
      const old = await issuer.mint({ aud: 'http://127.0.0.1:9/mcp' });
      assert.equal((await strict.verify(old, server)).subject, 'alice');
      assert.equal((await relaxed.verify(old, server)).subject, 'alice');
      await issuer.rotate();
      const rotated = await issuer.mint({ aud: 'http://127.0.0.1:9/mcp', sub: 'bob', scope: 'a b', roles: ['admin'] });
      const caller = await relaxed.verify(rotated, server);
      assert.deepEqual([caller.subject, caller.clientId, caller.scopes, caller.roles, caller.audience], ['bob', 'test-client', ['a', 'b'], ['admin'], 'http://127.0.0.1:9/mcp']);
      await assert.rejects(strict.verify(rotated, server), (e: unknown) => e instanceof GatewayError && e.code === 'invalid_token', 'within the cooldown no re-fetch');
    } finally {
      await issuer.close();
    }
  });

  it('RFC 9068 §4: a verified token is remembered, but refused once its exp (plus 60 s skew) has passed', async () => {
    const issuer = await startFixtureIssuer();
    try {
      const config = parseConfig({ publicUrl: 'http://127.0.0.1:9', authorizationServer: { external: { issuer: issuer.issuer } }, servers: [{ name: 's', path: '/mcp', upstream: { stdio: { command: 'x' } } }] });
      let now = Math.floor(Date.now() / 1000);
      const verifier = createTokenVerifier({ config, nowSeconds: () => now });
      const token = await issuer.mint({ aud: 'http://127.0.0.1:9/mcp', exp: now + 30 });
      const first = await verifier.verify(token, config.servers[0]!);
      assert.equal(await verifier.verify(token, config.servers[0]!), first, 'served from the cache');
      assert.equal(verifier.verifyNow(token, config.servers[0]!), first, 'and answered at once');
      now += 95;
      assert.equal(verifier.verifyNow(token, config.servers[0]!), undefined, 'past exp: verify decides');
      await assert.rejects(verifier.verify(token, config.servers[0]!), (e: unknown) => e instanceof GatewayError && e.code === 'invalid_token');
    } finally {
      await issuer.close();
    }
  });

  it('external issuers: an explicit audience replaces the canonical URI; rolesClaim reads a nested path', async () => {
    const issuer = await startFixtureIssuer();
    try {
      const config = parseConfig({
        publicUrl: 'http://127.0.0.1:9',
        authorizationServer: { external: { issuer: issuer.issuer, audience: 'api://warden', rolesClaim: 'realm_access.roles' } },
        servers: [{ name: 's', path: '/mcp', upstream: { stdio: { command: 'x' } } }],
      });
      const verifier = createTokenVerifier({ config });
      const token = await issuer.mint({ aud: 'api://warden', realm_access: { roles: ['member'] }, scp: ['x'], scope: undefined, client_id: undefined, azp: 'kc-client' }, { typ: 'JWT' });
      const caller = await verifier.verify(token, config.servers[0]!);
      assert.deepEqual([caller.roles, caller.scopes, caller.clientId], [['member'], ['x'], 'kc-client']);
      const auth0Style = createTokenVerifier({ config: { ...config, authorizationServer: { external: { ...(config.authorizationServer as { external: Record<string, unknown> }).external, rolesClaim: 'https://mcp.example.com/roles' } } } as typeof config });
      const namespaced = await issuer.mint({ aud: 'api://warden', 'https://mcp.example.com/roles': ['admin'] });
      assert.deepEqual((await auth0Style.verify(namespaced, config.servers[0]!)).roles, ['admin']);
      const canonical = await issuer.mint({ aud: 'http://127.0.0.1:9/mcp' });
      await assert.rejects(verifier.verify(canonical, config.servers[0]!), GatewayError);
    } finally {
      await issuer.close();
    }
  });

  it('RFC 9068 §2.2.3.1: a rolesClaim path reads only the token\'s own claims, never Object.prototype', async () => {
    const issuer = await startFixtureIssuer();
    try {
      const rolesOf = async (rolesClaim: string) => {
        const config = parseConfig({
          publicUrl: 'http://127.0.0.1:9',
          authorizationServer: { external: { issuer: issuer.issuer, audience: 'api://warden', rolesClaim } },
          servers: [{ name: 's', path: '/mcp', upstream: { stdio: { command: 'x' } } }],
        });
        const token = await issuer.mint({ aud: 'api://warden', realm: { roles: ['member'] } });
        return (await createTokenVerifier({ config }).verify(token, config.servers[0]!)).roles;
      };
      assert.deepEqual(await rolesOf('constructor'), []);
      assert.deepEqual(await rolesOf('constructor.name'), [], 'constructor.name would be "Object" through the prototype');
      assert.deepEqual(await rolesOf('__proto__.x'), []);
      assert.deepEqual(await rolesOf('realm.roles'), ['member'], 'an own nested path still works');
    } finally {
      await issuer.close();
    }
  });

  it('RFC 9068 §2.1/§4: in embedded mode the token must be typed at+jwt, and keys come from the AS in-process (read at every verification)', async () => {
    const config = parseConfig({ publicUrl: 'http://127.0.0.1:9', authorizationServer: { embedded: {} }, servers: [{ name: 's', path: '/mcp', upstream: { stdio: { command: 'x' } } }] });
    const keys: { kid: string; privateKey: CryptoKey; jwk: Record<string, unknown> }[] = [];
    const addKey = async (kid: string) => {
      const { privateKey, publicKey } = await generateKeyPair('ES256');
      keys.push({ kid, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg: 'ES256' } });
    };
    await addKey('k1');
    // The AS hands out one object per key set (src/authorization-server/index.ts publicJwks).
    let set = { keys: keys.map((k) => k.jwk) };
    const verifier = createTokenVerifier({ config, jwksCooldownMs: 0, publicJwks: async () => set });
    const sign = (kid: string, typ: string) => {
      const key = keys.find((k) => k.kid === kid)!;
      return new SignJWT({ sub: 'alice', client_id: 'c', scope: 'notes:read', aud: 'http://127.0.0.1:9/mcp' })
        .setProtectedHeader({ alg: 'ES256', typ, kid })
        .setIssuer('http://127.0.0.1:9')
        .setIssuedAt()
        .setExpirationTime('5m')
        .sign(key.privateKey);
    };
    assert.equal((await verifier.verify(await sign('k1', 'at+jwt'), config.servers[0]!)).subject, 'alice');
    await assert.rejects(verifier.verify(await sign('k1', 'JWT'), config.servers[0]!), (e: unknown) => e instanceof GatewayError && e.code === 'invalid_token');
    await addKey('k2');
    set = { keys: keys.map((k) => k.jwk) };
    assert.equal((await verifier.verify(await sign('k2', 'at+jwt'), config.servers[0]!)).subject, 'alice', 'a new key verifies at once');
  });
});
