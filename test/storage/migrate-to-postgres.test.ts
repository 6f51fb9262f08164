/**
 * `mcp-warden migrate --from <sqlite file> --to <postgres url>`: an installation moves with nothing
 * lost — the same users sign in, a refresh token issued before the move refreshes after it, an
 * access token signed before it still verifies, the audit trail is whole — and a second move into
 * the now non-empty database is refused without changing anything.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { startWarden } from '../../src/app.ts';
import { buildDemoConfig } from '../../src/config/demo.ts';
import { parseConfig } from '../../src/config/load.ts';
import type { Config } from '../../src/config/schema.ts';
import { openDatabase } from '../../src/storage/sqlite/database.ts';
import { createSqliteStore } from '../../src/storage/sqlite/store.ts';
import { decodeJwt } from 'jose';
import { initializeMessage, post } from '../gateway/fixtures/raw.ts';
import { runCli } from '../helpers/cli.ts';
import { obtainTokens, refreshTokens } from '../helpers/oauth.ts';
import { openTestPostgres, postgresUnavailable, TEST_POSTGRES_URL } from '../helpers/postgres.ts';

const PASSWORD = 'correct horse battery staple';

describe('mcp-warden migrate --from SQLite --to PostgreSQL', { skip: await postgresUnavailable() }, () => {
  let dir: string;
  let pg: Awaited<ReturnType<typeof openTestPostgres>>;
  let port: number;
  let reserve: Server;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'warden-migrate-'));
    pg = await openTestPostgres();
    // One port for before and after the move: the public URL (issuer, resource) stays the same.
    reserve = createServer();
    await new Promise<void>((r) => reserve.listen(0, '127.0.0.1', () => r()));
    port = (reserve.address() as AddressInfo).port;
    await new Promise<void>((r) => reserve.close(() => r()));
  });
  after(async () => {
    await pg?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  function config(storage: Config['storage'] | Record<string, unknown>): Config {
    const env = { WARDEN_DEMO_PASSWORD: PASSWORD, WARDEN_DEMO_CLIENT_SECRET: 'agent-secret-0123456789abcdef', PORT: String(port), WARDEN_PUBLIC_URL: `http://127.0.0.1:${port}` };
    const demo = buildDemoConfig(env);
    return parseConfig({ ...JSON.parse(JSON.stringify({ ...demo, servers: undefined })), servers: demo.servers, storage });
  }

  it('moves everything, counts checked; sign-in state, keys and audit carry over; a second move is refused', async () => {
    const file = join(dir, 'warden.db');
    const env = { PATH: process.env.PATH, WARDEN_DEMO_PASSWORD: PASSWORD, WARDEN_DEMO_CLIENT_SECRET: 'agent-secret-0123456789abcdef' };
    const endpoint = `http://127.0.0.1:${port}/mcp`;
    let tokens: Awaited<ReturnType<typeof obtainTokens>>;
    let revokedTokens: Awaited<ReturnType<typeof obtainTokens>>;
    const before = await startWarden(config({ sqlite: { path: file } }), { env, announce: () => {} });
    try {
      tokens = await obtainTokens({ issuer: before.url, resource: endpoint, scope: 'notes:read', username: 'alice', password: PASSWORD });
      revokedTokens = await obtainTokens({ issuer: before.url, resource: endpoint, scope: 'notes:read', username: 'bob', password: PASSWORD });
      const client = new Client({ name: 'before', version: '1' });
      await client.connect(new StreamableHTTPClientTransport(new URL(endpoint), { authProvider: { token: async () => tokens.access_token } }));
      await client.listTools();
      await client.close();
      await before.flushAudit();
    } finally {
      await before.close();
    }
    const db = openDatabase(file);
    // RFC 7009 §2.1: a grant revoked before the move stays revoked after it.
    const now = Date.now();
    await createSqliteStore(db).revocations.put({ kind: 'grant', id: String(decodeJwt(revokedTokens!.access_token).grant_id), revokedAt: now, expiresAt: now + 3_600_000 });
    const counts = Object.fromEntries(['oidc_models', 'as_keys', 'as_revocations', 'users', 'audit_events'].map((t) => [t, (db.prepare(`SELECT COUNT(*) AS n FROM ${t}`).get() as { n: number }).n]));
    db.close();
    assert.ok(counts.audit_events! > 0 && counts.users === 2 && counts.oidc_models! > 0 && counts.as_revocations === 1);

    const moved = await runCli(['migrate', '--from', file, '--to', TEST_POSTGRES_URL, '--schema', pg.schema]);
    assert.equal(moved.code, 0, moved.err);
    for (const [table, n] of Object.entries(counts)) assert.match(moved.out, new RegExp(`^${table}\\s+${n} →\\s+${n}$`, 'm'));
    assert.match(moved.out, /every count matches/);

    const afterMove = await startWarden(config({ postgres: { url: TEST_POSTGRES_URL, schema: pg.schema } }), { env, announce: (l) => assert.fail(`nothing is seeded again: ${l}`) });
    try {
      // The access token signed before the move verifies (the signing key moved), and the refresh token refreshes.
      const client = new Client({ name: 'after', version: '1' });
      await client.connect(new StreamableHTTPClientTransport(new URL(endpoint), { authProvider: { token: async () => tokens.access_token } }));
      assert.ok((await client.listTools()).tools.length > 0);
      await client.close();
      const refreshed = await refreshTokens({ issuer: afterMove.url, clientId: tokens.clientId, refreshToken: tokens.refresh_token!, resource: endpoint });
      assert.ok(refreshed.access_token);
      const refused = await post(endpoint, revokedTokens!.access_token, initializeMessage());
      assert.equal(refused.status, 401, 'the revocation moved too');
      await refused.text();
      // alice's password (its hash) moved too.
      await obtainTokens({ issuer: afterMove.url, resource: endpoint, scope: 'notes:read', username: 'alice', password: PASSWORD, clientId: tokens.clientId });
    } finally {
      await afterMove.close();
    }

    const { rows } = await pg.query<{ n: number }>('count_audit_after', 'SELECT COUNT(*)::int AS n FROM audit_events');
    const again = await runCli(['migrate', '--from', file, '--to', TEST_POSTGRES_URL, '--schema', pg.schema]);
    assert.equal(again.code, 1);
    assert.match(again.err, /already holds \d+ row\(s\) in oidc_models: migrate into an empty database/);
    const { rows: still } = await pg.query<{ n: number }>('count_audit_after', 'SELECT COUNT(*)::int AS n FROM audit_events');
    assert.equal(still[0]!.n, rows[0]!.n, 'a refused move changes nothing');
  });
});
