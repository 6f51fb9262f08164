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
