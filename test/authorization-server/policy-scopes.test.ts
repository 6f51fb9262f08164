/**
 * The authorization server and the policy agree on scopes: a scope that only a policy rule names
 * can be granted (so step-up to it works), and the consent page shows each user what a scope
 * unlocks for them, not for an admin.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as oauth from 'oauth4webapi';
import { Browser, obtainTokens, registerPublicClient } from '../helpers/oauth.ts';
import { startEmbeddedAs, TEST_PASSWORD, type EmbeddedAs } from '../helpers/embedded-as.ts';
import { decodeJwt } from 'jose';

const server = {
  name: 'notes', path: '/mcp', upstream: { stdio: { command: 'true' } },
  scopes: ['notes:read', 'notes:write'],
  scopeDescriptions: { 'notes:read': 'Read your notes', 'notes:write': 'Create and delete notes' },
  policy: {
    mode: 'first-match', default: 'deny',
    rules: [
      { name: 'read', tools: ['list_notes', 'read_note'], scopes: ['notes:read'] },
      { name: 'admin-write', tools: ['create_note', 'delete_note'], roles: ['admin'], scopes: ['notes:write'] },
      // notes:export is named only here, not in servers[].scopes.
      { name: 'export', tools: ['export_notes'], scopes: ['notes:export'] },
    ],
  },
};

describe('scopes derived from policy at the authorization server', () => {
  let s: EmbeddedAs;
  before(async () => { s = await startEmbeddedAs({ servers: [server] }); });
  after(async () => { await s.close(); });

  it('RFC 9728 §2 / MCP scope challenge: a scope only the policy names is grantable', async () => {
    const t = await obtainTokens({ issuer: s.issuer, username: 'bob', password: TEST_PASSWORD, resource: s.resource, scope: 'notes:read notes:export' });
    const claims = decodeJwt(t.access_token);
    assert.deepEqual(String(claims.scope).split(' ').sort(), ['notes:export', 'notes:read']);
  });

  async function consentPage(username: string, scope: string): Promise<string> {
    const browser = new Browser();
    const clientId = await registerPublicClient(s.issuer, 'http://127.0.0.1/callback', 'Scope Test Client');
    const url = `${s.url}/oauth/authorize?` + new URLSearchParams({
      client_id: clientId, redirect_uri: 'http://127.0.0.1/callback', response_type: 'code', state: 'st', scope,
      code_challenge: await oauth.calculatePKCECodeChallenge(oauth.generateRandomCodeVerifier()), code_challenge_method: 'S256', resource: s.resource,
    });
    const login = await browser.follow(url, s.url);
    const r = await browser.submit(login.url, await login.response.text(), { username, password: TEST_PASSWORD });
    const step = await browser.follow(new URL(r.headers.get('location')!, login.url).href, s.url);
    return step.response.text();
  }

  it('the consent page lists the tools a scope unlocks for this user: admin tools for alice, none for bob', async () => {
    const alice = await consentPage('alice', 'notes:read notes:write');
    assert.match(alice, /Tools: create_note, delete_note/);
    assert.match(alice, /Tools: list_notes, read_note/);
    const bob = await consentPage('bob', 'notes:read notes:write');
    assert.match(bob, /Tools: list_notes, read_note/);
    assert.doesNotMatch(bob, /delete_note/, 'bob is not promised the admin tools');
  });
});
