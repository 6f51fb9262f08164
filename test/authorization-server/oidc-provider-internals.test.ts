import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type Provider from 'oidc-provider';
import {
  OIDC_PROVIDER_VERSION, addClientFallback, clientAdapter, installedOidcProviderVersion, loadCimdResolver, loadKeystoreInternals,
} from '../../src/authorization-server/oidc-provider-internals.ts';
import { publishedKids } from '../../src/authorization-server/keys-reload.ts';
import { startEmbeddedAs, type EmbeddedAs } from '../helpers/embedded-as.ts';

// If this file fails after an oidc-provider upgrade, follow the checklist in docs/authorization-server.md.
describe('oidc-provider internals mcp-warden relies on are where it expects them', () => {
  let s: EmbeddedAs;
  before(async () => { s = await startEmbeddedAs(); });
  after(async () => { await s.close(); });

  it('package.json pins oidc-provider exactly, at the version these internals were checked against', () => {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { dependencies: Record<string, string> };
    assert.equal(pkg.dependencies['oidc-provider'], OIDC_PROVIDER_VERSION, 'an exact version, no caret range');
    assert.equal(installedOidcProviderVersion(), OIDC_PROVIDER_VERSION, 'the installed version is the pinned one');
  });

  it('the file-path imports resolve: the CIMD resolver, the keystore initialisation and the private state', async () => {
    assert.equal(typeof await loadCimdResolver(), 'function');
    const { initialize, instance } = await loadKeystoreInternals();
    assert.equal(typeof initialize, 'function');
    // The private state holds the published JWKS under `jwks.keys`.
    const kids = await publishedKids(s.as.provider);
    assert.ok(kids.length >= 1 && kids.every((k) => k.length > 0));
    assert.ok(instance(s.as.provider)?.jwks?.keys.length);
  });

  it('the client class has the members we replace or read (compareClientSecret, find, adapter)', () => {
    const Client = s.as.provider.Client as unknown as { prototype: Record<string, unknown>; find: unknown };
    assert.equal(typeof Client.prototype.compareClientSecret, 'function');
    assert.equal(typeof Client.find, 'function');
    const adapter = clientAdapter(s.as.provider);
    assert.equal(typeof adapter.upsert, 'function');
  });

  it('a missing internal fails loudly, naming what moved and where the checklist is', () => {
    const fake = { Client: { prototype: {} } } as unknown as Provider;
    assert.throws(() => addClientFallback(fake, async () => undefined), /moved an internal mcp-warden uses \(Client\.find\).*docs\/authorization-server\.md/);
    assert.throws(() => clientAdapter(fake), /Client\.adapter/);
  });

  it('RFC 6749 §5.2: a client using a grant type it is not registered for gets unauthorized_client (recognised by facts, not by English text)', async () => {
    const reg = await fetch(`${s.url}/oauth/register`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ redirect_uris: ['https://app.example/cb'], token_endpoint_auth_method: 'client_secret_basic' }),
    });
    const client = await reg.json() as { client_id: string; client_secret: string };
    const res = await fetch(`${s.url}/oauth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${client.client_id}:${client.client_secret}`).toString('base64')}` },
      body: new URLSearchParams({ grant_type: 'client_credentials', resource: s.resource }),
    });
    assert.equal(res.status, 400);
    assert.equal(res.headers.get('cache-control'), 'no-store');
    assert.deepEqual(await res.json(), { error: 'unauthorized_client', error_description: 'this client is not registered for the client_credentials grant type' });
  });

  it('RFC 7662 §2.2: introspecting a token oidc-provider does not know still answers active:false (the unsupported_token_type answer is recognised)', async () => {
    const { clientId, clientSecret } = await s.as.clients.add({ clientName: 'rs', type: 'confidential', grantTypes: ['client_credentials'], scope: 'notes:read' });
    const res = await fetch(`${s.url}/oauth/introspect`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${clientId}:${clientSecret!}`).toString('base64')}` },
      body: new URLSearchParams({ token: 'eyJhbGciOiJFUzI1NiJ9.e30.c2ln', token_type_hint: 'access_token' }),
    });
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { active: false });
  });
});
