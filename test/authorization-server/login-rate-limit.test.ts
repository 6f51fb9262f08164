import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startEmbeddedAs, TEST_PASSWORD, type EmbeddedAs } from '../helpers/embedded-as.ts';
import { discover, registerPublicClient } from '../helpers/oauth.ts';
import { signInHarness } from '../helpers/sign-in-browser.ts';
import { createSemaphore } from '../../src/authorization-server/rate-limit.ts';

describe('sign-in rate limit (password guessing, scrypt cost)', () => {
  let s: EmbeddedAs;
  let skewMs = 0;
  let clientId: string;
  let authorizationEndpoint: string;
  const h = signInHarness(() => ({ authorizationEndpoint, clientId, resource: s.resource }));
  before(async () => {
    s = await startEmbeddedAs({ options: { loginRateLimit: { maxFailures: 3, windowMs: 60_000 }, now: () => Date.now() + skewMs } });
    clientId = await registerPublicClient(s.issuer);
    authorizationEndpoint = (await discover(s.issuer)).authorization_endpoint!;
  });
  after(async () => {
    await h.close();
    await s.close();
  });

  /** Opens a fresh login page from `address` and submits one sign-in; returns the response. */
  const signIn = (address: string, username: string, password: string) => h.signIn(address, undefined, username, password);

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
