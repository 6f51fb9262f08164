import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { startEmbeddedAs, TEST_PASSWORD } from '../helpers/embedded-as.ts';
import { obtainTokens } from '../helpers/oauth.ts';
import { ACCESS_TOKEN_TYPE, TOKEN_EXCHANGE_GRANT } from '../../src/authorization-server/grants/token-exchange.ts';

const API = 'https://notes-api.example.test';

async function exchange(url: string, subjectToken: string, clientId: string, clientSecret: string) {
  const res = await fetch(`${url}/oauth/token`, {
    method: 'POST',
    headers: { authorization: `Basic ${Buffer.from(`${clientId}:${clientSecret}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: TOKEN_EXCHANGE_GRANT, subject_token: subjectToken, subject_token_type: ACCESS_TOKEN_TYPE, audience: API }),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

describe('token exchange inside the embedded authorization server', () => {
  it('RFC 8693: the gateway client is provisioned from the config; a user\'s real access token is exchanged and verifies with /oauth/jwks; a changed secret replaces the old one on restart; the MCP client itself is unauthorized_client', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'warden-as-exchange-'));
    const first = 'first-gateway-secret-0123456789abcdef012345';
    const second = 'second-gateway-secret-0123456789abcdef01234';
    const tokenExchange = (clientSecret: string) => ({ tokenExchange: { gatewayClient: { clientSecret }, audiences: [{ audience: API, scopes: ['notes:read'] }] } });
    let as = await startEmbeddedAs({ dir, embedded: tokenExchange(first) });
    try {
      const { access_token, clientId } = await obtainTokens({ issuer: as.issuer, username: 'bob', password: TEST_PASSWORD, resource: as.resource, scope: 'notes:read notes:write', offlineAccess: false });
      const ok = await exchange(as.url, access_token, 'mcp-warden-gateway', first);
      assert.equal(ok.status, 200, JSON.stringify(ok.body));
      const { payload } = await jwtVerify(ok.body.access_token as string, createRemoteJWKSet(new URL(`${as.url}/oauth/jwks`)), { issuer: as.issuer, audience: API, typ: 'at+jwt' });
      assert.equal(payload.sub, 'bob');
      assert.deepEqual(payload.act, { sub: 'mcp-warden-gateway' });
      assert.equal(payload.scope, 'notes:read');
      assert.deepEqual(payload.roles, ['member']);
      // RFC 6749 §5.2: the MCP client that obtained the token may not exchange it itself.
      const byClient = await fetch(`${as.url}/oauth/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ client_id: clientId, grant_type: TOKEN_EXCHANGE_GRANT, subject_token: access_token, subject_token_type: ACCESS_TOKEN_TYPE, audience: API }),
      });
      assert.equal(byClient.status, 400);
      assert.equal(((await byClient.json()) as { error: string }).error, 'unauthorized_client');
      assert.equal(byClient.headers.get('cache-control'), 'no-store');
      await as.close();
      as = await startEmbeddedAs({ dir, embedded: tokenExchange(second) });
      assert.equal((await exchange(as.url, access_token, 'mcp-warden-gateway', first)).body.error, 'invalid_client');
      // A new token from the restarted server (same keys, same database) exchanges with the new secret.
      const { access_token: again } = await obtainTokens({ issuer: as.issuer, username: 'bob', password: TEST_PASSWORD, resource: as.resource, scope: 'notes:read', offlineAccess: false });
      assert.equal((await exchange(as.url, again, 'mcp-warden-gateway', second)).status, 200);
    } finally {
      await as.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
