/**
 * The client end to end against mcp-warden's own gateway and embedded authorization server:
 * `mcp-warden connect` spawned by the SDK's stdio client (as a desktop host would), the sign-in
 * done in headless Chromium on the AS's real login and consent pages, then tools listed and
 * called through the bridge, silent refresh, re-login after revocation, and two bridges
 * refreshing at once without losing the session.
 *
 * Expiry without waiting: the client decides to refresh from the `expires_at` it stored, so the
 * tests move that instant into the past (what the client would see once the token's lifetime has
 * passed) instead of sleeping through a real lifetime.
 */
import { createSqliteUserRecords } from '../../src/storage/sqlite/users.ts';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { Client } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import { chromium, type Browser, type BrowserContext } from 'playwright-core';
import { startWarden, type Warden } from '../../src/app.ts';
import { buildDemoConfig } from '../../src/config/demo.ts';
import type { Config } from '../../src/config/schema.ts';
import { openDatabase } from '../../src/storage/sqlite/database.ts';
import { UserStore } from '../../src/users/user-store.ts';
import { main } from '../../src/cli/main.ts';
import { Capture } from '../client/sign-in.ts';
import { waitFor } from '../helpers/wait-for.ts';

const PASSWORD = 'client e2e password';
const BIN = join(import.meta.dirname, '../../bin/mcp-warden.js');

interface Bridge {
  client: Client;
  transport: StdioClientTransport;
  stderr: () => string;
  close(): Promise<void>;
}

describe('e2e: mcp-warden connect against the gateway and the embedded AS, sign-in in Chromium', () => {
  let warden: Warden;
  let dir: string;
  let home: string;
  let endpoint: string;
  let browser: Browser;
  let context: BrowserContext;
  const bridges: Bridge[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'warden-e2e-client-'));
    home = join(dir, 'client-home');
    const env = { PATH: process.env.PATH, HOME: process.env.HOME, WARDEN_DB: join(dir, 'warden.db') };
    const db = openDatabase(env.WARDEN_DB);
    await new UserStore(createSqliteUserRecords(db)).add('alice', PASSWORD, ['admin']);
    db.close();
    const config = (port: number): Config => {
      const demo = buildDemoConfig({ ...env, PORT: String(port), WARDEN_PUBLIC_URL: `http://127.0.0.1:${port}` });
      const as = demo.authorizationServer as { embedded: Record<string, unknown> };
      // No refresh grace, so a refresh token spent twice would revoke the grant (OAuth 2.1 §4.3.1)
      // and fail the concurrent test.
      return { ...demo, authorizationServer: { embedded: { ...as.embedded, demo: false, refreshGraceSeconds: 0 } } } as Config;
    };
    warden = await startWarden(config, { env, announce: () => {} });
    endpoint = `${warden.config.publicUrl}/mcp`;
    browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    });
    context = await browser.newContext();
  });

  after(async () => {
    for (const b of bridges) await b.close().catch(() => undefined);
    await browser?.close();
    await warden?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Spawns `mcp-warden connect` the way Claude Desktop would, through the SDK's stdio client. */
  async function startBridge(): Promise<Bridge> {
    const transport = new StdioClientTransport({
      command: process.execPath,
      args: [BIN, 'connect', endpoint, '--no-browser'],
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', MCP_WARDEN_HOME: home, MCP_WARDEN_TOKEN_STORE: 'file', MCP_WARDEN_REFRESH_SKEW_SECONDS: '1' },
      stderr: 'pipe',
    });
    let text = '';
    const client = new Client({ name: 'e2e-host', version: '1.0.0' });
    const connecting = client.connect(transport);
    (transport.stderr as Readable).on('data', (chunk: Buffer) => {
      text += chunk.toString();
    });
    const bridge: Bridge = {
      client,
      transport,
      stderr: () => text,
      close: () => client.close(),
    };
    bridges.push(bridge);
    await connecting;
    return bridge;
  }

  /** Waits for the n-th sign-in URL on the bridge's stderr and completes it in Chromium. */
  async function signIn(bridge: Bridge, nth = 1): Promise<string> {
    let url: string | undefined;
    await waitFor(() => {
      url = [...bridge.stderr().matchAll(/sign in:\s+(\S+)/g)][nth - 1]?.[1];
      return url !== undefined;
    }, `sign-in URL #${nth} on stderr`, { timeoutMs: 20_000 });
    assert.ok(url, `no sign-in URL on stderr: ${bridge.stderr()}`);
    const page = await context.newPage();
    try {
      await page.goto(url);
      for (let i = 0; i < 4; i++) {
        if (/127\.0\.0\.1:\d+\/callback/.test(page.url())) break;
        if (await page.locator('#password').count()) {
          await page.fill('#username', 'alice');
          await page.fill('#password', PASSWORD);
          await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
        } else if (await page.locator('button[value=allow]').count()) {
          await Promise.all([page.waitForNavigation(), page.click('button[value=allow]')]);
        } else {
          break;
        }
      }
      assert.match(page.url(), /^http:\/\/127\.0\.0\.1:\d+\/callback\?/);
      assert.match(await page.textContent('h1') ?? '', /Signed in/);
    } finally {
      await page.close();
    }
    return url;
  }

  function storeFile(): string {
    const dirPath = join(home, 'servers');
    const file = readdirSync(dirPath).find((f) => f.endsWith('.json'));
    assert.ok(file, 'the token store has a file');
    return join(dirPath, file);
  }

  function storedTokens(): { access_token: string; refresh_token?: string; expires_at?: number } {
    return JSON.parse(readFileSync(storeFile(), 'utf8')).tokens;
  }

  /** The stored access token's lifetime has passed, as the client sees it (written atomically, as the store does). */
  function expireStoredAccessToken(): void {
    const path = storeFile();
    const record = JSON.parse(readFileSync(path, 'utf8'));
    record.tokens.expires_at = Date.now() - 1000;
    writeFileSync(`${path}.test.tmp`, JSON.stringify(record), { mode: 0o600 });
    renameSync(`${path}.test.tmp`, path);
  }

  it('MCP 2025-11-25 Authorization: connect signs in through the browser, then lists and calls tools through the bridge', async () => {
    const transport = new StdioClientTransport({
      command: process.execPath,
      args: [BIN, 'connect', endpoint, '--no-browser'],
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', MCP_WARDEN_HOME: home, MCP_WARDEN_TOKEN_STORE: 'file', MCP_WARDEN_REFRESH_SKEW_SECONDS: '1' },
      stderr: 'pipe',
    });
    let text = '';
    (transport.stderr as Readable).on('data', (chunk: Buffer) => {
      text += chunk.toString();
    });
    const client = new Client({ name: 'e2e-host', version: '1.0.0' });
    const bridge: Bridge = { client, transport, stderr: () => text, close: () => client.close() };
    bridges.push(bridge);
    // The initialize request waits at the bridge until the sign-in completes.
    const connected = client.connect(transport);
    await signIn(bridge);
    await connected;
    await waitFor(() => text.includes(`mcp-warden connect: connected to ${endpoint} (MCP `), 'the one "connected" line on stderr');
    const { tools } = await client.listTools();
    assert.ok(tools.some((t) => t.name === 'list_notes'), `tools: ${tools.map((t) => t.name).join(', ')}`);
    // create_note needs notes:write, which the first token (scope from the 401 challenge) lacks:
    // the gateway answers 403 insufficient_scope and the bridge steps up with the union of scopes.
    const creating = client.callTool({ name: 'create_note', arguments: { title: 'from the bridge', body: 'hello' } });
    const stepUpUrl = await signIn(bridge, 2);
    assert.match(new URL(stepUpUrl).searchParams.get('scope') ?? '', /(?=.*notes:read)(?=.*notes:write)/, 'step-up asks for the union of scopes');
    assert.equal(new URL(stepUpUrl).searchParams.get('prompt'), 'consent', 'a step-up that adds scopes asks for consent again');
    const created = await creating;
    assert.notEqual(created.isError, true, JSON.stringify(created));
    const listed = await client.callTool({ name: 'list_notes', arguments: {} });
    assert.match(JSON.stringify(listed.content), /from the bridge/);
    const tokens = storedTokens();
    assert.ok(tokens.refresh_token, 'a refresh token was issued (offline_access)');
    assert.equal([...text.matchAll(/connected to /g)].length, 1, 'one "connected" line, not one per request or step-up');
  });

  it('RFC 6749 §6: an expired access token is refreshed silently, without a new sign-in', async () => {
    const bridge = bridges[0]!;
    const before = storedTokens();
    expireStoredAccessToken();
    const listed = await bridge.client.callTool({ name: 'list_notes', arguments: {} });
    assert.notEqual(listed.isError, true);
    const afterRefresh = storedTokens();
    assert.notEqual(afterRefresh.access_token, before.access_token, 'a new access token was stored');
    assert.equal([...bridge.stderr().matchAll(/sign in:/g)].length, 2, 'no new sign-in URL');
  });

  it('RFC 6749 §4.3.1 / OAuth 2.1 §4.3.1: two connect processes refresh at once, once (the rotated refresh token is not spent twice), and the session survives', async () => {
    const second = await startBridge();
    const first = bridges[0]!;
    expireStoredAccessToken();
    const results = await Promise.all([
      first.client.callTool({ name: 'list_notes', arguments: {} }),
      second.client.callTool({ name: 'list_notes', arguments: {} }),
    ]);
    for (const r of results) assert.notEqual(r.isError, true, JSON.stringify(r));
    // Had both spent the same rotated refresh token, the AS would have revoked the grant
    // (no grace configured) and this next refresh would need a sign-in.
    expireStoredAccessToken();
    const again = await second.client.callTool({ name: 'list_notes', arguments: {} });
    assert.notEqual(again.isError, true);
    assert.doesNotMatch(second.stderr(), /sign in:/);
    assert.equal([...first.stderr().matchAll(/sign in:/g)].length, 2);
  });

  it('RFC 7009: after the tokens are revoked the bridge asks for a new sign-in and carries on', async () => {
    const bridge = bridges[0]!;
    const tokens = storedTokens();
    const record = JSON.parse(readFileSync(join(home, 'servers', readdirSync(join(home, 'servers')).find((f) => f.endsWith('.json'))!), 'utf8'));
    const clientId = (Object.values(record.clients)[0] as { client_id: string }).client_id;
    const revocation = record.discovery.authorizationServerMetadata.revocation_endpoint as string;
    for (const token of [tokens.refresh_token!, tokens.access_token]) {
      const res = await fetch(revocation, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ token, client_id: clientId }) });
      assert.equal(res.status, 200);
    }
    expireStoredAccessToken();
    const call = bridge.client.callTool({ name: 'list_notes', arguments: {} });
    await signIn(bridge, 3);
    const listed = await call;
    assert.notEqual(listed.isError, true);
    assert.notEqual(storedTokens().refresh_token, tokens.refresh_token);
  });

  it('RFC 6749 §4.1.2.1: clicking Deny shows "Access denied" on the loopback page and login fails with access_denied', async () => {
    const stdout = new Capture();
    const stderr = new Capture();
    const env = { PATH: process.env.PATH, MCP_WARDEN_HOME: join(dir, 'deny-home'), MCP_WARDEN_TOKEN_STORE: 'file' };
    const done = main(['login', endpoint, '--no-browser'], { env, stdout, stderr });
    const url = (await stderr.waitFor(/sign in:\s+(\S+)/, 20_000))[1]!;
    const page = await context.newPage();
    try {
      await page.goto(url);
      for (let i = 0; i < 4 && !/127\.0\.0\.1:\d+\/callback/.test(page.url()); i++) {
        if (await page.locator('#password').count()) {
          await page.fill('#username', 'alice');
          await page.fill('#password', PASSWORD);
          await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
        } else {
          await Promise.all([page.waitForNavigation(), page.click('button[value=deny]')]);
        }
      }
      assert.match(page.url(), /^http:\/\/127\.0\.0\.1:\d+\/callback\?.*error=access_denied/);
      assert.equal(await page.textContent('h1'), 'Access denied');
      assert.match(await page.textContent('main') ?? '', /not signed in/);
    } finally {
      await page.close();
    }
    assert.equal(await done, 1);
    assert.match(stderr.text, /^mcp-warden login: sign-in was refused: .*\(access_denied(: [^)]*)?\)\. Run mcp-warden login http:\/\/127\.0\.0\.1:\d+\/mcp to try again and choose Allow\.$/m);
    assert.doesNotMatch(stderr.text, /\n\s+at /, 'no stack trace');
  });
});
