/**
 * The embedded SQLite database (better-sqlite3; driver.ts says which major this Node.js loads).
 * One file holds everything the project keeps; each concern owns its tables and brings them up
 * with `migrate` under its own name, so the authorization server, the user store, audit and
 * downstream secrets evolve independently.
 */
import type BetterSqlite3 from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { sqliteDriver } from './driver.ts';

export type SqliteDatabase = BetterSqlite3.Database;

export function openDatabase(path: string): SqliteDatabase {
  // The driver first: when it does not load, the command fails without creating the folder.
  const Database = sqliteDriver();
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  const db = new Database(path);
  // WAL: readers never block the writer; a crash mid-write loses nothing already committed.
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 5000');
  db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
    owner TEXT NOT NULL, version INTEGER NOT NULL, applied_at INTEGER NOT NULL,
    PRIMARY KEY (owner, version))`);
  return db;
}

/**
 * How long `migrate` waits for another connection's write lock: longer than any step takes (the
 * audit step that moves rows into batches takes ~5 s per million rows on a 2-vCPU VM), so a
 * process opening the file while another migrates it waits for that migration, not 5 s.
 */
const MIGRATION_BUSY_TIMEOUT_MS = 15 * 60_000;

/**
 * Applies, in one transaction each, the migrations of `owner` not yet applied.
 * `steps[i]` is version i+1; never edit a released step, append a new one.
 *
 * Each step's transaction is IMMEDIATE (it takes the write lock first) and reads the applied
 * version again inside it: two processes opening the same file together (the gateway starting
 * while `mcp-warden audit` runs) apply a step once, the second one waiting for the first's commit
 * and then finding it done, instead of failing on a table that already exists.
 */
export function migrate(db: SqliteDatabase, owner: string, steps: readonly string[]): void {
  const latest = db.prepare('SELECT MAX(version) AS v FROM schema_migrations WHERE owner = ?').pluck();
  const applied = () => (latest.get(owner) as number | null) ?? 0;
  const from = applied() + 1;
  if (from > steps.length) return;
  const record = db.prepare('INSERT INTO schema_migrations (owner, version, applied_at) VALUES (?, ?, ?)');
  const step = db.transaction((version: number) => {
    if (applied() >= version) return;
    db.exec(steps[version - 1]!);
    record.run(owner, version, Date.now());
  });
  const busyTimeout = db.pragma('busy_timeout', { simple: true }) as number;
  db.pragma(`busy_timeout = ${Math.max(busyTimeout, MIGRATION_BUSY_TIMEOUT_MS)}`);
  try {
    for (let version = from; version <= steps.length; version++) step.immediate(version);
  } finally {
    db.pragma(`busy_timeout = ${busyTimeout}`);
  }
}
