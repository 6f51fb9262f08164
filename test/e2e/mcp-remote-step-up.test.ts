/**
 * Step-up with mcp-remote, the stdio bridge many desktop hosts run for remote servers, through a real browser.
 *
 * mcp-remote registers by DCR with the scope of the first 401 challenge only (`notes:read`). When a
 * tool needs more, the gateway answers 403 `insufficient_scope` naming `notes:write`; mcp-remote
 * then runs a new authorization request for the union of scopes, with the same registered client.
 * The authorization server must not treat the registered scope as a ceiling there, or the request
 * fails with `invalid_scope` and step-up is unreachable for this client.
 *
 * Everything is real: the warden in-process with its embedded authorization server, mcp-remote as a
 * child process spoken to over stdio by the official MCP SDK client, and headless Chromium for the
 * login and consent pages. mcp-remote "opens the browser" through the `open` package, which runs
 * `xdg-open`, which honours `$BROWSER`: ours is a script that records the URL for the test to visit.
 * The child's environment is only what the test passes (no DISPLAY, no desktop session), so xdg-open
 * takes its generic path to `$BROWSER` and never starts a browser of the machine's own.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Readable } from 'node:stream';
import { Client } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { chromium, type Browser, type BrowserContext } from 'playwright-core';
import { startWarden, type Warden } from '../../src/app.ts';
import { buildDemoConfig } from '../../src/config/demo.ts';
import type { Config } from '../../src/config/schema.ts';
import { queryAuditEvents } from '../../src/audit/query.ts';
import { openDatabase } from '../../src/storage/sqlite/database.ts';
import { createSqliteStore } from '../../src/storage/sqlite/store.ts';
import { createSqliteUserRecords } from '../../src/storage/sqlite/users.ts';
import { UserStore } from '../../src/users/user-store.ts';
import { discover } from '../helpers/oauth.ts';
import { waitFor } from '../helpers/wait-for.ts';

const PASSWORD = 'mcp-remote step-up password';
const MCP_REMOTE = fileURLToPath(new URL('../../node_modules/mcp-remote/dist/proxy.js', import.meta.url));
// A loaded 2-core machine runs a browser, mcp-remote and the warden at once: wait generously.
const SIGN_IN_TIMEOUT_MS = 60_000;

const scopesOf = (value: unknown): string[] => (typeof value === 'string' ? value.split(' ').filter(Boolean) : []);

/** Settles a promise into a value or an error, so a rejection while the test drives the browser is reported, not unhandled. */
const settle = <T>(p: Promise<T>): Promise<{ value: T } | { error: unknown }> => p.then((value) => ({ value }), (error: unknown) => ({ error }));

describe('MCP 2025-11-25 authorization §Scope Challenge Handling: mcp-remote steps up through a real browser', () => {
  let warden: Warden;
  let dir: string;
  let endpoint: string;
  let browser: Browser;
  let context: BrowserContext;
  let client: Client | undefined;
  /** The DCR client mcp-remote registered, once the first journey has signed in. */
  let clientId: string | undefined;
  let stderr = '';
  const configDir = () => join(dir, 'mcp-remote');
  const openedUrlsFile = () => join(dir, 'opened-urls.txt');

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'warden-mcp-remote-'));
    const env = { PATH: process.env.PATH, HOME: process.env.HOME, WARDEN_DB: join(dir, 'warden.db') };
    const db = openDatabase(env.WARDEN_DB);
    // alice is an admin, so the demo policy lets her create notes once her token carries notes:write.
    await new UserStore(createSqliteUserRecords(db), undefined, { testHashCost: 12 }).add('alice', PASSWORD, ['admin']);
    db.close();
    const config = (port: number): Config => {
      const c = buildDemoConfig({ ...env, PORT: String(port), WARDEN_PUBLIC_URL: `http://127.0.0.1:${port}` });
      const as = c.authorizationServer as { embedded: Record<string, unknown> };
      return { ...c, authorizationServer: { embedded: { ...as.embedded, demo: false } } } as Config;
    };
    warden = await startWarden(config, { env, announce: () => {} });
    endpoint = `${warden.config.publicUrl}/mcp`;

    // The "browser" mcp-remote opens: it only records the authorization URL, one per line.
    const opener = join(dir, 'browser.sh');
    writeFileSync(opener, `#!/bin/sh\nprintf '%s\\n' "$1" >> '${openedUrlsFile()}'\n`);
    chmodSync(opener, 0o755);
    mkdirSync(configDir());

    browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    });
    context = await browser.newContext();
  });

  after(async () => {
    await client?.close().catch(() => undefined);
    await browser?.close();
    await warden?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** The authorization URLs mcp-remote has asked the browser to open so far. */
  function openedUrls(): URL[] {
    if (!existsSync(openedUrlsFile())) return [];
    return readFileSync(openedUrlsFile(), 'utf8').split('\n').filter(Boolean).map((line) => new URL(line));
  }

  /** Waits for mcp-remote to open its n-th authorization URL, then signs in and consents in Chromium. */
  async function completeSignIn(nth: number): Promise<URL> {
    await waitFor(() => openedUrls().length >= nth, `mcp-remote to open authorization URL #${nth}`, { timeoutMs: SIGN_IN_TIMEOUT_MS, intervalMs: 50 })
      .catch((err: Error) => { throw new Error(`${err.message}\nmcp-remote stderr:\n${stderr}`); });
    const url = openedUrls()[nth - 1]!;
    const redirectUri = url.searchParams.get('redirect_uri')!;
    // Mid-session, mcp-remote opens the browser first and starts its callback server just after; a
    // person takes longer than that to consent, a test might not. Wait until it listens again.
    await waitFor(() => [...stderr.matchAll(/OAuth callback server running at/g)].length >= nth, `mcp-remote's callback server for sign-in #${nth}`, { timeoutMs: SIGN_IN_TIMEOUT_MS, intervalMs: 50 })
      .catch((err: Error) => { throw new Error(`${err.message}\nmcp-remote stderr:\n${stderr}`); });
    const page = await context.newPage();
    try {
      await page.goto(url.href);
      for (let i = 0; i < 4 && !page.url().startsWith(redirectUri); i++) {
        if (await page.locator('#password').count()) {
          await page.fill('#username', 'alice');
          await page.fill('#password', PASSWORD);
          await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
        } else if (await page.locator('button[value=allow]').count()) {
          await Promise.all([page.waitForURL((u) => u.href.startsWith(redirectUri)), page.click('button[value=allow]')]);
        } else {
          break;
        }
      }
      // The authorization server answered the client's redirect URI with a code, not an error
      // (a registered scope enforced as a ceiling answers the step-up with error=invalid_scope).
      const callback = new URL(page.url());
      assert.ok(page.url().startsWith(redirectUri), `authorization #${nth} ended at ${page.url()}: ${(await page.textContent('body'))?.slice(0, 300)}`);
      assert.equal(callback.searchParams.get('error'), null, `authorization #${nth}: ${callback.searchParams.get('error')} ${callback.searchParams.get('error_description') ?? ''}`);
      assert.ok(callback.searchParams.get('code'), `authorization #${nth} returned a code`);
    } finally {
      await page.close();
    }
    return url;
  }

  /** One JSON file mcp-remote keeps in its config dir (`<server hash>_<name>`). */
  function readMcpRemoteFile(name: string): Record<string, unknown> {
    const base = readdirSync(configDir(), { recursive: true, encoding: 'utf8' }).find((f) => f.endsWith(`_${name}`));
    assert.ok(base, `mcp-remote stored ${name} in ${configDir()}`);
    return JSON.parse(readFileSync(join(configDir(), base), 'utf8')) as Record<string, unknown>;
  }

  it('registers by DCR with notes:read only; a 403 insufficient_scope for notes:write re-authorizes with the union and the call succeeds', async () => {
    const transport = new StdioClientTransport({
      command: process.execPath,
      args: [MCP_REMOTE, endpoint],
      env: { PATH: process.env.PATH ?? '', HOME: dir, MCP_REMOTE_CONFIG_DIR: configDir(), BROWSER: join(dir, 'browser.sh') },
      stderr: 'pipe',
    });
    (transport.stderr as Readable).on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
    client = new Client({ name: 'mcp-remote-step-up', version: '1.0.0' });

    // First sign-in: mcp-remote asks for the scope of the gateway's 401 challenge.
    const connecting = settle(client.connect(transport));
    const first = await completeSignIn(1);
    const connected = await connecting;
    assert.ok(!('error' in connected), `mcp-remote connected after the first sign-in: ${'error' in connected ? String(connected.error) : ''}`);
    assert.deepEqual(scopesOf(first.searchParams.get('scope')).filter((s) => s.startsWith('notes:')), ['notes:read'], `first authorization scope: ${first.searchParams.get('scope')}`);

    const { tools } = await client.listTools();
    assert.ok(tools.some((t) => t.name === 'create_note'), `alice (admin) sees create_note: ${tools.map((t) => t.name).join(', ')}`);

    // The DCR registration recorded only the first challenge's scope.
    clientId = String(readMcpRemoteFile('client_info.json').client_id);
    const db = openDatabase(join(dir, 'warden.db'));
    const registered = await createSqliteStore(db).models.find('Client', clientId);
    db.close();
    assert.ok(registered, `the warden stored the DCR client ${clientId}`);
    assert.ok(scopesOf(registered.scope).includes('notes:read'), `registered scope: ${String(registered.scope)}`);
    assert.ok(!scopesOf(registered.scope).includes('notes:write'), `registered scope: ${String(registered.scope)}`);

    // create_note needs notes:write: the gateway answers 403 insufficient_scope, mcp-remote opens
    // a second authorization for the union, the browser consents, and mcp-remote retries the call.
    const calling = settle(client.callTool({ name: 'create_note', arguments: { title: 'step-up', body: 'written after step-up' } }));
    const second = await completeSignIn(2);
    const called = await calling;
    assert.ok(!('error' in called), `create_note after step-up: ${'error' in called ? String(called.error) : ''}`);
    const result = called.value;
    assert.notEqual(result.isError, true, `create_note failed: ${JSON.stringify(result.content)}`);
    assert.match(JSON.stringify(result.content), /created note \d+/);

    // The gateway refused the first attempt for its scope (the 403 that started the step-up) and
    // allowed the retry: the decision trail of the same DCR client for create_note.
    await warden.flushAudit();
    const auditDb = openDatabase(join(dir, 'warden.db'));
    const decisions = queryAuditEvents(auditDb, { clientId }).filter((e) => e.target === 'create_note').reverse();
    auditDb.close();
    assert.deepEqual(decisions.map((e) => e.decision), ['deny', 'allow'], `create_note decisions: ${JSON.stringify(decisions.map((e) => [e.decision, e.reason]))}`);
    assert.match(decisions[0]!.reason, /notes:write/, 'the denial was for the missing scope, not the role');

    const requested = scopesOf(second.searchParams.get('scope'));
    assert.ok(requested.includes('notes:read') && requested.includes('notes:write'), `step-up authorization scope: ${requested.join(' ')}`);
    assert.equal(second.searchParams.get('client_id'), clientId, 'the step-up reuses the DCR client registered with notes:read');
    // The access token mcp-remote now holds (RFC 9068, verified against the published keys) carries both scopes.
    const tokens = readMcpRemoteFile('tokens.json');
    const issuer = warden.config.publicUrl;
    const jwks = createRemoteJWKSet(new URL(String((await discover(issuer)).jwks_uri)));
    const { payload } = await jwtVerify(String(tokens.access_token), jwks, { issuer, audience: endpoint, typ: 'at+jwt', algorithms: ['ES256'] });
    const granted = scopesOf(payload.scope);
    assert.ok(granted.includes('notes:read') && granted.includes('notes:write'), `the final access token's scope: ${granted.join(' ')}`);
    assert.equal(payload.client_id, clientId);
    assert.equal(openedUrls().length, 2, 'two sign-ins: the first and the step-up');
  });

  it('OAuth 2.1 §4.3.1: after the step-up, a refreshed access token keeps the union of scopes (no ceiling on refresh either)', async () => {
    assert.ok(client && clientId, 'continues the session the step-up journey signed in');
    const accessToken = String(readMcpRemoteFile('tokens.json').access_token);
    const issuer = warden.config.publicUrl;
    const metadata = await discover(issuer);

    // RFC 7009: revoke the access token mcp-remote holds (a public client names itself by
    // client_id), and wait until the gateway refuses it, so the next call needs a new token.
    const revoked = await fetch(String(metadata.revocation_endpoint), {
      method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: accessToken, token_type_hint: 'access_token', client_id: clientId }),
    });
    assert.equal(revoked.status, 200);
    await waitFor(async () => (await fetch(endpoint, {
      method: 'POST',
      headers: { authorization: `Bearer ${accessToken}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' }),
    })).status === 401, 'the gateway to refuse the revoked access token', { timeoutMs: SIGN_IN_TIMEOUT_MS, intervalMs: 100 });

    // The gateway answers 401; mcp-remote spends its refresh token and retries, with no browser.
    const called = await settle(client.callTool({ name: 'create_note', arguments: { title: 'after refresh', body: 'still allowed' } }));
    assert.ok(!('error' in called), `create_note after the refresh: ${'error' in called ? String(called.error) : ''}\nmcp-remote stderr:\n${stderr}`);
    assert.notEqual(called.value.isError, true, `create_note failed: ${JSON.stringify(called.value.content)}`);
    assert.match(JSON.stringify(called.value.content), /created note \d+/);
    assert.equal(openedUrls().length, 2, 'no new sign-in: the refresh token was enough');

    const refreshed = readMcpRemoteFile('tokens.json');
    assert.notEqual(refreshed.access_token, accessToken, 'mcp-remote holds a new access token');
    const jwks = createRemoteJWKSet(new URL(String(metadata.jwks_uri)));
    const { payload } = await jwtVerify(String(refreshed.access_token), jwks, { issuer, audience: endpoint, typ: 'at+jwt', algorithms: ['ES256'] });
    const granted = scopesOf(payload.scope);
    assert.ok(granted.includes('notes:read') && granted.includes('notes:write'), `the refreshed access token's scope: ${granted.join(' ')}`);
  });
});
