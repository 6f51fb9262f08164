import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDatabase } from '../../src/storage/sqlite/database.ts';
import { createSqliteStore } from '../../src/storage/sqlite/store.ts';
import { createMemoryStore } from '../../src/storage/memory/store.ts';
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
