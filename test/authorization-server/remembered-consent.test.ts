/**
 * Remembered consent is reused silently for a self-registered (DCR) or self-describing (CIMD)
 * client only when the browser says the user navigated to the authorization request themselves
 * (Fetch Metadata: Sec-Fetch-Site none or same-origin, Sec-Fetch-User ?1, Sec-Fetch-Mode
 * navigate), after FastMCP's advisory GHSA-6x8h-498w-gv8c. Pre-registered clients keep it.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startEmbeddedAs, TEST_PASSWORD, type EmbeddedAs } from '../helpers/embedded-as.ts';
import { authorize, Browser, obtainTokens, registerPublicClient } from '../helpers/oauth.ts';
import { isUserNavigation } from '../../src/authorization-server/provider.ts';
import { request } from 'undici';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { chromium, type Browser as Chromium } from 'playwright-core';
import * as oauth from 'oauth4webapi';
import { discover } from '../helpers/oauth.ts';

/**
 * A browser that sends the given Fetch Metadata headers on every request. Through undici's
 * `request`, because `fetch` overwrites Sec-Fetch-Mode with `cors`.
 */
class FetchMetadataBrowser extends Browser {
  headers: Record<string, string>;
  readonly #cookies = new Map<string, string>();
  constructor(headers: Record<string, string>) {
    super();
    this.headers = headers;
  }
  override async fetch(url: string, init: RequestInit = {}): Promise<Response> {
    const headers: Record<string, string> = { ...this.headers, ...Object.fromEntries(new Headers(init.headers)) };
    if (this.#cookies.size) headers.cookie = [...this.#cookies].map(([k, v]) => `${k}=${v}`).join('; ');
    const res = await request(url, { method: (init.method ?? 'GET') as 'GET', headers, body: init.body as string | undefined });
    const out = new Headers();
    for (const [name, value] of Object.entries(res.headers)) for (const v of [value ?? []].flat()) out.append(name, v);
    for (const line of out.getSetCookie()) {
      const pair = line.split(';')[0]!;
      const eq = pair.indexOf('=');
      const [name, value] = [pair.slice(0, eq).trim(), pair.slice(eq + 1).trim()];
      if (/expires=Thu, 01 Jan 1970/i.test(line) || value === '') this.#cookies.delete(name);
      else this.#cookies.set(name, value);
    }
    return new Response(Buffer.from(await res.body.arrayBuffer()), { status: res.statusCode, headers: out });
  }
}

const USER_NAVIGATION = { 'sec-fetch-site': 'none', 'sec-fetch-user': '?1', 'sec-fetch-mode': 'navigate' };
const CROSS_SITE = { 'sec-fetch-site': 'cross-site', 'sec-fetch-user': '?1', 'sec-fetch-mode': 'navigate' };

describe('remembered consent and self-asserted clients (GHSA-6x8h-498w-gv8c)', () => {
  let s: EmbeddedAs;
  before(async () => { s = await startEmbeddedAs(); });
  after(async () => { await s.close(); });

  const flow = (clientId: string, browser: Browser) => authorize({
    issuer: s.issuer, username: 'alice', password: TEST_PASSWORD, resource: s.resource, scope: 'notes:read', clientId, browser,
  });

  it('a DCR client: the remembered consent is shown again to a request with no Fetch Metadata, or one another site started', async () => {
    const clientId = await registerPublicClient(s.issuer);
    assert.equal((await flow(clientId, new Browser())).consentShown, true, 'first time: consent');
    assert.equal((await flow(clientId, new Browser())).consentShown, true, 'no Fetch Metadata (not provably the user): consent again');
    assert.equal((await flow(clientId, new FetchMetadataBrowser(CROSS_SITE))).consentShown, true, 'started by another site: consent again');
  });

  it('a DCR client: the user\'s own navigation reuses the remembered consent, with or without a session', async () => {
    const clientId = await registerPublicClient(s.issuer);
    assert.equal((await flow(clientId, new Browser())).consentShown, true);
    const browser = new FetchMetadataBrowser(USER_NAVIGATION);
    assert.equal((await flow(clientId, browser)).consentShown, false, 'signed in on the way: the first request counts');
    assert.equal((await flow(clientId, browser)).consentShown, false, 'with a session');
  });

  it('a DCR client with a session: a cross-site request is not answered silently', async () => {
    const clientId = await registerPublicClient(s.issuer);
    const browser = new FetchMetadataBrowser(USER_NAVIGATION);
    assert.equal((await flow(clientId, browser)).consentShown, true);
    assert.equal((await flow(clientId, browser)).consentShown, false);
    // The same browser and session cookie, sent to an authorization request another site started.
    browser.headers = CROSS_SITE;
    assert.equal((await flow(clientId, browser)).consentShown, true, 'the session alone is not the user\'s intent');
  });

  it('a pre-registered client keeps its remembered consent without Fetch Metadata', async () => {
    const { clientId } = await s.as.clients.add({ clientName: 'Administrator\'s client', type: 'public', applicationType: 'native', redirectUris: ['http://127.0.0.1/callback'] });
    await obtainTokens({ issuer: s.issuer, username: 'alice', password: TEST_PASSWORD, resource: s.resource, scope: 'notes:read', clientId });
    assert.equal((await flow(clientId, new Browser())).consentShown, false);
  });

  it('Fetch Metadata: all three headers must say the user navigated', () => {
    assert.equal(isUserNavigation(USER_NAVIGATION), true);
    assert.equal(isUserNavigation({ ...USER_NAVIGATION, 'sec-fetch-site': 'same-origin' }), true);
    assert.equal(isUserNavigation({ ...USER_NAVIGATION, 'sec-fetch-site': 'same-site' }), false, 'a sibling subdomain is another party');
    assert.equal(isUserNavigation({ ...USER_NAVIGATION, 'sec-fetch-user': undefined }), false);
    assert.equal(isUserNavigation({ ...USER_NAVIGATION, 'sec-fetch-mode': 'no-cors' }), false);
    assert.equal(isUserNavigation({}), false);
  });
});

describe('remembered consent in headless Chromium (real Fetch Metadata)', () => {
  let s: EmbeddedAs;
  let chromiumBrowser: Chromium;
  let site: Server;
  let sitePort: number;
  let redirectUri: string;
  before(async () => {
    s = await startEmbeddedAs();
    // The client's redirect target, and (under another host name: cross-site) a page that starts
    // an authorization request by script, as an authorization server in the middle would.
    site = createServer((req, res) => {
      res.setHeader('content-type', 'text/html');
      const target = new URL(req.url ?? '/', 'http://x').searchParams.get('go');
      res.end(target ? `<!DOCTYPE html><title>elsewhere</title><script>location.href = ${JSON.stringify(target)};</script>` : '<!DOCTYPE html><title>callback</title><p>done</p>');
    });
    await new Promise<void>((r) => site.listen(0, '127.0.0.1', r));
    sitePort = (site.address() as AddressInfo).port;
    redirectUri = `http://127.0.0.1:${sitePort}/callback`;
    chromiumBrowser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    });
  });
  after(async () => {
    await chromiumBrowser?.close();
    site?.closeAllConnections();
    await new Promise<void>((r) => site.close(() => r()));
    await s.close();
  });

  async function authorizationUrl(clientId: string): Promise<string> {
    const as = await discover(s.issuer);
    return `${as.authorization_endpoint}?` + new URLSearchParams({
      client_id: clientId, redirect_uri: redirectUri, response_type: 'code', state: oauth.generateRandomState(), scope: 'notes:read',
      code_challenge: await oauth.calculatePKCECodeChallenge(oauth.generateRandomCodeVerifier()), code_challenge_method: 'S256', resource: s.resource,
    }).toString();
  }

  it('GHSA-6x8h-498w-gv8c: the user typing the URL skips the remembered consent; a cross-site page starting the same request sees the consent page', async () => {
    const clientId = await registerPublicClient(s.issuer, redirectUri, 'Chromium Consent Client');
    const context = await chromiumBrowser.newContext();
    try {
      const page = await context.newPage();
      await page.goto(await authorizationUrl(clientId));
      await page.getByLabel('Username').fill('alice');
      await page.getByLabel('Password').fill(TEST_PASSWORD);
      await Promise.all([page.waitForURL(/\/interaction\//), page.getByRole('button', { name: 'Sign in' }).click()]);
      await Promise.all([page.waitForURL((u) => u.href.startsWith(redirectUri)), page.getByRole('button', { name: 'Allow' }).click()]);

      // The user's own navigation (typed, bookmarked): straight back to the client.
      await page.goto(await authorizationUrl(clientId));
      await page.waitForURL((u) => u.href.startsWith(redirectUri));
      assert.ok(new URL(page.url()).searchParams.get('code'), 'a code without a consent page');

      // Another site sends the same browser (same session) to the same request.
      const elsewhere = `http://localhost:${sitePort}/start?` + new URLSearchParams({ go: await authorizationUrl(clientId) }).toString();
      await page.goto(elsewhere);
      await page.getByRole('button', { name: 'Allow' }).waitFor();
      assert.match(page.url(), /\/interaction\//, 'the consent page, not a silent redirect with a code');
    } finally {
      await context.close();
    }
  });
});
