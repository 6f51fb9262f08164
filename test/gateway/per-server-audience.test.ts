import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestWarden, type TestWarden } from './fixtures/warden.ts';
import { initializeMessage, post, TINY_SERVER } from './fixtures/raw.ts';
import { parseConfig } from '../../src/config/load.ts';
import { ConfigError } from '../../src/config/load.ts';
import { createTokenVerifier } from '../../src/gateway/token-verifier.ts';
import { GatewayError } from '../../src/gateway/errors.ts';
import { startFixtureIssuer } from './fixtures/issuer.ts';

/** A challenge's error parameter, or undefined. */
const challengeError = (res: Response) => /error="([^"]*)"/.exec(res.headers.get('www-authenticate') ?? '')?.[1];

describe('per-server audience for external issuers (Entra ID / Auth0 / Okta API identifiers)', () => {
  let t: TestWarden;
  let a: string;
  let b: string;
  let c: string;
  before(async () => {
    t = await startTestWarden({
      servers: [
        { name: 'a', path: '/mcp/a', upstream: { stdio: TINY_SERVER }, audience: 'api://server-a' },
        { name: 'b', path: '/mcp/b', upstream: { stdio: TINY_SERVER }, audience: ['https://b.example.com', 'api://server-b'] },
        { name: 'c', path: '/mcp/c', upstream: { stdio: TINY_SERVER } },
      ],
      external: { audience: 'api://warden' },
    });
    a = `${t.warden.url}/mcp/a`;
    b = `${t.warden.url}/mcp/b`;
    c = `${t.warden.url}/mcp/c`;
  });
  after(async () => t.close());

  async function initStatus(url: string, token: string): Promise<{ status: number; error: string | undefined }> {
    const res = await post(url, token, initializeMessage());
    await res.body?.cancel();
    return { status: res.status, error: challengeError(res) };
  }

  it('RFC 8707 §2 / RFC 9068 §4: a token for server A works at A and never at B; a token for B never at A', async () => {
    const forA = await t.issuer.mint({ aud: 'api://server-a' });
    const forB = await t.issuer.mint({ aud: 'api://server-b' });
    assert.equal((await initStatus(a, forA)).status, 200);
    assert.deepEqual(await initStatus(b, forA), { status: 401, error: 'invalid_token' });
    assert.deepEqual(await initStatus(c, forA), { status: 401, error: 'invalid_token' });
    assert.equal((await initStatus(b, forB)).status, 200);
    assert.deepEqual(await initStatus(a, forB), { status: 401, error: 'invalid_token' });
  });

  it('RFC 9068 §4: any value of a server\'s audience list is accepted there; the gateway-wide audience is not accepted at a server with its own', async () => {
    const other = await t.issuer.mint({ aud: ['https://b.example.com', 'https://unrelated.example.com'] });
    assert.equal((await initStatus(b, other)).status, 200);
    const global = await t.issuer.mint({ aud: 'api://warden' });
    assert.deepEqual(await initStatus(a, global), { status: 401, error: 'invalid_token' });
    assert.equal((await initStatus(c, global)).status, 200, 'a server without its own audience keeps external.audience');
  });

  it('RFC 9728 §2: protected resource metadata keeps the canonical URI as resource whatever the audience', async () => {
    const res = await fetch(`${t.warden.url}/.well-known/oauth-protected-resource/mcp/a`);
    assert.equal((await res.json() as { resource: string }).resource, a);
    const canonical = await t.issuer.mint({ aud: a });
    assert.deepEqual(await initStatus(a, canonical), { status: 401, error: 'invalid_token' }, 'aud is the configured identifier, not the URL, unless listed');
  });
});

describe('per-server audience: introspected (opaque) tokens and configuration', () => {
  it('RFC 7662 §2.2: an introspected token\'s aud must name this server\'s audience', async () => {
    const issuer = await startFixtureIssuer();
    try {
      const config = parseConfig({
        publicUrl: 'http://127.0.0.1:9',
        authorizationServer: { external: { issuer: issuer.issuer, introspection: issuer.introspectionClient } },
        servers: [
          { name: 'a', path: '/mcp/a', upstream: { stdio: { command: 'x' } }, audience: 'api://server-a' },
          { name: 'b', path: '/mcp/b', upstream: { stdio: { command: 'x' } }, audience: 'api://server-b' },
        ],
      });
      const verifier = createTokenVerifier({ config });
      const token = issuer.opaque({ aud: 'api://server-a' });
      assert.equal((await verifier.verify(token, config.servers[0]!)).subject, 'alice');
      assert.equal(verifier.verifyNow(token, config.servers[0]!), undefined, 'an introspected token is not remembered: it is asked about at every use');
      await assert.rejects(verifier.verify(token, config.servers[1]!), (e: unknown) => e instanceof GatewayError && e.code === 'invalid_token');
    } finally {
      await issuer.close();
    }
  });

  const base = (servers: unknown[], as: unknown = { external: { issuer: 'https://idp.example.com/' } }) =>
    () => parseConfig({ publicUrl: 'https://mcp.example.com', authorizationServer: as, servers });
  const srv = (name: string, audience: unknown) => ({ name, path: `/mcp/${name}`, upstream: { stdio: { command: 'x' } }, audience });

  it('configuration: servers[].audience is refused with the embedded AS (its aud is always the canonical URI)', () => {
    assert.throws(base([srv('a', 'api://a')], { embedded: {} }), (e: unknown) => e instanceof ConfigError && /servers\.0\.audience/.test(e.message) && /embedded/.test(e.message));
  });

  it('configuration: two servers may not share an audience, nor reuse external.audience (a token would work at both)', () => {
    assert.throws(base([srv('a', 'api://x'), srv('b', ['api://y', 'api://x'])]), (e: unknown) => e instanceof ConfigError && /servers\.1\.audience "api:\/\/x"/.test(e.message) && /"a"/.test(e.message));
    assert.throws(base([srv('a', 'api://w')], { external: { issuer: 'https://idp.example.com/', audience: 'api://w' } }), (e: unknown) => e instanceof ConfigError && /external\.audience/.test(e.message));
    assert.throws(base([srv('a', [])]), (e: unknown) => e instanceof ConfigError && /servers\.0\.audience/.test(e.message));
    assert.doesNotThrow(base([srv('a', 'api://a'), srv('b', 'api://b')]));
  });

  it('configuration, RFC 8707 §2: a server\'s audience may not be the canonical URI of a server that accepts that URI as aud (no audience of its own)', () => {
    const plain = { name: 'b', path: '/mcp/b', upstream: { stdio: { command: 'x' } } };
    assert.throws(base([srv('a', ['api://a', 'https://mcp.example.com/mcp/b']), plain]),
      (e: unknown) => e instanceof ConfigError && /servers\.0\.audience "https:\/\/mcp\.example\.com\/mcp\/b"/.test(e.message) && /server "b"/.test(e.message) && /"a"/.test(e.message) && /its own servers\[\]\.audience/.test(e.message));
    const root = { name: 'root', path: '/', upstream: { stdio: { command: 'x' } } };
    assert.throws(base([srv('a', 'https://mcp.example.com'), root]), (e: unknown) => e instanceof ConfigError && /server "root"/.test(e.message));
    // Allowed when that server has its own audience, or external.audience replaces the canonical URI.
    assert.doesNotThrow(base([srv('a', 'https://mcp.example.com/mcp/b'), srv('b', 'api://b')]));
    assert.doesNotThrow(base([srv('a', 'https://mcp.example.com/mcp/b'), plain], { external: { issuer: 'https://idp.example.com/', audience: 'api://warden' } }));
  });
});
