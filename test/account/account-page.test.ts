import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { startWarden, type Warden } from '../../src/app.ts';
import { parseConfig } from '../../src/config/load.ts';
import { demoServerCommand } from '../../src/config/demo.ts';
import { loadSecretsKey } from '../../src/downstream/secrets-key.ts';
import { createSqliteDownstreamStorage } from '../../src/storage/sqlite/downstream-store.ts';
import { openServerSecrets, storedSecretInfo } from '../../src/downstream/secret-store.ts';
import { openDatabase } from '../../src/storage/sqlite/database.ts';
import { obtainTokens } from '../helpers/oauth.ts';
import { waitFor } from '../helpers/wait-for.ts';
import { captureLogs, connectClient, PASSWORD, seedUsers, textOf } from '../downstream/e2e-fixtures.ts';

const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];
const fingerprint = (secret: string) => createHash('sha256').update(secret).digest('hex').slice(0, 12);

describe('account page: a user stores their own downstream credential in the browser', () => {
  let dir: string;
  let dbPath: string;
  let auditPath: string;
  let warden: Warden;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let logs: ReturnType<typeof captureLogs>;
  const key = randomBytes(32).toString('base64');
  const env = () => ({ PATH: process.env.PATH, HOME: process.env.HOME, WARDEN_SECRETS_KEY: key });
  const secrets = { first: `ghp_first${randomBytes(12).toString('hex')}`, second: `ghp_second${randomBytes(12).toString('hex')}` };
  const document = (port: number) => ({
    listen: { host: '127.0.0.1', port },
    publicUrl: `http://127.0.0.1:${port}`,
    storage: { sqlite: { path: dbPath } },
    audit: { jsonl: auditPath },
    servers: [
      {
        name: 'notes', path: '/mcp', upstream: { stdio: demoServerCommand() }, scopes: ['notes:read'],
        downstream: { perUserSecret: { env: 'NOTES_API_TOKEN', userEnv: 'NOTES_API_USER' } },
        // A policy, so every call is audited (the audit trail must never hold a credential either).
        policy: { mode: 'first-match', default: 'deny', rules: [{ name: 'whoami', tools: ['whoami'], scopes: ['notes:read'] }] },
      },
      {
        name: 'wiki', path: '/wiki', upstream: { stdio: demoServerCommand() }, scopes: ['wiki:read'],
        downstream: { perUserSecret: { env: 'NOTES_API_TOKEN', fallback: 'shared-wiki-token' } },
      },
    ],
  });

  /** Reads a credential as the gateway would (the test's own handle on the database). */
  async function stored(server: string, user: string): Promise<{ value: string | undefined; updatedAt: number | undefined }> {
    const db = openDatabase(dbPath);
    try {
      const { secrets } = createSqliteDownstreamStorage(db);
      const value = await (await openServerSecrets(secrets, server, loadSecretsKey({ env: 'WARDEN_SECRETS_KEY' }, { WARDEN_SECRETS_KEY: key }))).get(user);
      return { value, updatedAt: (await storedSecretInfo(secrets, server, user))?.updatedAt.getTime() };
    } finally {
      db.close();
    }
  }

  async function whoami(user: 'alice' | 'bob'): Promise<{ text?: string; refusal?: string }> {
    const resource = `${warden.url}/mcp`;
    const { access_token } = await obtainTokens({ issuer: warden.url, username: user, password: PASSWORD, resource, scope: 'notes:read', offlineAccess: false });
    try {
      const { client, close } = await connectClient(resource, access_token);
      try {
        return { text: textOf(await client.callTool({ name: 'whoami', arguments: {} })) };
      } finally {
        await close();
      }
    } catch (err) {
      return { refusal: String((err as Error).message) };
    }
  }

  /** The session cookie and CSRF token of the signed-in browser, for requests the page cannot make. */
  async function browserSession(): Promise<{ cookie: string; csrf: string }> {
    const cookies = await context.cookies(`${warden.url}/account`);
    const c = cookies.find((x) => x.name === 'warden-account');
    assert.ok(c, 'the browser holds the account session cookie');
    const cookie = `${c.name}=${c.value}`;
    const html = await (await fetch(`${warden.url}/account/secrets/notes`, { headers: { cookie } })).text();
    const csrf = /name="csrf" value="([^"]+)"/.exec(html)?.[1];
    assert.ok(csrf, 'the form carries a CSRF token');
    return { cookie, csrf };
  }

  const post = (path: string, cookie: string | undefined, body: Record<string, string>, headers: Record<string, string> = {}) => fetch(`${warden.url}${path}`, {
    method: 'POST', redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...(cookie ? { cookie } : {}), ...headers },
    body: new URLSearchParams(body).toString(),
  });

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'warden-account-'));
    dbPath = join(dir, 'warden.db');
    auditPath = join(dir, 'audit.jsonl');
    await seedUsers(dbPath, ['alice', 'bob']);
    logs = captureLogs();
    warden = await startWarden((port) => parseConfig(document(port)), { env: env(), logger: logs.logger });
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
    context = await browser.newContext();
    page = await context.newPage();
  });
  after(async () => {
    await browser?.close();
    await warden?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('OIDC Core §3.1.2.1 + RFC 7636: without a session /account redirects to the authorization endpoint with S256 PKCE, state, nonce and its own resource', async () => {
    const res = await fetch(`${warden.url}/account`, { redirect: 'manual' });
    assert.equal(res.status, 303);
    assert.equal(res.headers.get('cache-control'), 'no-store');
    const location = new URL(res.headers.get('location')!);
    assert.equal(`${location.origin}${location.pathname}`, `${warden.url}/oauth/authorize`);
    const q = location.searchParams;
    assert.equal(q.get('client_id'), 'mcp-warden-account');
    assert.equal(q.get('redirect_uri'), `${warden.url}/account/callback`);
    assert.equal(q.get('response_type'), 'code');
    assert.equal(q.get('code_challenge_method'), 'S256');
    assert.match(q.get('code_challenge') ?? '', /^[A-Za-z0-9_-]{43}$/);
    assert.ok((q.get('state') ?? '').length >= 32 && (q.get('nonce') ?? '').length >= 32);
    assert.equal(q.get('prompt'), 'login');
    assert.equal(q.get('resource'), `${warden.url}/account`, 'RFC 8707: never an MCP server, so its access token is useless there');
    assert.match(q.get('scope') ?? '', /\bopenid\b/);
    // The sign-in in progress is sealed into its own cookie; no server-side session is made for it.
    const cookie = res.headers.get('set-cookie') ?? '';
    assert.match(cookie, /^warden-account-signin=[A-Za-z0-9_-]+; Path=\/account; HttpOnly; SameSite=Lax; Max-Age=600$/);
    assert.ok(!cookie.includes(q.get('state')!), 'the state is not readable in the cookie');
  });

  it('review finding: 1000+ anonymous GET /account while alice signs in do not evict her sign-in (it is sealed in her own cookie)', async () => {
    const own = await browser.newContext();
    try {
      const p = await own.newPage();
      await p.goto(`${warden.url}/account`);
      await p.getByLabel('Username').waitFor();
      const flood = Array.from({ length: 1001 }, (_, i) => i);
      // 25 at a time: a flood, bounded in count, to this test's own listener.
      for (let i = 0; i < flood.length; i += 25) {
        const batch = await Promise.all(flood.slice(i, i + 25).map(() => fetch(`${warden.url}/account`, { redirect: 'manual' })));
        for (const r of batch) {
          assert.equal(r.status, 303);
          await r.body?.cancel();
        }
      }
      await p.getByLabel('Username').fill('alice');
      await p.getByLabel('Password').fill(PASSWORD);
      await p.getByRole('button', { name: 'Sign in' }).click();
      await p.waitForURL(`${warden.url}/account`);
      assert.equal(await p.locator('#subject').textContent(), 'alice', 'her callback still finds her sign-in');
      const names = (await own.cookies(`${warden.url}/account`)).map((c) => c.name).filter((n) => n.startsWith('warden-account')).sort();
      assert.deepEqual(names, ['warden-account'], 'the sign-in cookie is spent at the callback');
    } finally {
      await own.close();
    }
  });

  it('alice signs in on the login page, stores a credential, and only her stdio child gets it (bob\'s does not)', async () => {
    await page.goto(`${warden.url}/account`);
    await page.getByLabel('Username').fill('alice');
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    // The account page is a first-party client: no consent page between sign-in and the page.
    await page.waitForURL(`${warden.url}/account`);
    assert.equal(await page.locator('#subject').textContent(), 'alice');
    assert.equal(await page.locator('#status-notes').textContent(), 'Not set');
    assert.equal(await page.locator('#status-wiki').textContent(), 'Not set: using the shared fallback');

    await page.getByRole('link', { name: 'Set the credential for notes' }).click();
    await page.getByLabel('Credential', { exact: true }).fill(secrets.first);
    await page.getByRole('button', { name: 'Save' }).click();
    await page.waitForURL(`${warden.url}/account`);
    assert.match((await page.locator('#notice').textContent()) ?? '', /credential for notes was saved/);
    assert.match((await page.locator('#status-notes').textContent()) ?? '', /^Set on \d{1,2} [A-Z][a-z]{2} \d{4}, \d\d:\d\d UTC$/);
    assert.ok(!(await page.content()).includes(secrets.first), 'the page never shows the credential back');
    // POST-redirect-GET: reloading shows the page, it does not post again (the notice was shown once).
    await page.reload();
    assert.equal(await page.locator('#notice').count(), 0);

    assert.equal((await stored('notes', 'alice')).value, secrets.first);
    const alice = await whoami('alice');
    assert.match(alice.text ?? '', /^user: alice$/m);
    assert.match(alice.text ?? '', new RegExp(`credential-sha256: ${fingerprint(secrets.first)}`));
    const bob = await whoami('bob');
    assert.ok(bob.refusal, 'bob has no credential for notes, so his session is refused');
    assert.ok(bob.refusal.includes(`Store one at ${warden.url}/account/secrets/notes`), `bob is sent to the account page: ${bob.refusal}`);
    assert.ok(!bob.refusal.includes(fingerprint(secrets.first)));
  });

  it('OAuth 2.1 §4.1.1: the no-consent rule is only for the account page\'s own resource; its client asking for an MCP server gets the consent page', async () => {
    const authorize = new URL(`${warden.url}/oauth/authorize`);
    for (const [k, v] of Object.entries({
      client_id: 'mcp-warden-account', redirect_uri: `${warden.url}/account/callback`, response_type: 'code', scope: 'openid notes:read',
      resource: `${warden.url}/mcp`, code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256', state: 's'.repeat(32), prompt: 'login',
    })) authorize.searchParams.set(k, v);
    const other = await browser.newContext();
    try {
      const p = await other.newPage();
      await p.goto(authorize.href);
      await p.getByLabel('Username').fill('alice');
      await p.getByLabel('Password').fill(PASSWORD);
      await p.getByRole('button', { name: 'Sign in' }).click();
      await p.getByRole('button', { name: 'Allow' }).waitFor();
      assert.match(await p.content(), /notes:read|Read/);
    } finally {
      await other.close();
    }
  });

  it('alice replaces her credential: new sessions get the new one', async () => {
    const before = (await stored('notes', 'alice')).updatedAt!;
    await page.goto(`${warden.url}/account/secrets/notes`);
    assert.match((await page.locator('#status').textContent()) ?? '', /^Set on /);
    await page.getByLabel('New credential (replaces the stored one)').fill(`  ${secrets.second}  `);
    await page.getByRole('button', { name: 'Replace' }).click();
    await page.waitForURL(`${warden.url}/account`);
    assert.match((await page.locator('#notice').textContent()) ?? '', /was replaced/);
    const now = (await stored('notes', 'alice'));
    assert.equal(now.value, secrets.second, 'surrounding spaces are removed');
    assert.ok(now.updatedAt! >= before);
    const alice = await whoami('alice');
    assert.match(alice.text ?? '', new RegExp(`credential-sha256: ${fingerprint(secrets.second)}`));
  });

  it('CSRF (OWASP): a POST without or with a wrong token, or from another origin, is 403 and changes nothing', async () => {
    const { cookie, csrf } = await browserSession();
    const before = (await stored('notes', 'alice'));
    for (const [body, headers] of [
      [{ secret: 'attacker-value' }, {}],
      [{ secret: 'attacker-value', csrf: `${csrf.slice(0, -2)}xx` }, {}],
      [{ secret: 'attacker-value', csrf }, { origin: 'https://evil.example' }],
    ] as const) {
      const res = await post('/account/secrets/notes', cookie, body, headers);
      assert.equal(res.status, 403);
      assert.equal(res.headers.get('cache-control'), 'no-store');
      assert.match(await res.text(), /This form has expired|another site/);
    }
    const del = await post('/account/secrets/notes/delete', cookie, {});
    assert.equal(del.status, 403);
    const noSession = await post('/account/secrets/notes', undefined, { secret: 'attacker-value', csrf });
    assert.equal(noSession.status, 403);
    assert.match(await noSession.text(), /Your session has ended/);
    assert.deepEqual((await stored('notes', 'alice')), before);
  });

  it('an unknown server, another user\'s path or a server without per-user secrets is 404; the subject never comes from the request', async () => {
    const { cookie, csrf } = await browserSession();
    for (const path of ['/account/secrets/nope', '/account/secrets/notes/bob', '/account/users/bob/secrets/notes', '/account/secrets/%E0%A4%A']) {
      const res = await fetch(`${warden.url}${path}`, { headers: { cookie } });
      assert.equal(res.status, 404, path);
      assert.match(await res.text(), /There is no such page/);
    }
    const res = await post('/account/secrets/nope', cookie, { secret: 'x', csrf });
    assert.equal(res.status, 404);
    // A user field in the form is ignored: the credential is alice's (her session), never bob's.
    const tried = await post('/account/secrets/wiki', cookie, { secret: 'wiki-token-of-alice', csrf, user: 'bob' }).catch((e: Error) => e);
    assert.ok(!(tried instanceof Error) && tried.status === 303);
    assert.equal((await stored('wiki', 'bob')).value, undefined);
    assert.equal((await stored('wiki', 'alice')).value, 'wiki-token-of-alice');
  });

  it('an empty or oversized credential gets a clear error on the form and nothing is stored', async () => {
    await page.goto(`${warden.url}/account/secrets/wiki`);
    const { cookie, csrf } = await browserSession();
    const before = (await stored('notes', 'alice'));
    const empty = await post('/account/secrets/notes', cookie, { secret: '   ', csrf });
    assert.equal(empty.status, 400);
    assert.match(await empty.text(), /Enter the credential to store; the field was empty/);
    const huge = await post('/account/secrets/notes', cookie, { secret: 'a'.repeat(5000), csrf });
    assert.equal(huge.status, 400);
    const hugePage = await huge.text();
    assert.match(hugePage, /longer than 4096 bytes/);
    assert.ok(!hugePage.includes('a'.repeat(64)), 'the refused value is not echoed into the form');
    const control = await post('/account/secrets/notes', cookie, { secret: 'ghp_echo\ncheck', csrf });
    assert.equal(control.status, 400);
    const controlPage = await control.text();
    assert.match(controlPage, /line break/);
    assert.ok(!controlPage.includes('ghp_echo'), 'the refused value is not echoed into the form');
    const tooLarge = await post('/account/secrets/notes', cookie, { secret: 'a'.repeat(20_000), csrf });
    assert.equal(tooLarge.status, 413);
    assert.deepEqual((await stored('notes', 'alice')), before);
  });

  it('alice deletes her credential: the page says "Not set" and her next session is refused', async () => {
    await page.goto(`${warden.url}/account/secrets/notes`);
    await page.getByRole('button', { name: 'Delete stored credential' }).click();
    await page.waitForURL(`${warden.url}/account`);
    assert.match((await page.locator('#notice').textContent()) ?? '', /was deleted/);
    assert.equal(await page.locator('#status-notes').textContent(), 'Not set');
    assert.equal((await stored('notes', 'alice')).value, undefined);
    const alice = await whoami('alice');
    assert.ok(alice.refusal, 'without a credential (and no fallback) alice is refused');
  });

  it('sign-out ends the session: the old cookie no longer works and /account asks to sign in again', async () => {
    const { cookie } = await browserSession();
    await page.goto(`${warden.url}/account`);
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.waitForURL(`${warden.url}/account/signed-out`);
    const res = await fetch(`${warden.url}/account`, { headers: { cookie }, redirect: 'manual' });
    assert.equal(res.status, 303);
    assert.match(res.headers.get('location') ?? '', /\/oauth\/authorize\?/);
    // prompt=login: signing in again asks for the password, even though the AS session lives on.
    await page.goto(`${warden.url}/account`);
    await page.getByLabel('Password').waitFor();
  });

  it('the account pages carry the login pages\' CSP, no-store and labelled inputs', async () => {
    await page.getByLabel('Username').fill('alice');
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL(`${warden.url}/account`);
    const res = await page.goto(`${warden.url}/account/secrets/notes`);
    const h = res!.headers();
    assert.match(h['content-security-policy'] ?? '', /default-src 'none'/);
    assert.match(h['content-security-policy'] ?? '', /frame-ancestors 'none'/);
    assert.equal(h['cache-control'], 'no-store');
    assert.equal(h['x-frame-options'], 'DENY');
    assert.equal(await page.getByLabel('Credential', { exact: true }).getAttribute('type'), 'password');
  });

  it('no credential appears in the logs or the audit trail', async () => {
    await warden.flushAudit();
    logs.logger.flush();
    const logText = JSON.stringify(logs.lines());
    const readAudit = () => (existsSync(auditPath) ? readFileSync(auditPath, 'utf8') : '');
    await waitFor(() => /"alice"/.test(readAudit()), 'the audit trail of alice\'s calls');
    const auditText = readAudit();
    assert.ok(logs.lines().some((l) => l.event === 'account_secret_set' && l.user === 'alice' && l.server === 'notes'), 'the operator sees who set what');
    for (const s of [secrets.first, secrets.second, 'wiki-token-of-alice']) {
      assert.ok(!logText.includes(s), 'not in the logs');
      assert.ok(!auditText.includes(s), 'not in the audit trail');
    }
  });
});
