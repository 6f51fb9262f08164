import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as oauth from 'oauth4webapi';
import { startEmbeddedAs, TEST_PASSWORD, type EmbeddedAs } from '../helpers/embedded-as.ts';
import { discover, obtainTokens } from '../helpers/oauth.ts';

async function register(s: EmbeddedAs, metadata: Record<string, unknown>): Promise<Response> {
  return fetch(`${s.url}/oauth/register`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(metadata) });
}

describe('dynamic client registration (RFC 7591)', () => {
  let s: EmbeddedAs;
  before(async () => { s = await startEmbeddedAs({ options: { registrationRateLimit: { max: 16, windowMs: 90_000 } } }); });
  after(async () => { await s.close(); });

  it('RFC 7591 §3.2.1: a native client with a loopback redirect registers and completes the flow', async () => {
    const as = await discover(s.issuer);
    const res = await oauth.dynamicClientRegistrationRequest(as, {
      client_name: 'CLI', application_type: 'native', redirect_uris: ['http://127.0.0.1/callback'], token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'],
    }, { [oauth.allowInsecureRequests]: true });
    assert.equal(res.status, 201);
    assert.equal(res.headers.get('cache-control'), 'no-store');
    const client = await oauth.processDynamicClientRegistrationResponse(res);
    assert.equal(client.application_type, 'native');
    // 128 random bits, base64url, never a leading '-' (src/authorization-server/client-id.ts).
    assert.match(client.client_id, /^[A-Za-z0-9][A-Za-z0-9_-]{21}$/);
    const t = await obtainTokens({ issuer: s.issuer, clientId: client.client_id, username: 'bob', password: TEST_PASSWORD, resource: s.resource, scope: 'notes:read' });
    assert.ok(t.access_token);
  });

  it('MCP 2025-11-25 clients without application_type (SEP-837 predates them) may register a loopback redirect', async () => {
    const res = await register(s, { client_name: 'legacy', redirect_uris: ['http://localhost:3333/callback'], token_endpoint_auth_method: 'none' });
    assert.equal(res.status, 201);
    await res.arrayBuffer();
  });

  it('RFC 7591: a web client with an https redirect registers; a confidential one gets a secret that is stored hashed', async () => {
    const res = await register(s, { client_name: 'Web', redirect_uris: ['https://app.example/cb'], token_endpoint_auth_method: 'client_secret_basic' });
    assert.equal(res.status, 201);
    const body = await res.json() as { client_id: string; client_secret: string; registration_access_token?: string };
    assert.ok(body.client_secret);
    assert.equal(body.registration_access_token, undefined);
    const stored = await s.as.store.models.find('Client', body.client_id);
    assert.notEqual(stored!.client_secret, body.client_secret);
  });

  const refused: Array<[string, Record<string, unknown>]> = [
    ['web client with http redirect', { redirect_uris: ['http://app.example/cb'] }],
    ['web client with loopback http redirect', { application_type: 'web', redirect_uris: ['http://127.0.0.1/cb'] }],
    ['client without application_type and a non-loopback http redirect', { redirect_uris: ['http://app.example/cb'] }],
    ['native client with non-loopback http redirect', { application_type: 'native', redirect_uris: ['http://app.example/cb'] }],
    ['javascript: redirect', { application_type: 'native', redirect_uris: ['javascript:alert(1)'] }],
    ['redirect with a fragment', { redirect_uris: ['https://app.example/cb#x'] }],
    ['unparseable redirect', { redirect_uris: ['not a uri'] }],
  ];
  for (const [name, metadata] of refused) {
    it(`RFC 7591 §3.2.2: ${name} → 400 invalid_redirect_uri`, async () => {
      const res = await register(s, { token_endpoint_auth_method: 'none', ...metadata });
      assert.equal(res.status, 400);
      assert.equal(res.headers.get('cache-control'), 'no-store');
      const body = await res.json() as { error: string; error_description: string };
      assert.equal(body.error, 'invalid_redirect_uri');
      assert.doesNotMatch(body.error_description, /did not match any/, 'the description says what is wrong with the registration');
      assert.doesNotMatch(body.error_description, /node_modules|at \w+ \(/);
    });
  }

  it('RFC 7591 §3.2.2: a client cannot give itself admin-only metadata (roles)', async () => {
    const res = await register(s, { redirect_uris: ['https://app.example/cb'], token_endpoint_auth_method: 'none', warden_roles: ['admin'] });
    assert.equal(res.status, 400);
    assert.equal((await res.json() as { error: string }).error, 'invalid_client_metadata');
  });

  it('MCP client credentials extension: a DCR client cannot register for client_credentials (pre-registered only)', async () => {
    const res = await register(s, { token_endpoint_auth_method: 'client_secret_basic', grant_types: ['client_credentials'], response_types: [], redirect_uris: [] });
    assert.equal(res.status, 400);
    assert.equal((await res.json() as { error: string }).error, 'invalid_client_metadata');
  });

  it('RFC 7591 §3.2.2: malformed JSON gets invalid_request/invalid_client_metadata, not a crash', async () => {
    const res = await fetch(`${s.url}/oauth/register`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"redirect_uris": [' });
    assert.equal(res.status, 400);
    assert.match((await res.json() as { error: string }).error, /^invalid_(request|client_metadata)$/);
  });

  it('registration is rate-limited per address (RFC 6585 §4: 429 with Retry-After of one window)', async () => {
    let limited: Response | undefined;
    for (let i = 0; i < 20 && !limited; i++) {
      const res = await register(s, { redirect_uris: ['https://app.example/cb'], token_endpoint_auth_method: 'none' });
      if (res.status === 429) limited = res; else await res.arrayBuffer();
    }
    assert.ok(limited, 'a 429 arrived within 20 registrations');
    assert.equal(limited.headers.get('retry-after'), '90', 'the configured 90 s window');
    assert.equal(limited.headers.get('cache-control'), 'no-store');
  });
});

describe('dynamic client registration switched off', () => {
  let s: EmbeddedAs;
  before(async () => { s = await startEmbeddedAs({ embedded: { dynamicClientRegistration: false } }); });
  after(async () => { await s.close(); });

  it('RFC 7591 §3 (registration disabled): no registration_endpoint is advertised and POST /oauth/register is not served', async () => {
    const md = await (await fetch(`${s.url}/.well-known/oauth-authorization-server`)).json() as Record<string, unknown>;
    assert.equal(md.registration_endpoint, undefined);
    const res = await register(s, { redirect_uris: ['https://app.example/cb'] });
    assert.equal(res.status, 404);
    await res.arrayBuffer();
  });
});
