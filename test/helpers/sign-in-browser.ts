/** Sign-in at the embedded authorization server's login page, one browser per source address. */
import assert from 'node:assert/strict';
import { Agent, fetch } from 'undici';
import * as oauth from 'oauth4webapi';

/**
 * One browser on one loopback source address (127.0.0.x) with its own cookie jar; `forwarded`
 * is the X-Forwarded-For it sends (what a proxy in front would add, or what a client spoofs).
 */
export function browserAt(localAddress: string, forwarded?: string) {
  const dispatcher = new Agent({ localAddress });
  const cookies = new Map<string, string>();
  async function get(url: string, init: { method?: string; body?: string } = {}) {
    const headers: Record<string, string> = {};
    if (forwarded !== undefined) headers['x-forwarded-for'] = forwarded;
    if (cookies.size) headers.cookie = [...cookies].map(([k, v]) => `${k}=${v}`).join('; ');
    if (init.body) headers['content-type'] = 'application/x-www-form-urlencoded';
    const res = await fetch(url, { ...init, headers, redirect: 'manual', dispatcher });
    for (const line of res.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const eq = pair!.indexOf('=');
      cookies.set(pair!.slice(0, eq).trim(), pair!.slice(eq + 1).trim());
    }
    return res;
  }
  return { get, close: () => dispatcher.close() };
}

export interface SignInTarget {
  authorizationEndpoint: string;
  /** A registered public client with redirect URI http://127.0.0.1/callback. */
  clientId: string;
  resource: string;
}

/**
 * A sign-in harness: each `signIn` opens a fresh login page (authorization request with PKCE) in a
 * new browser at `address` and submits the form once; `close` closes every browser it opened.
 */
export function signInHarness(getTarget: () => SignInTarget) {
  const browsers: Array<ReturnType<typeof browserAt>> = [];
  async function signIn(address: string, forwarded: string | undefined, username: string, password: string) {
    const { authorizationEndpoint, clientId, resource } = getTarget();
    const browser = browserAt(address, forwarded);
    browsers.push(browser);
    const url = new URL(authorizationEndpoint);
    url.search = new URLSearchParams({
      client_id: clientId, redirect_uri: 'http://127.0.0.1/callback', response_type: 'code', state: 'st',
      code_challenge: await oauth.calculatePKCECodeChallenge(oauth.generateRandomCodeVerifier()), code_challenge_method: 'S256',
      resource, scope: 'notes:read',
    }).toString();
    let page = await browser.get(url.href);
    for (let i = 0; i < 5 && page.status >= 300 && page.status < 400; i++) page = await browser.get(new URL(page.headers.get('location')!, url).href);
    const html = await page.text();
    const action = /<form[^>]*action="([^"]+)"/.exec(html)?.[1];
    const csrf = /name="csrf" value="([^"]+)"/.exec(html)?.[1];
    assert.ok(action && csrf, `a login form (HTTP ${page.status})`);
    const res = await browser.get(new URL(action.replace(/&amp;/g, '&'), url).href, {
      method: 'POST', body: new URLSearchParams({ csrf, username, password }).toString(),
    });
    return { status: res.status, retryAfter: res.headers.get('retry-after'), html: await res.text() };
  }
  return { signIn, close: async () => { for (const b of browsers) await b.close(); } };
}
