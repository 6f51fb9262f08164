import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startEmbeddedAs, TEST_PASSWORD, type EmbeddedAs } from '../helpers/embedded-as.ts';
import { discover, registerPublicClient } from '../helpers/oauth.ts';
import { signInHarness } from '../helpers/sign-in-browser.ts';
import { createSemaphore } from '../../src/authorization-server/rate-limit.ts';

describe('sign-in backoff (password guessing, scrypt cost)', () => {
  let s: EmbeddedAs;
  let skewMs = 0;
  let clientId: string;
  let authorizationEndpoint: string;
  const h = signInHarness(() => ({ authorizationEndpoint, clientId, resource: s.resource }));
  before(async () => {
    // A clock that moves only when a test moves it: the waits asserted below (1 s; 1, 2, 4, 8 s)
    // count from the last failure, and with the real clock underneath, a check arriving late (a
    // slow scrypt on a loaded machine) would see a shorter Retry-After, or none.
    const t0 = Date.now();
    s = await startEmbeddedAs({ options: { loginRateLimit: { maxFailures: 3, windowMs: 60_000 }, now: () => t0 + skewMs } });
    clientId = await registerPublicClient(s.issuer);
    authorizationEndpoint = (await discover(s.issuer)).authorization_endpoint!;
  });
  after(async () => {
    await h.close();
    await s.close();
  });

  /** Opens a fresh login page from `address` and submits one sign-in; returns the response. */
  const signIn = (address: string, username: string, password: string) => h.signIn(address, undefined, username, password);

  it('failed sign-ins slow the account: then even the right password waits (429 with Retry-After), from any address', async () => {
    for (let i = 0; i < 3; i++) assert.equal((await signIn('127.0.0.1', 'bob', `guess-${i}`)).status, 401);
    const slowed = await signIn('127.0.0.1', 'bob', TEST_PASSWORD);
    assert.equal(slowed.status, 429);
    assert.equal(slowed.retryAfter, '1', 'the first wait is one second');
    assert.match(slowed.html, /Try again in 1 second/);
    assert.doesNotMatch(slowed.html, /name="password"/);
    // Another address does not lift bob's wait (case variants neither) ...
    assert.equal((await signIn('127.0.0.2', 'BOB', TEST_PASSWORD)).status, 429);
    // ... but another user signs in fine from there.
    assert.equal((await signIn('127.0.0.2', 'alice', TEST_PASSWORD)).status, 303);
    skewMs += 1_000;
    assert.equal((await signIn('127.0.0.1', 'bob', TEST_PASSWORD)).status, 303, 'after the wait the right password works');
  });

  it('failed sign-ins slow the client address across usernames', async () => {
    for (const u of ['carol', 'dave', 'erin']) assert.equal((await signIn('127.0.0.3', u, 'nope')).status, 401);
    assert.equal((await signIn('127.0.0.3', 'alice', TEST_PASSWORD)).status, 429);
    assert.equal((await signIn('127.0.0.4', 'alice', TEST_PASSWORD)).status, 303, 'other addresses are unaffected');
    skewMs += 1_000;
  });

  it('OWASP authentication (backoff, not lockout): an attacker failing from the victim\'s address delays the victim by the backoff only; the right password then works', async () => {
    const attacker = '127.0.0.5';
    const waits: number[] = [];
    for (let i = 0; i < 6; i++) {
      const r = await signIn(attacker, `someone-${i}`, 'guess');
      if (r.status === 429) {
        // The attacker waits as told, then fails again: each failure doubles the wait.
        waits.push(Number(r.retryAfter));
        skewMs += Number(r.retryAfter) * 1000;
        assert.equal((await signIn(attacker, `someone-${i}`, 'guess')).status, 401);
      } else {
        assert.equal(r.status, 401);
      }
    }
    assert.deepEqual(waits, [1, 2, 4], 'exponential: 1 s, 2 s, 4 s');
    // Refused attempts during a wait do not lengthen it.
    const victim = await signIn(attacker, 'alice', TEST_PASSWORD);
    assert.equal(victim.status, 429);
    for (let i = 0; i < 5; i++) assert.equal((await signIn(attacker, 'mallory', 'guess')).status, 429);
    assert.equal(Number(victim.retryAfter), 8);
    skewMs += Number(victim.retryAfter) * 1000;
    assert.equal((await signIn(attacker, 'alice', TEST_PASSWORD)).status, 303, 'the victim signs in from the same address after the backoff');
  });

  it('the wait never exceeds the configured maximum, and a quiet key is forgotten', async () => {
    const address = '127.0.0.6';
    for (let i = 0; i < 12; i++) {
      const r = await signIn(address, 'guesser', 'nope');
      if (r.status === 429) {
        assert.ok(Number(r.retryAfter) <= 60, `Retry-After ${r.retryAfter} is capped at the 60 s maximum`);
        skewMs += Number(r.retryAfter) * 1000;
      }
    }
    skewMs += 121_000;
    assert.equal((await signIn(address, 'alice', TEST_PASSWORD)).status, 303);
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
