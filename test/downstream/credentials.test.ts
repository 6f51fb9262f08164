import { createSqliteDownstreamStorage } from '../../src/storage/sqlite/downstream-store.ts';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createLocalJWKSet, createRemoteJWKSet, jwtVerify, decodeJwt } from 'jose';
import { parseConfig } from '../../src/config/load.ts';
import { createLogger } from '../../src/log.ts';
import { openDatabase, type SqliteDatabase } from '../../src/storage/sqlite/database.ts';
import { createDownstreamCredentials, DownstreamCredentialError, SecretsKeyError, WARDEN_JWKS_PATH } from '../../src/downstream/index.ts';
import { openServerSecrets } from '../../src/downstream/secret-store.ts';
import type { Caller } from '../../src/kernel/caller.ts';
import type { Config } from '../../src/config/schema.ts';
import { DOWNSTREAM_API, GATEWAY, startNotesApi, startTestAuthorizationServer, type TestAuthorizationServer } from './fixtures.ts';

function caller(subject: string, accessToken: string, scopes = ['notes:read'], roles = ['member']): Caller {
  return { subject, clientId: 'claude-desktop', issuer: 'http://127.0.0.1', audience: 'http://127.0.0.1/mcp', scopes, roles, claims: {}, expiresAt: Math.floor(Date.now() / 1000) + 600, accessToken };
}

function logSink(): { logger: ReturnType<typeof createLogger>; lines: () => Array<Record<string, unknown>> } {
  const chunks: string[] = [];
  const stream = new Writable({ write(chunk, _enc, cb) { chunks.push(String(chunk)); cb(); } });
  return { logger: createLogger('info', stream), lines: () => chunks.join('').split('\n').filter(Boolean).map((l) => JSON.parse(l)) };
}

const stdio = { stdio: { command: 'node', args: ['server.js'] } };

describe('downstream credentials: per-user secrets', () => {
  let dir: string;
  let db: SqliteDatabase;
  const key = randomBytes(32).toString('base64');
  const config = (perUserSecret: Record<string, unknown>, upstream: Record<string, unknown> = stdio): Config => parseConfig({
    publicUrl: 'http://localhost:8080',
    servers: [{ name: 'notes', path: '/mcp', upstream, downstream: { perUserSecret } }],
  });
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'warden-downstream-'));
    db = openDatabase(join(dir, 'warden.db'));
  });
  afterEach(() => {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('each user\'s stdio child gets that user\'s own secret, and nobody else\'s', async () => {
    const cfg = config({ env: 'NOTES_API_TOKEN', userEnv: 'NOTES_API_USER' });
    const store = await openServerSecrets(createSqliteDownstreamStorage(db).secrets, 'notes', Buffer.from(key, 'base64'));
    await store.set('alice', 'alice-secret');
    await store.set('bob', 'bob-secret');
    const d = await createDownstreamCredentials({ config: cfg, storage: createSqliteDownstreamStorage(db), logger: createLogger('silent'), env: { WARDEN_SECRETS_KEY: key } });
    const server = cfg.servers[0]!;
    assert.deepEqual(await d.envFor(caller('alice', 'inbound-token-alice-xyz'), server), { NOTES_API_TOKEN: 'alice-secret', NOTES_API_USER: 'alice' });
    assert.deepEqual(await d.envFor(caller('bob', 'inbound-token-bob-xyz'), server), { NOTES_API_TOKEN: 'bob-secret', NOTES_API_USER: 'bob' });
  });

  it('a user without a secret and no fallback gets a clear client error naming the command, and the operator a log line', async () => {
    const cfg = config({ env: 'NOTES_API_TOKEN' });
    const { logger, lines } = logSink();
    const d = await createDownstreamCredentials({ config: cfg, storage: createSqliteDownstreamStorage(db), logger, env: { WARDEN_SECRETS_KEY: key } });
    await assert.rejects(d.envFor(caller('carol', 'inbound-token-carol-xyz'), cfg.servers[0]!), (err: unknown) => {
      assert.ok(err instanceof DownstreamCredentialError);
      assert.equal(err.code, 'credential_missing');
      assert.equal(err.status, 403);
      assert.match(err.message, /mcp-warden secrets set --server notes --user carol/);
      return true;
    });
    logger.flush();
    await new Promise((r) => setImmediate(r));
    const line = lines().find((l) => /no downstream secret/.test(String(l.msg)));
    assert.ok(line, 'operator log line');
    assert.equal(line.user, 'carol');
    assert.equal(line.server, 'notes');
  });

  it('the shared fallback covers users without their own secret; HTTP upstreams get it as the configured header', async () => {
    const cfg = config({ header: 'X-Api-Key', headerPrefix: 'key ', fallback: 'shared-secret' }, { http: { url: 'http://127.0.0.1:9/mcp' } });
    await (await openServerSecrets(createSqliteDownstreamStorage(db).secrets, 'notes', Buffer.from(key, 'base64'))).set('alice', 'alice-secret');
    const d = await createDownstreamCredentials({ config: cfg, storage: createSqliteDownstreamStorage(db), logger: createLogger('silent'), env: { WARDEN_SECRETS_KEY: key } });
    assert.deepEqual(await d.headersFor(caller('alice', 'inbound-alice-123'), cfg.servers[0]!), { 'X-Api-Key': 'key alice-secret' });
    assert.deepEqual(await d.headersFor(caller('dave', 'inbound-dave-123'), cfg.servers[0]!), { 'X-Api-Key': 'key shared-secret' });
  });

  it('a missing or wrong encryption key stops start-up with a clear error', async () => {
    const cfg = config({ env: 'NOTES_API_TOKEN' });
    await assert.rejects(createDownstreamCredentials({ config: cfg, storage: createSqliteDownstreamStorage(db), logger: createLogger('silent'), env: {} }), (err: unknown) => err instanceof SecretsKeyError && /server "notes": the secrets key is missing: set WARDEN_SECRETS_KEY/.test((err as Error).message));
    await (await openServerSecrets(createSqliteDownstreamStorage(db).secrets, 'notes', Buffer.from(key, 'base64'))).set('alice', 'alice-secret');
    await assert.rejects(createDownstreamCredentials({ config: cfg, storage: createSqliteDownstreamStorage(db), logger: createLogger('silent'), env: { WARDEN_SECRETS_KEY: randomBytes(32).toString('base64') } }), (err: unknown) => err instanceof SecretsKeyError && /does not match/.test((err as Error).message));
  });

  it('static credentials go to everybody; the identity assertion verifies with the gateway JWKS and names the caller', async () => {
    const cfg = parseConfig({
      publicUrl: 'http://localhost:8080',
      servers: [{ name: 'api', path: '/mcp', upstream: { http: { url: 'http://127.0.0.1:9/mcp' } }, downstream: { static: { headers: { 'X-Api-Key': 'k1' } }, identityAssertion: { ttlSeconds: 30 } } }],
    });
    const d = await createDownstreamCredentials({ config: cfg, storage: createSqliteDownstreamStorage(db), logger: createLogger('silent'), env: {} });
    const headers = await d.headersFor(caller('alice', 'inbound-alice-123', ['notes:read'], ['admin']), cfg.servers[0]!);
    assert.equal(headers['X-Api-Key'], 'k1');
    const { payload, protectedHeader } = await jwtVerify(headers['X-Warden-Identity']!, createLocalJWKSet(d.jwks as never), { issuer: 'http://localhost:8080', audience: 'http://127.0.0.1:9/mcp', typ: 'warden-id+jwt' });
    assert.equal(protectedHeader.alg, 'ES256');
    assert.equal(payload.sub, 'alice');
    assert.deepEqual(payload.roles, ['admin']);
    assert.equal(payload.client_id, 'claude-desktop');
    assert.ok(payload.exp! - payload.iat! === 30);
    // Served at /.well-known/warden-jwks.json by the handler the gateway mounts.
    const http = createServer(d.jwksHandler);
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
    try {
      const remote = createRemoteJWKSet(new URL(`http://127.0.0.1:${(http.address() as AddressInfo).port}${WARDEN_JWKS_PATH}`));
      assert.equal((await jwtVerify(headers['X-Warden-Identity']!, remote, { audience: 'http://127.0.0.1:9/mcp' })).payload.sub, 'alice');
    } finally {
      http.closeAllConnections();
      await new Promise((r) => http.close(r));
    }
    // The key persists: a restarted gateway publishes the same JWKS.
    const again = await createDownstreamCredentials({ config: cfg, storage: createSqliteDownstreamStorage(db), logger: createLogger('silent'), env: {} });
    assert.deepEqual(again.jwks, d.jwks);
  });

  it('RFC 7519 §4.1.4: an identity assertion is reused per caller and upstream until 30 s before its exp, then signed afresh', async () => {
    const cfg = parseConfig({
      publicUrl: 'http://localhost:8080',
      servers: [{ name: 'api', path: '/mcp', upstream: { http: { url: 'http://127.0.0.1:9/mcp' } }, downstream: { identityAssertion: { ttlSeconds: 120 } } }],
    });
    let t = 1_800_000_000;
    const d = await createDownstreamCredentials({ config: cfg, storage: createSqliteDownstreamStorage(db), logger: createLogger('silent'), env: {}, nowSeconds: () => t });
    const server = cfg.servers[0]!;
    const assertionOf = async (c: Caller) => (await d.headersFor(c, server))['X-Warden-Identity']!;
    const first = await assertionOf(caller('alice', 'a1'));
    assert.equal(await assertionOf(caller('alice', 'a2')), first, 'the same caller facts reuse the assertion');
    assert.notEqual(await assertionOf(caller('bob', 'b1')), first, 'another subject gets its own');
    assert.notEqual(await assertionOf(caller('alice', 'a3', ['notes:read'], ['admin'])), first, 'other roles are other facts');
    t += 120 - 31;
    assert.equal(await assertionOf(caller('alice', 'a4')), first, 'still more than 30 s left');
    t += 1;
    const renewed = await assertionOf(caller('alice', 'a5'));
    assert.notEqual(renewed, first, '30 s before exp a fresh one is signed');
    assert.equal(decodeJwt(renewed).iat, t);
  });
});

describe('downstream credentials: token exchange at the embedded authorization server', () => {
  let as: TestAuthorizationServer;
  let api: Awaited<ReturnType<typeof startNotesApi>>;
  let dir: string;
  let db: SqliteDatabase;
  let requests = 0;
  before(async () => {
    as = await startTestAuthorizationServer({ audiences: [{ audience: DOWNSTREAM_API, scopes: ['notes:read'], accessTokenTtlSeconds: 120 }] });
    api = await startNotesApi({ jwksUri: as.jwksUri, issuer: as.issuer });
    dir = mkdtempSync(join(tmpdir(), 'warden-downstream-'));
    db = openDatabase(join(dir, 'warden.db'));
  });
  after(async () => {
    await as.close();
    await api.close();
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const cfgFor = (upstream: Record<string, unknown>, tokenExchange: Record<string, unknown>) => parseConfig({
    publicUrl: 'http://localhost:8080',
    authorizationServer: { embedded: { issuer: as.issuer, tokenExchange: { gatewayClient: GATEWAY, audiences: [{ audience: DOWNSTREAM_API, scopes: ['notes:read'] }] } } },
    servers: [{ name: 'notes', path: '/mcp', upstream, scopes: ['notes:read'], downstream: { tokenExchange } }],
  });
  const countingFetch = (async (url: string, init: RequestInit) => {
    requests++;
    const res = await fetch(url, init);
    return { status: res.status, headers: res.headers, text: () => res.text() };
  }) as never;

  it('HTTP upstream: Authorization carries an exchanged token the downstream API accepts, per user, cached until near expiry', async () => {
    const cfg = cfgFor({ http: { url: `${api.url}/mcp` } }, { audience: DOWNSTREAM_API });
    const d = await createDownstreamCredentials({ config: cfg, storage: createSqliteDownstreamStorage(db), logger: createLogger('silent'), env: {}, embeddedTokenEndpoint: as.tokenEndpoint, fetch: countingFetch });
    const aliceToken = await as.issueAccessToken({ sub: 'alice', scope: 'notes:read notes:write' });
    const bobToken = await as.issueAccessToken({ sub: 'bob', scope: 'notes:read' });
    const alice = caller('alice', aliceToken, ['notes:read', 'notes:write']);
    const bob = caller('bob', bobToken);
    const before = requests;
    const h1 = await d.headersFor(alice, cfg.servers[0]!);
    const h2 = await d.headersFor(alice, cfg.servers[0]!);
    const hb = await d.headersFor(bob, cfg.servers[0]!);
    assert.equal(requests - before, 2, 'one exchange per user, the second alice request is served from the cache');
    assert.equal(h1.Authorization, h2.Authorization);
    assert.ok(!h1.Authorization!.includes(aliceToken), 'never the inbound token');
    for (const [who, headers] of [['alice', h1], ['bob', hb]] as const) {
      const res = await fetch(api.url, { headers: { authorization: headers.Authorization! } });
      const body = (await res.json()) as { sub: string; notes: string[]; act: { sub: string }; scope: string };
      assert.equal(res.status, 200);
      assert.equal(body.sub, who);
      assert.equal(body.act.sub, GATEWAY.clientId);
      assert.equal(body.scope, 'notes:read', 'narrowed to what the downstream allows');
      assert.ok(body.notes.every((n) => n.startsWith(`${who}:`)));
    }
  });

  it('stdio upstream: the child gets a fresh exchanged token in its env, and the gateway learns when it expires', async () => {
    const cfg = cfgFor(stdio, { audience: DOWNSTREAM_API, env: 'NOTES_API_TOKEN', userEnv: 'NOTES_API_USER' });
    const d = await createDownstreamCredentials({ config: cfg, storage: createSqliteDownstreamStorage(db), logger: createLogger('silent'), env: {}, embeddedTokenEndpoint: as.tokenEndpoint });
    const alice = caller('alice', await as.issueAccessToken({ sub: 'alice', scope: 'notes:read' }));
    const env = await d.envFor(alice, cfg.servers[0]!);
    assert.equal(env.NOTES_API_USER, 'alice');
    const claims = decodeJwt(env.NOTES_API_TOKEN!);
    assert.equal(claims.sub, 'alice');
    assert.equal(claims.aud, DOWNSTREAM_API);
    // Counted from when the exchange was sent, so never after the token's exp (and at most a second or two before it).
    const expiresAt = d.credentialsExpireAt!(alice, cfg.servers[0]!)!;
    assert.ok(expiresAt <= claims.exp! && expiresAt >= claims.exp! - 2, `credentials expire at ${expiresAt}, token exp ${claims.exp}`);
  });

  it('a refused exchange (expired subject token) is a DownstreamCredentialError for the client, not a crash', async () => {
    const cfg = cfgFor(stdio, { audience: DOWNSTREAM_API, env: 'NOTES_API_TOKEN' });
    const d = await createDownstreamCredentials({ config: cfg, storage: createSqliteDownstreamStorage(db), logger: createLogger('silent'), env: {}, embeddedTokenEndpoint: as.tokenEndpoint });
    const expired = caller('alice', await as.issueAccessToken({ sub: 'alice', scope: 'notes:read' }, { expiresIn: -60 }));
    await assert.rejects(d.envFor(expired, cfg.servers[0]!), (err: unknown) => err instanceof DownstreamCredentialError && err.code === 'exchange_failed' && err.status === 401 && /invalid_grant/.test(err.message));
  });

  it('RFC 8693 at an external authorization server (Keycloak-style: tokenEndpoint + the gateway\'s client there)', async () => {
    const cfg = parseConfig({
      publicUrl: 'http://localhost:8080',
      authorizationServer: { external: { issuer: as.issuer } },
      servers: [{ name: 'notes', path: '/mcp', upstream: { http: { url: `${api.url}/mcp` } }, downstream: { tokenExchange: { audience: DOWNSTREAM_API, tokenEndpoint: as.tokenEndpoint, clientId: GATEWAY.clientId, clientSecret: GATEWAY.clientSecret } } }],
    });
    const d = await createDownstreamCredentials({ config: cfg, storage: createSqliteDownstreamStorage(db), logger: createLogger('silent'), env: {} });
    const bob = caller('bob', await as.issueAccessToken({ sub: 'bob', scope: 'notes:read' }));
    const headers = await d.headersFor(bob, cfg.servers[0]!);
    const res = await fetch(api.url, { headers: { authorization: headers.Authorization! } });
    assert.equal(res.status, 200);
    assert.equal(((await res.json()) as { sub: string }).sub, 'bob');
    const bad = parseConfig({ ...cfg, servers: [{ ...cfg.servers[0]!, downstream: { tokenExchange: { audience: DOWNSTREAM_API, tokenEndpoint: as.tokenEndpoint, clientId: GATEWAY.clientId, clientSecret: 'wrong-secret' } } }] });
    const refused = await createDownstreamCredentials({ config: bad, storage: createSqliteDownstreamStorage(db), logger: createLogger('silent'), env: {} });
    await assert.rejects(refused.headersFor(bob, bad.servers[0]!), (err: unknown) => err instanceof DownstreamCredentialError && /invalid_client/.test(err.message) && err.status === 502);
  });

  it('start-up refuses a stdio server without an env var, or an audience the authorization server does not list', async () => {
    await assert.rejects(createDownstreamCredentials({ config: cfgFor(stdio, { audience: DOWNSTREAM_API }), storage: createSqliteDownstreamStorage(db), logger: createLogger('silent'), env: {} }), /tokenExchange.env is missing/);
    await assert.rejects(createDownstreamCredentials({ config: cfgFor(stdio, { audience: 'https://other', env: 'T' }), storage: createSqliteDownstreamStorage(db), logger: createLogger('silent'), env: {} }), /not in authorizationServer.embedded.tokenExchange.audiences/);
  });
});
