import { createSqliteUserRecords } from '../../src/storage/sqlite/users.ts';
import { after, before, describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as oauth from 'oauth4webapi';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startWarden, type Warden } from '../../src/app.ts';
import { buildDemoConfig } from '../../src/config/demo.ts';
import type { Config } from '../../src/config/schema.ts';
import { openDatabase } from '../../src/storage/sqlite/database.ts';
import { UserStore } from '../../src/users/user-store.ts';
import { authorize, discover, obtainTokens, refreshTokens, registerPublicClient, type Tokens } from '../helpers/oauth.ts';
import { runCli } from '../helpers/cli.ts';
import { waitFor } from '../helpers/wait-for.ts';
import { decodeJwt } from 'jose';
import { openStorage } from '../../src/storage/index.ts';
import { createRevocationList, revocationHorizonMs } from '../../src/authorization-server/revocation.ts';
import { initializeMessage, post } from './fixtures/raw.ts';

const PASSWORD = 'revocation test password';
const insecure = { [oauth.allowInsecureRequests]: true } as const;

describe('embedded AS: revoked access tokens at the gateway', () => {
  let warden: Warden;
  let dir: string;
  let endpoint: string;
  let configFile: string;
  let resourceServer: { client_id: string; secret: string };
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'warden-revoke-'));
    const env = { PATH: process.env.PATH, HOME: process.env.HOME, WARDEN_DB: join(dir, 'warden.db') };
    const db = openDatabase(env.WARDEN_DB);
    const users = new UserStore(createSqliteUserRecords(db), undefined, { testHashCost: 12 });
    for (const name of ['alice', 'carol', 'dave']) await users.add(name, PASSWORD, ['admin']);
    db.close();
    const config = (port: number): Config => {
      const c = buildDemoConfig({ ...env, PORT: String(port), WARDEN_PUBLIC_URL: `http://127.0.0.1:${port}` });
      const as = c.authorizationServer as { embedded: Record<string, unknown> };
      return { ...c, authorizationServer: { embedded: { ...as.embedded, demo: false } } } as Config;
    };
    warden = await startWarden(config, { env, announce: () => {} });
    endpoint = `${warden.config.publicUrl}/mcp`;
    // The admin CLI, a separate program on the same database, as an operator runs it.
    configFile = join(dir, 'warden.json');
    writeFileSync(configFile, JSON.stringify({
      publicUrl: warden.config.publicUrl, storage: { sqlite: { path: env.WARDEN_DB } },
      servers: warden.config.servers.map((s) => ({ name: s.name, path: s.path, upstream: { stdio: { command: 'true' } }, scopes: s.scopes })),
    }));
    const added = await runCli(['clients', 'add', '--name', 'resource server', '--confidential', '--grant-type', 'client_credentials', '--scope', 'notes:read', '--config', configFile]);
    assert.equal(added.code, 0, added.err);
    resourceServer = { client_id: /client_id: (\S+)/.exec(added.out)![1]!, secret: /client_secret: (\S+)/.exec(added.out)![1]! };
  });

  /** One MCP request with the token: 200, or 401 with its challenge. */
  async function atMcp(token: string): Promise<number> {
    const res = await post(endpoint, token, initializeMessage());
    if (res.status === 401) assert.match(res.headers.get('www-authenticate') ?? '', /error="invalid_token"/);
    await res.text();
    return res.status;
  }

  /** A ping in a session that does not exist: 401 with its challenge once the token is refused, 404 until then. */
  async function refusedOrUnknownSession(token: string): Promise<number> {
    const res = await post(endpoint, token, { jsonrpc: '2.0', id: 1, method: 'ping' }, { 'mcp-session-id': 'none' });
    await res.text();
    if (res.status === 401) assert.match(res.headers.get('www-authenticate') ?? '', /error="invalid_token"/);
    else assert.equal(res.status, 404, 'a token still accepted reaches the session lookup');
    return res.status;
  }

  /** RFC 7662 `active`, asked by a confidential resource server client. */
  async function active(token: string): Promise<boolean> {
    const as = await discover(warden.config.publicUrl);
    const client = { client_id: resourceServer.client_id };
    const response = await oauth.introspectionRequest(as, client, oauth.ClientSecretBasic(resourceServer.secret), token, insecure);
    return (await oauth.processIntrospectionResponse(as, client, response)).active;
  }

  /** Accepted and cached at the gateway, active at introspection: the state every cause starts from. */
  async function inUse(tokens: Tokens | oauth.TokenEndpointResponse): Promise<void> {
    assert.equal(await atMcp(tokens.access_token), 200);
    assert.equal(await atMcp(tokens.access_token), 200, 'a second use is served from the verification cache');
    assert.equal(await active(tokens.access_token), true);
  }

  async function assertRefused(token: string, why: string): Promise<void> {
    assert.equal(await atMcp(token), 401, `${why}: the gateway refuses the access token at once`);
    assert.equal(await active(token), false, `${why}: introspection says inactive`);
  }

  /**
   * Another process (the admin CLI) wrote the revocation to the database at `committedAt`: the
   * gateway, which hears no bus of that process, refuses the token within 1 s (its periodic read
   * of what changed, src/authorization-server/revocation.ts).
   */
  async function assertRefusedWithin1s(token: string, why: string, committedAt: number, t: TestContext): Promise<void> {
    // Each poll is a ping naming no live session: authentication runs before the session lookup
    // (src/gateway/server-endpoint.ts), so 401 means refused and 404 means still accepted. An
    // initialize would open a session and spawn a stdio child per poll, and a child slow to start
    // on a loaded machine would make the poll itself last longer than the bound being measured.
    let winnerStarted = 0;
    await waitFor(async () => {
      const started = Date.now();
      const status = await refusedOrUnknownSession(token);
      if (status === 401) winnerStarted = started;
      return status === 401;
    }, `${why}: the gateway to refuse the access token`, { timeoutMs: 5000, intervalMs: 20 });
    // From the start of the poll that saw the refusal: how long that one request took is not the
    // gateway's delay in seeing the revocation.
    const ms = winnerStarted - committedAt;
    t.diagnostic(`${why}: refused ${ms} ms after the writer (the CLI, another connection) was done`);
    assert.ok(ms < 1000, `${why}: refused after ${ms} ms`);
    assert.equal(await active(token), false, `${why}: introspection says inactive`);
  }

  const user = (username = 'alice') => ({ issuer: warden.config.publicUrl, username, password: PASSWORD, resource: endpoint, scope: 'notes:read' });
  after(async () => {
    await warden.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('RFC 7009 §2.1: after /revoke the same access token is 401 invalid_token, even though its verification was cached', async () => {
    const tokens = await obtainTokens({ issuer: warden.config.publicUrl, username: 'alice', password: PASSWORD, resource: endpoint, scope: 'notes:read' });
    const before = await post(endpoint, tokens.access_token, initializeMessage());
    assert.equal(before.status, 200);
    await before.text();
    const as = await discover(warden.config.publicUrl);
    const revoked = await fetch(as.revocation_endpoint!, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: tokens.access_token, token_type_hint: 'access_token', client_id: tokens.clientId }),
    });
    assert.equal(revoked.status, 200);
    await revoked.text();
    const after = await post(endpoint, tokens.access_token, initializeMessage());
    assert.equal(after.status, 401);
    assert.match(after.headers.get('www-authenticate') ?? '', /error="invalid_token"/);
    await after.text();
  });

  it('OAuth 2.1 §4.1.3: replaying an authorization code revokes the access token already issued for it', async () => {
    const issuer = warden.config.publicUrl;
    const clientId = await registerPublicClient(issuer);
    const as = await discover(issuer);
    const client = { client_id: clientId };
    const { callbackUrl, state, codeVerifier } = await authorize({ ...user(), clientId });
    const params = oauth.validateAuthResponse(as, client, callbackUrl, state);
    const redeem = () => oauth.authorizationCodeGrantRequest(as, client, oauth.None(), params, 'http://127.0.0.1/callback', codeVerifier, { additionalParameters: { resource: endpoint }, ...insecure });
    const tokens = await oauth.processAuthorizationCodeResponse(as, client, await redeem());
    await inUse(tokens);
    await assert.rejects(oauth.processAuthorizationCodeResponse(as, client, await redeem()), (err: oauth.ResponseBodyError) => err.error === 'invalid_grant');
    await assertRefused(tokens.access_token, 'code replay');
  });

  it('RFC 7009 §2.1: revoking the refresh token also revokes the access tokens of its grant', async () => {
    const tokens = await obtainTokens(user());
    await inUse(tokens);
    const as = await discover(warden.config.publicUrl);
    const revoked = await oauth.revocationRequest(as, { client_id: tokens.clientId }, oauth.None(), tokens.refresh_token!, { additionalParameters: { token_type_hint: 'refresh_token' }, ...insecure });
    await oauth.processRevocationResponse(revoked);
    await assertRefused(tokens.access_token, 'refresh token revoked');
  });

  it('RFC 9700 §4.14.2: refresh token reuse revokes every access token of the family', async () => {
    const tokens = await obtainTokens(user());
    const refresh = (refreshToken: string) => refreshTokens({ issuer: warden.config.publicUrl, clientId: tokens.clientId, refreshToken, resource: endpoint });
    const r1 = await refresh(tokens.refresh_token!);
    const r2 = await refresh(r1.refresh_token!);
    await inUse(r2);
    await assert.rejects(refresh(tokens.refresh_token!), (err: oauth.ResponseBodyError) => err.error === 'invalid_grant');
    for (const at of [tokens.access_token, r1.access_token, r2.access_token]) await assertRefused(at, 'refresh reuse');
  });

  it('RFC 7009 §2.1: `mcp-warden consents revoke` revokes the access tokens of the consent\'s grant', async (t) => {
    const tokens = await obtainTokens(user());
    await inUse(tokens);
    const out = await runCli(['consents', 'revoke', '--user', 'alice', `--client=${tokens.clientId}`, '--config', configFile]);
    assert.equal(out.code, 0, out.err);
    await assertRefusedWithin1s(tokens.access_token, 'consent revoked', Date.now(), t);
  });

  it('RFC 7009 §2.1: `mcp-warden users remove` revokes every token issued to that user', async (t) => {
    const tokens = await obtainTokens(user('carol'));
    await inUse(tokens);
    const out = await runCli(['users', 'remove', 'carol', '--config', configFile]);
    assert.equal(out.code, 0, out.err);
    await assertRefusedWithin1s(tokens.access_token, 'user removed', Date.now(), t);
    await assert.rejects(refreshTokens({ issuer: warden.config.publicUrl, clientId: tokens.clientId, refreshToken: tokens.refresh_token!, resource: endpoint }),
      (err: oauth.ResponseBodyError) => err.error === 'invalid_grant', 'and their refresh token');
  });

  it('RFC 7009 §2.1: `mcp-warden users disable` revokes every token issued to that user and refuses their sign-in until enabled', async (t) => {
    const tokens = await obtainTokens(user('dave'));
    await inUse(tokens);
    const out = await runCli(['users', 'disable', 'dave', '--config', configFile]);
    assert.equal(out.code, 0, out.err);
    await assertRefusedWithin1s(tokens.access_token, 'user disabled', Date.now(), t);
    await assert.rejects(refreshTokens({ issuer: warden.config.publicUrl, clientId: tokens.clientId, refreshToken: tokens.refresh_token!, resource: endpoint }),
      (err: oauth.ResponseBodyError) => err.error === 'invalid_grant', 'and their refresh token');
    await assert.rejects(obtainTokens(user('dave')), /sign-in failed with HTTP 401/, 'a disabled user cannot sign in');
    assert.match((await runCli(['users', 'list', '--config', configFile])).out, /dave\s+admin\s+\(disabled\)/);
    assert.equal((await runCli(['users', 'enable', 'dave', '--config', configFile])).code, 0);
    assert.ok((await obtainTokens(user('dave'))).access_token, 'enabled again, they sign in');
  });

  it('RFC 7009 §2.1: `mcp-warden clients remove` revokes every token issued to that client', async (t) => {
    const tokens = await obtainTokens(user());
    await inUse(tokens);
    const out = await runCli(['clients', 'remove', '--config', configFile, '--', tokens.clientId]);
    assert.equal(out.code, 0, out.err);
    await assertRefusedWithin1s(tokens.access_token, 'client removed', Date.now(), t);
  });

  it('RFC 7009 §2.1: a revocation another connection writes straight to the database file is refused by the gateway within 1 s, cached verification included', async (t) => {
    const tokens = await obtainTokens(user());
    await inUse(tokens);
    const grantId = decodeJwt(tokens.access_token).grant_id;
    assert.equal(typeof grantId, 'string');
    const other = await openStorage({ ...warden.config, storage: { sqlite: { path: join(dir, 'warden.db') } } });
    try {
      const list = createRevocationList({ records: other.as.revocations, now: Date.now, horizonMs: revocationHorizonMs(900) });
      await list.revokeGrant(grantId as string);
      await assertRefusedWithin1s(tokens.access_token, 'grant revoked by another connection', Date.now(), t);
      await list.close();
    } finally {
      await other.close();
    }
  });
});
