/** The SQLite backend of the user records contract (src/storage/users.ts): table `users`, owner "users". */
import type { UserRecord, UserRecords } from '../users.ts';
import { migrate, type SqliteDatabase } from './database.ts';

interface Row { username: string; password_hash: string; roles: string; created_at: number; disabled_at: number | null }
const decode = (r: Row): UserRecord => ({
  username: r.username, passwordHash: r.password_hash, roles: JSON.parse(r.roles) as string[], createdAt: r.created_at,
  ...(r.disabled_at !== null ? { disabledAt: r.disabled_at } : {}),
});

export function createSqliteUserRecords(db: SqliteDatabase): UserRecords {
  migrate(db, 'users', [
    `CREATE TABLE users (
       username TEXT PRIMARY KEY,
       password_hash TEXT NOT NULL,
       roles TEXT NOT NULL,
       created_at INTEGER NOT NULL)`,
    // `users disable`: the account stays (its name is not reusable by someone else) but can
    // neither sign in nor get tokens.
    'ALTER TABLE users ADD COLUMN disabled_at INTEGER',
  ]);
  const s = {
    insert: db.prepare('INSERT INTO users (username, password_hash, roles, created_at) VALUES (?, ?, ?, ?) ON CONFLICT (username) DO NOTHING'),
    // Read on every token the authorization server issues (roles claim): prepared once.
    get: db.prepare('SELECT * FROM users WHERE username = ?'),
    list: db.prepare('SELECT * FROM users ORDER BY username'),
    count: db.prepare('SELECT COUNT(*) AS n FROM users'),
    remove: db.prepare('DELETE FROM users WHERE username = ?'),
    update: db.prepare('UPDATE users SET roles = COALESCE(?, roles), password_hash = COALESCE(?, password_hash), disabled_at = CASE WHEN ? THEN ? ELSE disabled_at END WHERE username = ?'),
  };
  return {
    insert: async (r) => s.insert.run(r.username, r.passwordHash, JSON.stringify(r.roles), r.createdAt).changes > 0,
    get: async (username) => { const row = s.get.get(username) as Row | undefined; return row ? decode(row) : undefined; },
    list: async () => (s.list.all() as Row[]).map(decode),
    count: async () => Number((s.count.get() as { n: number }).n),
    remove: async (username) => s.remove.run(username).changes > 0,
    update: async (username, change) => s.update.run(change.roles ? JSON.stringify(change.roles) : null, change.passwordHash ?? null, change.disabledAt !== undefined ? 1 : 0, change.disabledAt ?? null, username).changes > 0,
  };
}
