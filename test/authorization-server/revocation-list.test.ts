/**
 * The revocation list behind RFC 7009 §2.1 "also invalidate the access tokens of the same grant":
 * kept in the Store (a restart keeps it), remembered as long as an access token can live, and
 * carried to other instances by a bus.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDatabase } from '../../src/storage/sqlite/database.ts';
import { createSqliteStore } from '../../src/storage/sqlite/store.ts';
import { createMemoryStore } from '../../src/storage/memory/store.ts';
import { createInProcessRevocationBus, createRevocationList, revocationHorizonMs } from '../../src/authorization-server/revocation.ts';

const HORIZON = revocationHorizonMs(900);

describe('revocation list', () => {
  it('RFC 7009 §2.1: a revoked grant stays revoked across a restart (a new list on the same database), until the longest access token has expired', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'warden-revlist-'));
    const clock = { now: 1_800_000_000_000 };
    try {
      const db1 = openDatabase(join(dir, 'w.db'));
      const first = createRevocationList({ models: createSqliteStore(db1, () => clock.now).models, now: () => clock.now, horizonMs: HORIZON });
      await first.revokeGrant('grant-1');
      first.close();
      db1.close();

      const db2 = openDatabase(join(dir, 'w.db'));
      const second = createRevocationList({ models: createSqliteStore(db2, () => clock.now).models, now: () => clock.now, horizonMs: HORIZON });
      assert.equal(await second.isRevoked({ jti: 'a', grant_id: 'grant-1', iat: clock.now / 1000 }), true);
      assert.equal(await second.isRevoked({ jti: 'b', grant_id: 'grant-2', iat: clock.now / 1000 }), false);
      clock.now += HORIZON + 1;
      assert.equal(await second.isRevoked({ grant_id: 'grant-1' }), false, 'forgotten once no token of the grant can be valid');
      second.close();
      db2.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a removed user: tokens issued up to the removal are refused, those of a user added again later are not', async () => {
    const clock = { now: 1_800_000_000_500 };
    const list = createRevocationList({ models: createMemoryStore(() => clock.now).models, now: () => clock.now, horizonMs: HORIZON });
    const before = Math.floor(clock.now / 1000);
    await list.revokeSubject('carol');
    assert.equal(await list.isRevoked({ sub: 'carol', client_id: 'c1', iat: before - 60 }), true);
    assert.equal(await list.isRevoked({ sub: 'carol', client_id: 'c1', iat: before }), true, 'issued in the same second: refused');
    assert.equal(await list.isRevoked({ sub: 'carol', client_id: 'c1', iat: before + 1 }), false, 'issued after the removal');
    assert.equal(await list.isRevoked({ sub: 'dave', client_id: 'c1', iat: before }), false);
    // A client-credentials token has sub = client_id: a user of the same name does not revoke it.
    assert.equal(await list.isRevoked({ sub: 'carol', client_id: 'carol', iat: before }), false);
  });

  it('a removed client: its client-credentials and user tokens issued up to the removal are refused', async () => {
    const clock = { now: 1_800_000_000_000 };
    const list = createRevocationList({ models: createMemoryStore(() => clock.now).models, now: () => clock.now, horizonMs: HORIZON });
    const iat = Math.floor(clock.now / 1000);
    await list.revokeClient('agent');
    assert.equal(await list.isRevoked({ sub: 'agent', client_id: 'agent', iat }), true);
    assert.equal(await list.isRevoked({ sub: 'alice', client_id: 'agent', iat }), true);
    assert.equal(await list.isRevoked({ sub: 'alice', client_id: 'other', iat }), false);
  });

  it('RFC 7009 §2.1: one access token by jti, remembered until it expires', async () => {
    const clock = { now: 1_800_000_000_000 };
    const list = createRevocationList({ models: createMemoryStore(() => clock.now).models, now: () => clock.now, horizonMs: HORIZON });
    await list.revokeAccessToken('jti-1', clock.now + 60_000);
    assert.equal(await list.isRevoked({ jti: 'jti-1' }), true);
    assert.equal(await list.isRevoked({ jti: 'jti-2' }), false);
    clock.now += 60_000 + 60_001;
    assert.equal(await list.isRevoked({ jti: 'jti-1' }), false);
  });

  it('the bus carries a revocation to an instance that does not share the database', async () => {
    const clock = { now: 1_800_000_000_000 };
    const bus = createInProcessRevocationBus();
    const a = createRevocationList({ models: createMemoryStore(() => clock.now).models, now: () => clock.now, horizonMs: HORIZON, bus });
    const b = createRevocationList({ models: createMemoryStore(() => clock.now).models, now: () => clock.now, horizonMs: HORIZON, bus });
    await a.revokeGrant('g');
    assert.equal(await b.isRevoked({ grant_id: 'g' }), true);
    clock.now += HORIZON + 1;
    assert.equal(await b.isRevoked({ grant_id: 'g' }), false);
    a.close();
    b.close();
  });
});
