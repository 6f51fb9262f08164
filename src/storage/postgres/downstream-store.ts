/**
 * The PostgreSQL backend of the downstream storage contracts (src/storage/downstream-store.ts):
 * the same tables as on SQLite, sealed values as BYTEA. "First writer wins" is one
 * `INSERT … ON CONFLICT DO NOTHING` followed by a read, so instances racing at start-up agree.
 */
import type { DownstreamStorage, SealedSecret } from '../downstream-store.ts';
import { migrate, type PostgresDatabase } from './database.ts';

const MIGRATIONS = [
  `CREATE TABLE downstream_secret_keys (
     server TEXT PRIMARY KEY,
     kcv BYTEA NOT NULL,
     created_at BIGINT NOT NULL);
   CREATE TABLE downstream_secrets (
     server TEXT NOT NULL,
     "user" TEXT NOT NULL,
     nonce BYTEA NOT NULL,
     ciphertext BYTEA NOT NULL,
     tag BYTEA NOT NULL,
     updated_at BIGINT NOT NULL,
     PRIMARY KEY (server, "user"));
   CREATE TABLE downstream_settings (
     name TEXT PRIMARY KEY,
     value TEXT NOT NULL);`,
];

export async function createPostgresDownstreamStorage(db: PostgresDatabase): Promise<DownstreamStorage> {
  await migrate(db, 'downstream', MIGRATIONS);
  return {
    settings: {
      async getOrCreate(name, make) {
        await db.query('warden_settings_insert', 'INSERT INTO downstream_settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING', [name, make()]);
        const { rows } = await db.query<{ value: string }>('warden_settings_get', 'SELECT value FROM downstream_settings WHERE name = $1', [name]);
        return rows[0]!.value;
      },
    },
    secrets: {
      async keyCheckValue(server, candidate, at) {
        await db.query('warden_kcv_insert', 'INSERT INTO downstream_secret_keys (server, kcv, created_at) VALUES ($1, $2, $3) ON CONFLICT (server) DO NOTHING', [server, candidate, at]);
        const { rows } = await db.query<{ kcv: Buffer }>('warden_kcv_get', 'SELECT kcv FROM downstream_secret_keys WHERE server = $1', [server]);
        return rows[0]!.kcv;
      },
      async get(server, user) {
        const { rows } = await db.query<SealedSecret>('warden_secret_get', 'SELECT nonce, ciphertext, tag FROM downstream_secrets WHERE server = $1 AND "user" = $2', [server, user]);
        return rows[0];
      },
      async put(server, user, sealed, at) {
        await db.query('warden_secret_put', `INSERT INTO downstream_secrets (server, "user", nonce, ciphertext, tag, updated_at) VALUES ($1, $2, $3, $4, $5, $6)
          ON CONFLICT (server, "user") DO UPDATE SET nonce = excluded.nonce, ciphertext = excluded.ciphertext, tag = excluded.tag, updated_at = excluded.updated_at`,
        [server, user, sealed.nonce, sealed.ciphertext, sealed.tag, at]);
      },
      async remove(server, user) {
        const { rowCount } = await db.query('warden_secret_remove', 'DELETE FROM downstream_secrets WHERE server = $1 AND "user" = $2', [server, user]);
        return (rowCount ?? 0) > 0;
      },
      async list(server) {
        const { rows } = await db.query<{ server: string; user: string; updated_at: number }>('warden_secret_list',
          'SELECT server, "user", updated_at FROM downstream_secrets WHERE ($1::text IS NULL OR server = $1) ORDER BY server, "user"', [server ?? null]);
        return rows.map((r) => ({ server: r.server, user: r.user, updatedAt: new Date(r.updated_at) }));
      },
    },
  };
}
