import { createSqliteUserRecords } from '../../src/storage/sqlite/users.ts';
/**
 * Step-up for a client that registered by DCR with only the first challenge's scope, driven by the
 * real MCP SDK v2 client: its transport, its `auth()` (discovery, registration, PKCE, token
 * exchange) and its 403 insufficient_scope handling. The login and consent pages are driven over
 * HTTP with their CSRF tokens, as a browser would.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, StreamableHTTPClientTransport, UnauthorizedError, type OAuthClientProvider } from '@modelcontextprotocol/client';
import { startWarden, type Warden } from '../../src/app.ts';
import { buildDemoConfig } from '../../src/config/demo.ts';
import type { Config } from '../../src/config/schema.ts';
import { openDatabase } from '../../src/storage/sqlite/database.ts';
import { createSqliteStore } from '../../src/storage/sqlite/store.ts';
import { UserStore } from '../../src/users/user-store.ts';
import { Browser } from '../helpers/oauth.ts';

const PASSWORD = 'step-up test password';
const REDIRECT = 'http://127.0.0.1:1/callback';

/** An OAuthClientProvider kept in memory; the "user agent" signs in and consents over HTTP. */
function memoryProvider(issuerOrigin: string) {
  const browser = new Browser();
  const state: Record<string, unknown> = {};
  const outcomes: URL[] = [];
  const provider: OAuthClientProvider = {
    get redirectUrl() { return REDIRECT; },
    // What mcp-remote and the SDK examples send: no `scope`, so auth() registers with the challenge's.
    get clientMetadata() {
      return { client_name: 'step-up test client', redirect_uris: [REDIRECT], grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'], token_endpoint_auth_method: 'none' };
    },
    clientInformation: () => state.client as never,
    saveClientInformation: (c) => { state.client = c; },
    tokens: () => state.tokens as never,
    saveTokens: (t) => { state.tokens = t; },
    saveCodeVerifier: (v) => { state.verifier = v; },
    codeVerifier: () => state.verifier as string,
    async redirectToAuthorization(url) {
      let step = await browser.follow(url.href, issuerOrigin);
      for (let i = 0; i < 4 && new URL(step.url).origin === issuerOrigin; i++) {
        const html = await step.response.text();
        const fields: Record<string, string> = html.includes('name="password"') ? { username: 'alice', password: PASSWORD } : { decision: 'allow' };
        const r = await browser.submit(step.url, html, fields);
        step = await browser.follow(new URL(r.headers.get('location')!, step.url).href, issuerOrigin);
      }
      outcomes.push(new URL(step.url));
    },
  };
  return { provider, state, outcomes };
}

describe('MCP 2025-11-25 authorization §Scope Challenge Handling: step-up for a DCR client', () => {
  let warden: Warden;
  let dir: string;
  let endpoint: string;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'warden-stepup-'));
    const env = { PATH: process.env.PATH, HOME: process.env.HOME, WARDEN_DB: join(dir, 'warden.db') };
    const db = openDatabase(env.WARDEN_DB);
    await new UserStore(createSqliteUserRecords(db), undefined, { testHashCost: 12 }).add('alice', PASSWORD, ['admin']);
    db.close();
    const config = (port: number): Config => {
      const c = buildDemoConfig({ ...env, PORT: String(port), WARDEN_PUBLIC_URL: `http://127.0.0.1:${port}` });
      const as = c.authorizationServer as { embedded: Record<string, unknown> };
      return { ...c, authorizationServer: { embedded: { ...as.embedded, demo: false } } } as Config;
    };
    warden = await startWarden(config, { env, announce: () => {} });
    endpoint = `${warden.config.publicUrl}/mcp`;
  });
  after(async () => {
    await warden.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** The redirect back to the client: a code, or the authorization server's error. */
  async function completeAuthorization(transport: StreamableHTTPClientTransport, outcomes: URL[]): Promise<void> {
    const callback = outcomes.at(-1)!;
    assert.equal(callback.searchParams.get('error'), null, `the authorization request failed: ${callback.searchParams.get('error')} ${callback.searchParams.get('error_description') ?? ''}`);
    await transport.finishAuth(callback.searchParams);
  }

  /** Runs an operation; when the SDK needs a new authorization (step-up), completes it and runs it again. */
  async function withAuthorization<T>(transport: StreamableHTTPClientTransport, outcomes: URL[], run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (err) {
      if (!(err instanceof UnauthorizedError)) throw err;
      await completeAuthorization(transport, outcomes);
      return run();
    }
  }

  it('SEP-2350: a client registered with notes:read only steps up to notes:write; the registered scope is no ceiling', async () => {
    const { provider, state, outcomes } = memoryProvider(new URL(warden.config.publicUrl).origin);
    let transport!: StreamableHTTPClientTransport;
    let client!: Client;
    const connect = async () => {
      transport = new StreamableHTTPClientTransport(new URL(endpoint), { authProvider: provider });
      client = new Client({ name: 'step-up', version: '1.0.0' });
      await client.connect(transport);
    };
    try {
      await connect();
      assert.fail('the first connection needs an authorization');
    } catch (err) {
      if (!(err instanceof UnauthorizedError)) throw err;
      await completeAuthorization(transport, outcomes);
      await connect();
    }

    // The registration carried only the first challenge's scope, as mcp-remote's and the SDK's do.
    const clientId = (state.client as { client_id: string }).client_id;
    const db = openDatabase(join(dir, 'warden.db'));
    const registered = await createSqliteStore(db).models.find('Client', clientId);
    db.close();
    assert.doesNotMatch(String(registered?.scope), /notes:write/, `registered scope: ${String(registered?.scope)}`);
    assert.match(String(registered?.scope), /notes:read/);

    // 403 insufficient_scope → the SDK authorizes again with the union → the call is retried.
    const deleted = await withAuthorization(transport, outcomes, () => client.callTool({ name: 'delete_note', arguments: { id: '1' } }));
    assert.match(JSON.stringify(deleted.content), /deleted note 1/);
    const granted = String((state.tokens as { scope?: string }).scope).split(' ');
    assert.ok(granted.includes('notes:read') && granted.includes('notes:write'), `the union of scopes: ${granted.join(' ')}`);
    await client.close();
  });
});
