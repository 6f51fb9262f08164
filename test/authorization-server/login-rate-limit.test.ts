import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Agent, fetch } from 'undici';
import * as oauth from 'oauth4webapi';
import { startEmbeddedAs, TEST_PASSWORD, type EmbeddedAs } from '../helpers/embedded-as.ts';
import { discover, registerPublicClient } from '../helpers/oauth.ts';
import { createSemaphore } from '../../src/authorization-server/rate-limit.ts';

/** One browser on one loopback source address (127.0.0.x), with its own cookie jar. */
function browserAt(localAddress: string) {
  const dispatcher = new Agent({ localAddress });
  const cookies = new Map<string, string>();
  async function get(url: string, init: { method?: string; body?: string } = {}) {
    const headers: Record<string, string> = {};
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

describe('sign-in rate limit (password guessing, scrypt cost)', () => {
  let s: EmbeddedAs;
  let skewMs = 0;
  let clientId: string;
  let authorizationEndpoint: string;
  const browsers: Array<ReturnType<typeof browserAt>> = [];
  before(async () => {
    s = await startEmbeddedAs({ options: { loginRateLimit: { maxFailures: 3, windowMs: 60_000 }, now: () => Date.now() + skewMs } });
    clientId = await registerPublicClient(s.issuer);
    authorizationEndpoint = (await discover(s.issuer)).authorization_endpoint!;
  });
  after(async () => {
    for (const b of browsers) await b.close();
    await s.close();
  });

  /** Opens a fresh login page from `address` and submits one sign-in; returns the response. */
  async function signIn(address: string, username: string, password: string) {
    const browser = browserAt(address);
    browsers.push(browser);
    const url = new URL(authorizationEndpoint);
    url.search = new URLSearchParams({
      client_id: clientId, redirect_uri: 'http://127.0.0.1/callback', response_type: 'code', state: 'st',
      code_challenge: await oauth.calculatePKCECodeChallenge(oauth.generateRandomCodeVerifier()), code_challenge_method: 'S256',
      resource: s.resource, scope: 'notes:read',
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

  it('failed sign-ins per username are limited: then even the right password gets 429 with Retry-After, from any address', async () => {
    for (let i = 0; i < 3; i++) assert.equal((await signIn('127.0.0.1', 'bob', `guess-${i}`)).status, 401);
    const locked = await signIn('127.0.0.1', 'bob', TEST_PASSWORD);
    assert.equal(locked.status, 429);
    const retry = Number(locked.retryAfter);
    assert.ok(retry > 0 && retry <= 60, `Retry-After ${locked.retryAfter}`);
    assert.match(locked.html, /Too many sign-in attempts/);
    assert.doesNotMatch(locked.html, /name="password"/);
    // Another address does not unlock bob (case variants neither) ...
    assert.equal((await signIn('127.0.0.2', 'BOB', TEST_PASSWORD)).status, 429);
    // ... but another user signs in fine from there.
    assert.equal((await signIn('127.0.0.2', 'alice', TEST_PASSWORD)).status, 303);
  });

  it('failed sign-ins per client address are limited across usernames', async () => {
    for (const u of ['carol', 'dave', 'erin']) assert.equal((await signIn('127.0.0.3', u, 'nope')).status, 401);
    assert.equal((await signIn('127.0.0.3', 'alice', TEST_PASSWORD)).status, 429);
    assert.equal((await signIn('127.0.0.4', 'alice', TEST_PASSWORD)).status, 303, 'other addresses are unaffected');
  });

  it('the limit lifts when the window has passed', async () => {
    skewMs += 61_000;
    assert.equal((await signIn('127.0.0.1', 'bob', TEST_PASSWORD)).status, 303);
    assert.equal((await signIn('127.0.0.3', 'alice', TEST_PASSWORD)).status, 303);
  });
});

describe('password verification concurrency cap', () => {
  it('runs at most `limit` verifications at once and refuses beyond the queue bound', async () => {
    const semaphore = createSemaphore(2, 3);
    let active = 0;
    let peak = 0;
    const release: Array<() => void> = [];
    const task = () => new Promise<string>((resolve) => {
      active += 1;
      peak = Math.max(peak, active);
      release.push(() => { active -= 1; resolve('done'); });
    });
    const runs = Array.from({ length: 5 }, () => semaphore.run(task));
    assert.equal(await semaphore.run(task), undefined, 'a sixth is refused: 2 running, 3 queued');
    let finished = 0;
    for (const r of runs) void r.then(() => { finished += 1; });
    while (finished < runs.length) {
      assert.ok(active <= 2);
      release.splice(0).forEach((f) => f());
      await new Promise((r) => setImmediate(r));
    }
    const results = await Promise.all(runs);
    assert.ok(results.every((r) => r?.value === 'done'));
    assert.equal(peak, 2);
  });
});
