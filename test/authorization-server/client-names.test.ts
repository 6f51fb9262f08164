/**
 * The sign-in and consent pages show a client's name as a claim, never as identity (MCP 2025-11-25
 * Security Best Practices §Confused Deputy): "unverified" for self-registered (DCR) and
 * self-describing (CIMD) clients, the redirect host prominent, and a warning when the name
 * imitates a client an administrator registered.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as oauth from 'oauth4webapi';
import { startEmbeddedAs, TEST_PASSWORD, type EmbeddedAs } from '../helpers/embedded-as.ts';
import { Browser, discover, registerPublicClient } from '../helpers/oauth.ts';
import { imitatedName, nameSkeleton } from '../../src/authorization-server/interactions/client-name.ts';

describe('client names on the sign-in pages', () => {
  let s: EmbeddedAs;
  before(async () => {
    s = await startEmbeddedAs();
    await s.as.clients.add({ clientName: 'Claude Desktop', type: 'public', applicationType: 'native', redirectUris: ['http://127.0.0.1/callback'] });
  });
  after(async () => { await s.close(); });

  /** Opens the authorization request in a fresh browser: the login page, then (after sign-in) the consent page. */
  async function pages(clientId: string, redirectUri = 'http://127.0.0.1/callback'): Promise<{ login: string; consent: string }> {
    const as = await discover(s.issuer);
    const url = new URL(as.authorization_endpoint!);
    url.search = new URLSearchParams({
      client_id: clientId, redirect_uri: redirectUri, response_type: 'code', state: 'st', scope: 'notes:read', resource: s.resource,
      code_challenge: await oauth.calculatePKCECodeChallenge(oauth.generateRandomCodeVerifier()), code_challenge_method: 'S256',
    }).toString();
    const browser = new Browser();
    const first = await browser.follow(url.href, s.url);
    const login = await first.response.text();
    const r = await browser.submit(first.url, login, { username: 'alice', password: TEST_PASSWORD });
    const next = await browser.follow(new URL(r.headers.get('location')!, first.url).href, s.url);
    return { login, consent: await next.response.text() };
  }

  it('a DCR client\'s name is a claim with an "unverified" badge, not in bold, and the redirect host is prominent', async () => {
    const clientId = await registerPublicClient(s.issuer, 'http://127.0.0.1/callback', 'Notes Helper');
    const { login, consent } = await pages(clientId);
    for (const page of [login, consent]) {
      assert.match(page, /<span id="client-name">Notes Helper<\/span> <span id="client-badge" class="warn">\(unverified: the name is the application's own claim\)<\/span>/);
      assert.doesNotMatch(page, /<strong[^>]*>Notes Helper/, 'a claimed name is never shown in bold');
      assert.match(page, /<dd id="client-origin" class="warn">registered itself: unverified<\/dd>/);
      assert.match(page, /<dd id="redirect-host"><strong>127\.0\.0\.1<\/strong> <span class="warn">\(an application on this computer\)<\/span><\/dd>/);
      assert.doesNotMatch(page, /imitation-warning/);
    }
  });

  it('a DCR client named like a pre-registered one gets a warning on both pages', async () => {
    const clientId = await registerPublicClient(s.issuer, 'http://127.0.0.1/callback', 'Claude Desktop (official Anthropic app)');
    const { login, consent } = await pages(clientId);
    for (const page of [login, consent]) {
      assert.match(page, /<p class="error" role="alert" id="imitation-warning">Warning: this name looks like “Claude Desktop”, an application your administrator registered, but this is a different application/);
      assert.match(page, /id="client-badge"/);
    }
  });

  it('case, spacing and confusable letters do not hide an imitation', async () => {
    // "CLAUDE  desktop" with a Cyrillic С and а.
    const clientId = await registerPublicClient(s.issuer, 'http://127.0.0.1/callback', '\u0421LAUDE  d\u0435sktop');
    const { login } = await pages(clientId);
    assert.match(login, /id="imitation-warning"/);
  });

  it('a pre-registered client\'s name is the administrator\'s: bold, no badge, no warning', async () => {
    const { clientId } = await s.as.clients.add({ clientName: 'Team Notes', type: 'public', applicationType: 'native', redirectUris: ['http://127.0.0.1/callback'] });
    const { login } = await pages(clientId);
    assert.match(login, /<strong id="client-name">Team Notes<\/strong>/);
    assert.doesNotMatch(login, /client-badge|imitation-warning/);
    assert.match(login, /<dd id="client-origin">registered by an administrator<\/dd>/);
  });

  it('name skeletons: compatibility forms, case, marks, spaces and look-alikes fold together', () => {
    assert.equal(nameSkeleton('Claude Desktop'), nameSkeleton('ｃｌａｕｄｅ\u00a0ＤＥＳＫＴＯＰ'));
    assert.equal(nameSkeleton('Claude Desktop'), nameSkeleton('C1aude Dèsktop'));
    assert.equal(nameSkeleton('Claude Desktop'), nameSkeleton('Claude\u200bDesktop'));
    assert.equal(imitatedName('My Notes', ['Claude Desktop']), undefined);
    assert.equal(imitatedName('Claude Desktop Pro', ['Claude Desktop']), 'Claude Desktop');
    assert.equal(imitatedName('Bot', ['Bo']), undefined, 'very short names are too common to call an imitation');
  });
});
