import { createSqliteUserRecords } from '../../src/storage/sqlite/users.ts';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startWarden, type Warden } from '../../src/app.ts';
import { buildDemoConfig } from '../../src/config/demo.ts';
import type { Config } from '../../src/config/schema.ts';
import { openDatabase } from '../../src/storage/sqlite/database.ts';
import { UserStore } from '../../src/users/user-store.ts';
import { discover, obtainTokens } from '../helpers/oauth.ts';
import { initializeMessage, post } from './fixtures/raw.ts';

const PASSWORD = 'revocation test password';

describe('embedded AS: revoked access tokens at the gateway', () => {
  let warden: Warden;
  let dir: string;
  let endpoint: string;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'warden-revoke-'));
    const env = { PATH: process.env.PATH, HOME: process.env.HOME, WARDEN_DB: join(dir, 'warden.db') };
    const db = openDatabase(env.WARDEN_DB);
    await new UserStore(createSqliteUserRecords(db)).add('alice', PASSWORD, ['admin']);
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
});
