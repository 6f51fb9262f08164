/**
 * The SQLite backend of the downstream storage contracts (src/storage/downstream-store.ts), on
 * the tables owned by "downstream" (src/downstream/migrations.ts).
 */
import { migrateDownstream } from '../../downstream/migrations.ts';
import type { DownstreamStorage, SealedSecret, StoredSecretInfo } from '../downstream-store.ts';
import type { SqliteDatabase } from './database.ts';

export function createSqliteDownstreamStorage(db: SqliteDatabase): DownstreamStorage {
  migrateDownstream(db);
  const s = {
    getSetting: db.prepare('SELECT value FROM downstream_settings WHERE name = ?'),
    putSetting: db.prepare('INSERT INTO downstream_settings (name, value) VALUES (?, ?)'),
    getKcv: db.prepare('SELECT kcv FROM downstream_secret_keys WHERE server = ?'),
    putKcv: db.prepare('INSERT INTO downstream_secret_keys (server, kcv, created_at) VALUES (?, ?, ?) ON CONFLICT (server) DO NOTHING'),
    get: db.prepare('SELECT nonce, ciphertext, tag FROM downstream_secrets WHERE server = ? AND user = ?'),
    put: db.prepare(`INSERT INTO downstream_secrets (server, user, nonce, ciphertext, tag, updated_at) VALUES (?, ?, ?, ?, ?, ?)
      ON CONFLICT (server, user) DO UPDATE SET nonce = excluded.nonce, ciphertext = excluded.ciphertext, tag = excluded.tag, updated_at = excluded.updated_at`),
    remove: db.prepare('DELETE FROM downstream_secrets WHERE server = ? AND user = ?'),
    listAll: db.prepare('SELECT server, user, updated_at FROM downstream_secrets ORDER BY server, user'),
    listServer: db.prepare('SELECT server, user, updated_at FROM downstream_secrets WHERE server = ? ORDER BY user'),
  };
  // IMMEDIATE: the write lock is taken before the read, so two processes on one file cannot both insert.
  const getOrCreate = db.transaction((name: string, make: () => string): string => {
    const row = s.getSetting.get(name) as { value: string } | undefined;
    if (row) return row.value;
    const value = make();
    s.putSetting.run(name, value);
    return value;
  });
  const keyCheckValue = db.transaction((server: string, candidate: Buffer, at: number): Buffer => {
    s.putKcv.run(server, candidate, at);
    return (s.getKcv.get(server) as { kcv: Buffer }).kcv;
  });
  return {
    settings: {
      getOrCreate: async (name, make) => getOrCreate.immediate(name, make),
    },
    secrets: {
      keyCheckValue: async (server, candidate, at) => keyCheckValue.immediate(server, candidate, at),
      get: async (server, user) => s.get.get(server, user) as SealedSecret | undefined,
      put: async (server, user, sealed, at) => { s.put.run(server, user, sealed.nonce, sealed.ciphertext, sealed.tag, at); },
      remove: async (server, user) => s.remove.run(server, user).changes > 0,
      list: async (server) => ((server === undefined ? s.listAll.all() : s.listServer.all(server)) as Array<{ server: string; user: string; updated_at: number }>)
        .map((r): StoredSecretInfo => ({ server: r.server, user: r.user, updatedAt: new Date(r.updated_at) })),
    },
  };
}
