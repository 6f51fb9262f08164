import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startEmbeddedAs, TEST_PASSWORD, type EmbeddedAs } from '../helpers/embedded-as.ts';
import { obtainTokens } from '../helpers/oauth.ts';
import { buildProtectedResourceMetadata } from '../../src/gateway/protected-resource-metadata.ts';

describe('an MCP server at path / (one canonical resource URI)', () => {
  let s: EmbeddedAs;
  before(async () => {
    s = await startEmbeddedAs({ servers: [{ name: 'root', path: '/', upstream: { stdio: { command: 'true' } }, scopes: ['notes:read'] }] });
  });
  after(async () => { await s.close(); });

  it('RFC 8707 §2 / RFC 9728 §3.3: the resource the PRM advertises resolves at the AS and becomes the token aud', async () => {
    const prm = buildProtectedResourceMetadata(s.config, s.config.servers[0]!);
    assert.equal(prm.resource, s.url, 'no trailing slash (MCP §Canonical Server URI)');
    const t = await obtainTokens({ issuer: s.issuer, username: 'bob', password: TEST_PASSWORD, resource: prm.resource as string, scope: 'notes:read' });
    const claims = JSON.parse(Buffer.from(t.access_token.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;
    assert.equal(claims.aud, prm.resource);
  });
});
