/** The PostgreSQL backend of the user records contract (src/storage/users.ts): the same `users` table. */
import type { UserRecord, UserRecords } from '../users.ts';
import { migrate, type PostgresDatabase } from './database.ts';

interface Row { username: string; password_hash: string; roles: string; created_at: number; disabled_at: number | null }
const decode = (r: Row): UserRecord => ({
  username: r.username, passwordHash: r.password_hash, roles: JSON.parse(r.roles) as string[], createdAt: r.created_at,
  ...(r.disabled_at !== null ? { disabledAt: r.disabled_at } : {}),
});

export async function createPostgresUserRecords(db: PostgresDatabase): Promise<UserRecords> {
  await migrate(db, 'users', [
    `CREATE TABLE users (
       username TEXT PRIMARY KEY,
       password_hash TEXT NOT NULL,
       roles TEXT NOT NULL,
       created_at BIGINT NOT NULL)`,
    'ALTER TABLE users ADD COLUMN disabled_at BIGINT',
  ]);
  return {
    async insert(r) {
      const { rowCount } = await db.query('warden_users_insert', 'INSERT INTO users (username, password_hash, roles, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT (username) DO NOTHING',
        [r.username, r.passwordHash, JSON.stringify(r.roles), r.createdAt]);
      return (rowCount ?? 0) > 0;
    },
    async get(username) {
      const { rows } = await db.query<Row>('warden_users_get', 'SELECT * FROM users WHERE username = $1', [username]);
      return rows[0] ? decode(rows[0]) : undefined;
    },
    async list() {
      const { rows } = await db.query<Row>('warden_users_list', 'SELECT * FROM users ORDER BY username');
      return rows.map(decode);
    },
    async count() {
      // COUNT(*) is bigint, which node-postgres returns as a string.
      const { rows } = await db.query<{ n: string }>('warden_users_count', 'SELECT COUNT(*) AS n FROM users');
      return Number(rows[0]!.n);
    },
    async remove(username) {
      const { rowCount } = await db.query('warden_users_remove', 'DELETE FROM users WHERE username = $1', [username]);
      return (rowCount ?? 0) > 0;
    },
    async update(username, change) {
      const { rowCount } = await db.query('warden_users_update',
        'UPDATE users SET roles = COALESCE($1, roles), password_hash = COALESCE($2, password_hash), disabled_at = CASE WHEN $3 THEN $4::bigint ELSE disabled_at END WHERE username = $5',
        [change.roles ? JSON.stringify(change.roles) : null, change.passwordHash ?? null, change.disabledAt !== undefined, change.disabledAt ?? null, username]);
      return (rowCount ?? 0) > 0;
    },
  };
}
