import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDatabase } from '../../src/storage/sqlite/database.ts';
import { createSqliteStore } from '../../src/storage/sqlite/store.ts';
import { createMemoryStore } from '../../src/storage/memory/store.ts';
import { createPostgresStore } from '../../src/storage/postgres/store.ts';
import { openPostgres } from '../../src/storage/postgres/database.ts';
import { openTestPostgres, postgresUnavailable, TEST_POSTGRES_URL } from '../helpers/postgres.ts';
import { runStoreContract } from './store-contract.ts';

runStoreContract('sqlite (file)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'warden-store-'));
  const db = openDatabase(join(dir, 'w.db'));
  const clock = { now: 1_800_000_000_000 };
  return { store: createSqliteStore(db, () => clock.now), clock, close: () => { db.close(); rmSync(dir, { recursive: true, force: true }); } };
});

runStoreContract('sqlite (:memory:)', () => {
  const db = openDatabase(':memory:');
  const clock = { now: 1_800_000_000_000 };
  return { store: createSqliteStore(db, () => clock.now), clock, close: () => { db.close(); } };
});

runStoreContract('memory', () => {
  const clock = { now: 1_800_000_000_000 };
  return { store: createMemoryStore(() => clock.now), clock, close: () => {} };
});

runStoreContract('postgres', async () => {
  const db = await openTestPostgres();
  const clock = { now: 1_800_000_000_000 };
  return { store: await createPostgresStore(db, () => clock.now), clock, close: () => db.drop() };
}, await postgresUnavailable());

describe('SQLite store durability', () => {
  it('a write the database refuses (e.g. disk full) leaves every stored row intact', async () => {
    const db = openDatabase(':memory:');
    try {
      const store = createSqliteStore(db);
      await store.models.upsert('Client', 'keep', { client_id: 'keep', v: 1 }, undefined);
      await store.models.upsert('Client', 'boom', { client_id: 'boom', v: 1 }, undefined);
      db.exec(`CREATE TRIGGER fail_write BEFORE UPDATE ON oidc_models WHEN NEW.id = 'boom' BEGIN SELECT RAISE(ABORT, 'simulated disk full'); END`);
      await assert.rejects(store.models.upsert('Client', 'boom', { client_id: 'boom', v: 2 }, undefined), /simulated disk full/);
      assert.deepEqual(await store.models.find('Client', 'boom'), { client_id: 'boom', v: 1 });
      assert.deepEqual(await store.models.find('Client', 'keep'), { client_id: 'keep', v: 1 });
    } finally { db.close(); }
  });

  it('RFC 7009 §2.1: revocations kept as oidc_models rows by an older version move to as_revocations when it upgrades', async () => {
    const db = openDatabase(':memory:');
    try {
      createSqliteStore(db);
      // The database as the previous version left it: schema version 2, revocations in oidc_models.
      db.exec(`DROP TABLE as_revocations; DELETE FROM schema_migrations WHERE owner = 'authorization-server' AND version = 3;
        INSERT INTO oidc_models (model, id, payload, expires_at) VALUES
          ('RevokedGrant', 'g1', '{"revokedAt":1800000000000}', 1800000900000),
          ('RevokedSubject', 'carol', '{"revokedAt":1800000000500}', 1800000900000),
          ('Client', 'c1', '{"client_id":"c1"}', NULL)`);
      const store = createSqliteStore(db, () => 1_800_000_001_000);
      const { records } = await store.revocations.changedSince(0);
      assert.deepEqual(records, [
        { kind: 'grant', id: 'g1', revokedAt: 1_800_000_000_000, expiresAt: 1_800_000_900_000 },
        { kind: 'subject', id: 'carol', revokedAt: 1_800_000_000_500, expiresAt: 1_800_000_900_000 },
      ]);
      assert.deepEqual(await store.models.list('RevokedGrant'), [], 'moved, not copied');
      assert.deepEqual((await store.models.list('Client')).map((c) => c.id), ['c1'], 'other models untouched');
    } finally { db.close(); }
  });

  it('data survives closing and reopening the file (migrations run once)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'warden-store-'));
    try {
      const path = join(dir, 'w.db');
      let db = openDatabase(path);
      await createSqliteStore(db).models.upsert('Grant', 'g', { jti: 'g' }, undefined);
      db.close();
      db = openDatabase(path);
      assert.deepEqual(await createSqliteStore(db).models.find('Grant', 'g'), { jti: 'g' });
      db.close();
    } finally { rmSync(dir, { recursive: true, force: true }); }
  });
});

describe('PostgreSQL store shared by several instances', { skip: await postgresUnavailable() }, () => {
  it('two instances migrating at once apply each step once (advisory lock), and both then serve the same rows', async () => {
    const first = await openTestPostgres();
    const second = await openPostgres({ url: TEST_POSTGRES_URL, schema: first.schema, maxConnections: 2 });
    try {
      const [a, b] = await Promise.all([createPostgresStore(first), createPostgresStore(second)]);
      const { rows } = await first.query<{ n: number; versions: number; latest: number }>('count_migrations',
        "SELECT COUNT(*)::int AS n, COUNT(DISTINCT version)::int AS versions, MAX(version)::int AS latest FROM schema_migrations WHERE owner = 'authorization-server'");
      assert.equal(rows[0]!.n, rows[0]!.versions, 'no step applied twice');
      assert.equal(rows[0]!.n, rows[0]!.latest, 'every step applied');
      await a.models.upsert('Client', 'c1', { client_id: 'c1' }, undefined);
      assert.deepEqual(await b.models.find('Client', 'c1'), { client_id: 'c1' }, 'a client registered on one instance is found on the other');
    } finally {
      await second.close();
      await first.drop();
    }
  });

  it('OAuth 2.1 §4.1.3 / RFC 9700 §4.14.2: when two instances consume one code at once, the first consumption time stands', async () => {
    const first = await openTestPostgres();
    const second = await openPostgres({ url: TEST_POSTGRES_URL, schema: first.schema, maxConnections: 2 });
    try {
      const a = await createPostgresStore(first);
      const b = await createPostgresStore(second);
      await a.models.upsert('AuthorizationCode', 'code', { grantId: 'g' }, undefined);
      const t = 1_800_000_000_000;
      await Promise.all([a.models.consume('AuthorizationCode', 'code', t), b.models.consume('AuthorizationCode', 'code', t + 5000)]);
      const consumed = (await b.models.find('AuthorizationCode', 'code'))!.consumed as number;
      assert.ok(consumed === Math.floor(t / 1000) || consumed === Math.floor((t + 5000) / 1000));
      await a.models.consume('AuthorizationCode', 'code', t + 60_000);
      assert.equal((await a.models.find('AuthorizationCode', 'code'))!.consumed, consumed, 'a later consumption never moves the first');
    } finally {
      await second.close();
      await first.drop();
    }
  });

  it('RFC 7009 §2.1: revocations kept as oidc_models rows by an older version move to as_revocations when it upgrades', async () => {
    const db = await openTestPostgres();
    try {
      await createPostgresStore(db);
      // The database as the previous version left it: schema version 1, revocations in oidc_models.
      await db.query('downgrade_table', 'DROP TABLE as_revocations');
      await db.query('downgrade_seq', 'DROP SEQUENCE as_revocations_seq');
      await db.query('downgrade_version', "DELETE FROM schema_migrations WHERE owner = 'authorization-server' AND version = 2");
      await db.query('old_rows', `INSERT INTO oidc_models (model, id, payload, expires_at) VALUES
        ('RevokedAccessToken', 'j1', '{"revokedAt":1800000000000}', 1800000900000),
        ('RevokedClient', 'agent', '{"revokedAt":1800000000500}', 1800000900000)`);
      const store = await createPostgresStore(db, () => 1_800_000_001_000);
      const { records } = await store.revocations.changedSince(0);
      assert.deepEqual(records.sort((a, b) => a.id.localeCompare(b.id)), [
        { kind: 'client', id: 'agent', revokedAt: 1_800_000_000_500, expiresAt: 1_800_000_900_000 },
        { kind: 'token', id: 'j1', revokedAt: 1_800_000_000_000, expiresAt: 1_800_000_900_000 },
      ]);
      assert.deepEqual(await store.models.list('RevokedAccessToken'), [], 'moved, not copied');
      // A put after the upgrade is listed after the moved rows.
      const cursor = (await store.revocations.changedSince(0)).cursor;
      await store.revocations.put({ kind: 'grant', id: 'g-new', revokedAt: 1_800_000_001_000, expiresAt: 1_800_000_900_000 });
      assert.deepEqual((await store.revocations.changedSince(cursor)).records.map((r) => r.id), ['g-new']);
    } finally {
      await db.drop();
    }
  });

  it('a write the database refuses leaves the stored row intact, and the data outlives the pool', async () => {
    const db = await openTestPostgres();
    try {
      const store = await createPostgresStore(db);
      await store.models.upsert('Client', 'boom', { client_id: 'boom', v: 1 }, undefined);
      await db.query('fail_trigger_fn', `CREATE FUNCTION ${db.schema}.fail_boom() RETURNS trigger AS $$ BEGIN IF NEW.id = 'boom' THEN RAISE EXCEPTION 'simulated disk full'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql`);
      await db.query('fail_trigger', `CREATE TRIGGER fail_boom BEFORE UPDATE ON ${db.schema}.oidc_models FOR EACH ROW EXECUTE FUNCTION ${db.schema}.fail_boom()`);
      await assert.rejects(store.models.upsert('Client', 'boom', { client_id: 'boom', v: 2 }, undefined), /simulated disk full/);
      assert.deepEqual(await store.models.find('Client', 'boom'), { client_id: 'boom', v: 1 });
      const again = await openPostgres({ url: TEST_POSTGRES_URL, schema: db.schema, maxConnections: 1 });
      try {
        assert.deepEqual(await (await createPostgresStore(again)).models.find('Client', 'boom'), { client_id: 'boom', v: 1 });
      } finally { await again.close(); }
    } finally {
      await db.drop();
    }
  });

  it('RFC 7009 §2.1: revocations put by two instances at once are all seen, in order, by a third following the change cursor (none skipped)', async () => {
    const first = await openTestPostgres();
    const second = await openPostgres({ url: TEST_POSTGRES_URL, schema: first.schema, maxConnections: 4 });
    const third = await openPostgres({ url: TEST_POSTGRES_URL, schema: first.schema, maxConnections: 1 });
    try {
      const [a, b, reader] = [await createPostgresStore(first), await createPostgresStore(second), await createPostgresStore(third)];
      const t = Date.now();
      const seen = new Set<string>();
      let cursor = 0;
      let writing = true;
      const follow = (async () => {
        while (writing) {
          const changed = await reader.revocations.changedSince(cursor);
          for (const r of changed.records) seen.add(r.id);
          cursor = changed.cursor;
        }
      })();
      await Promise.all(Array.from({ length: 60 }, (_, i) => (i % 2 ? a : b).revocations.put({ kind: 'grant', id: `g${i}`, revokedAt: t, expiresAt: t + 60_000 })));
      writing = false;
      await follow;
      // What the follower read while the writes were racing, plus one last read from its cursor:
      // a put that committed out of order would be missing here.
      for (const r of (await reader.revocations.changedSince(cursor)).records) seen.add(r.id);
      assert.equal(seen.size, 60);
    } finally {
      await third.close();
      await second.close();
      await first.drop();
    }
  });
});
