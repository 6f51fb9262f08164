import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { chromium, type Browser } from 'playwright-core';
import { startWarden, type Warden } from '../../src/app.ts';
import { main } from '../../src/cli/main.ts';
import { parseConfig } from '../../src/config/load.ts';
import { loadSecretsKey } from '../../src/downstream/secrets-key.ts';
import { createSqliteDownstreamStorage } from '../../src/storage/sqlite/downstream-store.ts';
import { openServerSecrets } from '../../src/downstream/secret-store.ts';
import { openDatabase } from '../../src/storage/sqlite/database.ts';
import { captureLogs, PASSWORD, seedUsers } from '../downstream/e2e-fixtures.ts';
import { freePort } from '../helpers/free-port.ts';

const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];

describe('account page with an external issuer (a client registered there, account.client)', () => {
  let dir: string;
  let idp: Warden;
  let warden: Warden;
  let browser: Browser;
  let logs: ReturnType<typeof captureLogs>;
  const key = randomBytes(32).toString('base64');
  const idpDocument = (dbPath: string) => (port: number) => ({
    listen: { host: '127.0.0.1', port }, publicUrl: `http://127.0.0.1:${port}`, storage: { sqlite: { path: dbPath } },
    servers: [{ name: 'idp-notes', path: '/mcp', upstream: { stdio: { command: 'node', args: [] } }, scopes: ['notes:read'] }],
  });

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'warden-account-ext-'));
    const idpDb = join(dir, 'idp.db');
    await seedUsers(idpDb, ['alice']);
    idp = await startWarden((port) => parseConfig(idpDocument(idpDb)(port)), { env: { PATH: process.env.PATH } });
    const idpConfig = join(dir, 'idp.json');
    writeFileSync(idpConfig, JSON.stringify(idpDocument(idpDb)(idp.port)));

    const port = await freePort();
    let out = '';
    let err = '';
    const sink = (append: (s: string) => void) => new Writable({ write(chunk, _e, cb) { append(String(chunk)); cb(); } });
    const code = await main(['clients', 'add', '--config', idpConfig, '--name', 'Warden account page', '--confidential', '--client-id', 'warden-account',
      '--redirect-uri', `http://127.0.0.1:${port}/account/callback`, '--grant-type', 'authorization_code'],
    { env: { PATH: process.env.PATH }, stdout: sink((s) => (out += s)), stderr: sink((s) => (err += s)) });
    assert.equal(code, 0, err);
    const clientSecret = /client_secret: (\S+)/.exec(out)?.[1];
    assert.ok(clientSecret);

    logs = captureLogs();
    warden = await startWarden(parseConfig({
      listen: { host: '127.0.0.1', port }, publicUrl: `http://127.0.0.1:${port}`, storage: { sqlite: { path: join(dir, 'warden.db') } },
      authorizationServer: { external: { issuer: idp.url } },
      account: { client: { clientId: 'warden-account', clientSecret } },
      servers: [{ name: 'github', path: '/github', upstream: { stdio: { command: 'node', args: [] } }, downstream: { perUserSecret: { env: 'GITHUB_TOKEN' } } }],
    }), { env: { PATH: process.env.PATH, WARDEN_SECRETS_KEY: key }, logger: logs.logger });
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
  });
  after(async () => {
    await browser?.close();
    await warden?.close();
    await idp?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('OIDC Core §3.1: alice signs in at the external issuer and stores her credential; the subject is the ID token\'s sub', async () => {
    const page = await browser.newPage();
    try {
      await page.goto(`${warden.url}/account`);
      assert.ok(page.url().startsWith(`${idp.url}/`), 'sent to the external issuer');
      await page.getByLabel('Username').fill('alice');
      await page.getByLabel('Password').fill(PASSWORD);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.getByRole('button', { name: 'Allow' }).click();
      await page.waitForURL(`${warden.url}/account`);
      assert.equal(await page.locator('#subject').textContent(), 'alice');
      await page.getByRole('link', { name: 'Set the credential for github' }).click();
      await page.getByLabel('Credential', { exact: true }).fill('ghp_external_alice');
      await page.getByRole('button', { name: 'Save' }).click();
      await page.waitForURL(`${warden.url}/account`);
      assert.match((await page.locator('#status-github').textContent()) ?? '', /^Set on /);
    } finally { await page.close(); }
    const db = openDatabase(join(dir, 'warden.db'));
    try {
      assert.equal(await (await openServerSecrets(createSqliteDownstreamStorage(db).secrets, 'github', loadSecretsKey({ env: 'K' }, { K: key }))).get('alice'), 'ghp_external_alice');
    } finally { db.close(); }
  });

  it('OIDC Core §3.1.2.7 / RFC 6749 §10.12: a redirect back without this browser\'s sign-in, or with another state, is refused (400) and signs nobody in', async () => {
    const none = await fetch(`${warden.url}/account/callback?code=x&state=y&iss=${encodeURIComponent(idp.url)}`, { redirect: 'manual' });
    assert.equal(none.status, 400);
    assert.match(await none.text(), /This sign-in was started too long ago or in another browser/);

    const start = await fetch(`${warden.url}/account`, { redirect: 'manual' });
    const cookie = (start.headers.get('set-cookie') ?? '').split(';')[0]!;
    const wrong = await fetch(`${warden.url}/account/callback?code=x&state=not-the-state&iss=${encodeURIComponent(idp.url)}`, { headers: { cookie }, redirect: 'manual' });
    assert.equal(wrong.status, 400);
    const text = await wrong.text();
    assert.match(text, /did not match this browser&#39;s request/);
    assert.match(wrong.headers.get('set-cookie') ?? '', /^warden-account-signin=; Path=\/account; .*Max-Age=0$/, 'the sign-in cookie is cleared, and no session cookie is set');
    const after = await fetch(`${warden.url}/account`, { headers: { cookie }, redirect: 'manual' });
    assert.equal(after.status, 303, 'a sign-in cookie is no session');
    assert.ok(logs.lines().some((l) => l.event === 'account_error' && /authorization response rejected/.test(String(l.reason))));
  });
});
