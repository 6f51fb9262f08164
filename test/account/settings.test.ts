import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { parseConfig } from '../../src/config/load.ts';
import { openDatabase } from '../../src/storage/sqlite/database.ts';
import { AccountConfigError, resolveAccountSettings } from '../../src/account/settings.ts';
import { createSqliteDownstreamStorage } from '../../src/storage/sqlite/downstream-store.ts';
import type { SqliteDatabase } from '../../src/storage/sqlite/database.ts';

const settingsOf = (db: SqliteDatabase) => createSqliteDownstreamStorage(db).settings;
import { createSessionStore } from '../../src/account/sessions.ts';
import { readSessionId, sessionCookie } from '../../src/account/cookies.ts';
import { createSignInSealer, readSignInCookie, signInCookie, SIGN_IN_MS } from '../../src/account/sign-in-cookie.ts';
import { parseSecret } from '../../src/account/form.ts';
import { startWarden } from '../../src/app.ts';
import { captureLogs } from '../downstream/e2e-fixtures.ts';
import { AccountError } from '../../src/account/errors.ts';

const stdio = { stdio: { command: 'node', args: [] } };
const perUser = { downstream: { perUserSecret: { env: 'API_TOKEN' } } };
const base = (extra: Record<string, unknown> = {}, servers: unknown[] = [{ name: 'gh', path: '/mcp', upstream: stdio, ...perUser }]) =>
  parseConfig({ publicUrl: 'http://127.0.0.1:9', servers, ...extra });
const external = { authorizationServer: { external: { issuer: 'https://idp.example.com' } } };

describe('account page settings (docs/downstream.md "Account page")', () => {
  it('on by default with the embedded authorization server and a per-user-secret server; the client secret is generated once and kept', async () => {
    const db = openDatabase(':memory:');
    try {
      const s = await resolveAccountSettings(base(), {}, settingsOf(db));
      assert.ok(s.enabled);
      assert.equal(s.clientId, 'mcp-warden-account');
      assert.equal(s.redirectUri, 'http://127.0.0.1:9/account/callback');
      assert.equal(s.resource, 'http://127.0.0.1:9/account');
      assert.equal(s.secure, false);
      const again = await resolveAccountSettings(base(), {}, settingsOf(db));
      assert.ok(again.enabled && again.clientSecret === s.clientSecret && s.clientSecret.length >= 32);
      const fromEnv = await resolveAccountSettings(base(), { WARDEN_ACCOUNT_CLIENT_SECRET: 'x'.repeat(40) }, settingsOf(db));
      assert.ok(fromEnv.enabled && fromEnv.clientSecret === 'x'.repeat(40));
    } finally { db.close(); }
  });

  it('off without a per-user-secret server, or when switched off; account.enabled: true that cannot work is a start-up error naming the key', async () => {
    const db = openDatabase(':memory:');
    try {
      const none = await resolveAccountSettings(base({}, [{ name: 'n', path: '/mcp', upstream: stdio }]), {}, settingsOf(db));
      assert.equal(none.enabled, false);
      assert.equal((await resolveAccountSettings(base({ account: { enabled: false } }), {}, settingsOf(db))).enabled, false);
      await assert.rejects(() => resolveAccountSettings(base({ account: { enabled: true } }, [{ name: 'n', path: '/mcp', upstream: stdio }]), {}, settingsOf(db)),
        (e: Error) => e instanceof AccountConfigError && /account\.enabled is true.*perUserSecret/.test(e.message));
      const collision = await resolveAccountSettings(base({}, [{ name: 'gh', path: '/account/mcp', upstream: stdio, ...perUser }]), {}, settingsOf(db));
      assert.ok(!collision.enabled && /\/account\/mcp/.test(collision.reason));
    } finally { db.close(); }
  });

  it('external issuer: off with a log-ready reason naming the redirect URI unless account.client is configured; on with it', async () => {
    const db = openDatabase(':memory:');
    try {
      const off = await resolveAccountSettings(base(external), {}, settingsOf(db));
      assert.ok(!off.enabled);
      assert.match(off.reason, /register a confidential client there with redirect URI http:\/\/127\.0\.0\.1:9\/account\/callback/);
      assert.match(off.reason, /account\.client\.clientId and account\.client\.clientSecret/);
      await assert.rejects(() => resolveAccountSettings(base({ ...external, account: { enabled: true } }), {}, settingsOf(db)), AccountConfigError);
      const on = await resolveAccountSettings(base({ ...external, account: { client: { clientId: 'warden-account', clientSecret: 's'.repeat(24) } } }), {}, settingsOf(db));
      assert.ok(on.enabled && !on.embedded && on.issuer === 'https://idp.example.com' && on.resource === undefined);
    } finally { db.close(); }
  });

  it('external issuer without account.client: the warden starts, the operator gets one warn line saying what to register, and /account is 404', async () => {
    const logs = captureLogs();
    const warden = await startWarden((port) => parseConfig({
      listen: { host: '127.0.0.1', port }, publicUrl: `http://127.0.0.1:${port}`, storage: { sqlite: { path: ':memory:' } },
      authorizationServer: { external: { issuer: 'https://idp.example.invalid' } },
      servers: [{ name: 'gh', path: '/mcp', upstream: stdio, ...perUser }],
    }), { env: { PATH: process.env.PATH, WARDEN_SECRETS_KEY: Buffer.alloc(32, 7).toString('base64') }, logger: logs.logger });
    try {
      const res = await fetch(`${warden.url}/account`, { redirect: 'manual' });
      assert.equal(res.status, 404);
      logs.logger.flush();
      const line = logs.lines().find((l) => l.msg === 'the account page is off');
      assert.ok(line, 'a log line says the page is off');
      assert.equal(line.level, 40, 'warn');
      assert.match(String(line.reason), /redirect URI http:\/\/127\.0\.0\.1:\d+\/account\/callback/);
    } finally {
      await warden.close();
    }
  });

  it('https publicUrl: Secure cookie with the __Host- prefix, which RFC 6265bis §4.1.3.2 requires with Path=/', async () => {
    assert.equal(sessionCookie({ secure: true }, 'a'.repeat(43)), `__Host-warden-account=${'a'.repeat(43)}; Path=/; HttpOnly; SameSite=Lax; Secure`);
    assert.equal(sessionCookie({ secure: false }, 'a'.repeat(43)), `warden-account=${'a'.repeat(43)}; Path=/account; HttpOnly; SameSite=Lax`);
    assert.match(sessionCookie({ secure: false }, undefined), /^warden-account=; Path=\/account; HttpOnly; SameSite=Lax; Max-Age=0$/);
    const db = openDatabase(':memory:');
    try {
      const s = await resolveAccountSettings(parseConfig({ publicUrl: 'https://mcp.example.com', servers: [{ name: 'gh', path: '/mcp', upstream: stdio, ...perUser }] }), {}, settingsOf(db));
      assert.ok(s.enabled && s.secure);
    } finally { db.close(); }
  });

  it('RFC 6265bis §5.6: a session cookie sent twice (one planted beside ours) or malformed counts as no session', () => {
    const id = 'b'.repeat(43);
    const req = (cookie: string) => ({ headers: { cookie } }) as unknown as IncomingMessage;
    assert.equal(readSessionId(req(`other=1; warden-account=${id}`), { secure: false }), id);
    assert.equal(readSessionId(req(`warden-account=${id}; warden-account=${'c'.repeat(43)}`), { secure: false }), undefined);
    assert.equal(readSessionId(req('warden-account=short'), { secure: false }), undefined);
    assert.equal(readSessionId(req(`warden-account=${id}`), { secure: true }), undefined, 'on https only the __Host- cookie counts');
  });

  it('OWASP session management: a session ends after the idle timeout and after the absolute lifetime', () => {
    let t = 1_000_000;
    const store = createSessionStore({ idleMs: 15 * 60_000, maxMs: 60 * 60_000, now: () => t });
    const s = store.create({ subject: 'alice' });
    t += 14 * 60_000;
    assert.equal(store.get(s.id)?.subject, 'alice', 'activity within the idle window keeps it');
    t += 14 * 60_000;
    assert.equal(store.get(s.id)?.subject, 'alice');
    t += 16 * 60_000;
    assert.equal(store.get(s.id), undefined, 'idle too long');
    const busy = store.create({ subject: 'bob' });
    for (let i = 0; i < 7; i++) { t += 10 * 60_000; store.get(busy.id); }
    assert.equal(store.get(busy.id), undefined, 'past the absolute lifetime however active');
    assert.equal(store.get(undefined), undefined);
  });

  it('signed-in sessions have their own cap (oldest dropped first); a sign-in in progress is never one', () => {
    const store = createSessionStore({ idleMs: 60_000, maxMs: 3_600_000, now: () => 1, maxSessions: 2 });
    const alice = store.create({ subject: 'alice' });
    store.create({ subject: 'bob' });
    assert.equal(store.get(alice.id)?.subject, 'alice');
    store.create({ subject: 'carol' });
    assert.equal(store.get(alice.id), undefined, 'the oldest was dropped');
    assert.equal(store.size, 2);
  });

  it('RFC 6749 §10.12: a sealed sign-in opens only unaltered, under its key and purpose, before it expires', () => {
    let t = 5_000_000;
    const sealer = createSignInSealer();
    const pending = { state: 's'.repeat(43), nonce: 'n'.repeat(43), codeVerifier: 'v'.repeat(43), returnTo: '/account/secrets/gh' };
    const value = sealer.seal(pending, t);
    assert.ok(!value.includes('s'.repeat(10)) && !Buffer.from(value, 'base64url').toString('latin1').includes('vvvvvvvvvv'), 'the verifier is not readable in the cookie');
    assert.deepEqual(sealer.open(value, t + 60_000), pending);
    const raw = Buffer.from(value, 'base64url');
    raw[20] = raw[20]! ^ 1;
    assert.equal(sealer.open(raw.toString('base64url'), t), undefined, 'altered');
    assert.equal(createSignInSealer().open(value, t), undefined, 'another process\'s key');
    assert.equal(sealer.open(value, t + SIGN_IN_MS), undefined, 'expired (the expiry is inside the sealed value)');
    for (const junk of [undefined, '', 'x', 'a'.repeat(5000), 'not base64url!']) assert.equal(sealer.open(junk, t), undefined);
    const req = (cookie: string) => ({ headers: { cookie } }) as unknown as IncomingMessage;
    assert.equal(readSignInCookie(req(`warden-account=${'b'.repeat(43)}; warden-account-signin=${value}`), { secure: false }), value);
    assert.equal(readSignInCookie(req(`warden-account-signin=${value}; warden-account-signin=${value}`), { secure: false }), undefined, 'sent twice');
    assert.match(signInCookie({ secure: true }, value), /^__Host-warden-account-signin=[A-Za-z0-9_-]+; Path=\/; HttpOnly; SameSite=Lax; Secure; Max-Age=600$/);
  });

  it('parseSecret: trims; refuses empty, oversized, control characters, and non-ASCII for a header', () => {
    assert.equal(parseSecret('  tok  ', 'env'), 'tok');
    const refused = (v: string, d: 'env' | 'header', re: RegExp) => assert.throws(() => parseSecret(v, d), (e: Error) => e instanceof AccountError && e.status === 400 && re.test(e.message));
    refused('', 'env', /empty/);
    refused('x'.repeat(4097), 'env', /4096 bytes/);
    refused('a\u0000b', 'env', /control character/);
    refused('pässwort', 'header', /ASCII/);
    assert.equal(parseSecret('pässwort', 'env'), 'pässwort');
  });
});
