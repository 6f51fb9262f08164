/**
 * Opens every durable store of a deployment on the configured backend: the embedded SQLite file
 * (`storage.sqlite.path`, the default of `npm start`) or PostgreSQL (`storage.postgres.url`, for
 * several instances on one database). The rest of mcp-warden sees only the contracts
 * (docs/storage.md): the authorization server's Store, user records, downstream settings and
 * secrets, and the audit backend.
 */
import type { Config } from '../config/schema.ts';
import type { DownstreamStorage } from './downstream-store.ts';
import type { Store } from './store.ts';
import type { UserRecords } from './users.ts';
import { openDatabase, type SqliteDatabase } from './sqlite/database.ts';
import { createSqliteStore } from './sqlite/store.ts';
import { createSqliteUserRecords } from './sqlite/users.ts';
import { createSqliteDownstreamStorage } from './sqlite/downstream-store.ts';
import type { PostgresDatabase } from './postgres/database.ts';

/** Where audit events go; the audit module picks its sink, query and retention by kind. */
export type AuditBackend = { kind: 'sqlite'; db: SqliteDatabase } | { kind: 'postgres'; db: PostgresDatabase };

export interface Storage {
  readonly kind: 'sqlite' | 'postgres';
  /** A human-readable name of where the data lives (a file path, or the PostgreSQL URL without credentials). */
  readonly location: string;
  readonly as: Store;
  readonly users: UserRecords;
  readonly downstream: DownstreamStorage;
  readonly audit: AuditBackend;
  close(): Promise<void>;
}

/** The PostgreSQL URL with any password removed, for messages and logs. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(an unparseable PostgreSQL URL)';
  }
}

/** Opens (and migrates) every store on the configured backend. `now`: milliseconds, for storage expiry. */
export async function openStorage(config: Config, options: { now?: () => number } = {}): Promise<Storage> {
  const pgConfig = config.storage.postgres;
  if (pgConfig) {
    // Loaded on demand: an embedded (SQLite) deployment never loads the PostgreSQL driver.
    const [{ openPostgres }, { createPostgresStore }, { createPostgresUserRecords }, { createPostgresDownstreamStorage }, { migrateAuditPostgres }] = await Promise.all([
      import('./postgres/database.ts'), import('./postgres/store.ts'), import('./postgres/users.ts'), import('./postgres/downstream-store.ts'), import('../audit/postgres-sink.ts'),
    ]);
    const db = await openPostgres({ url: pgConfig.url, ...(pgConfig.schema ? { schema: pgConfig.schema } : {}), maxConnections: pgConfig.maxConnections, queryTimeoutMs: pgConfig.queryTimeoutMs, connectTimeoutMs: pgConfig.connectTimeoutMs });
    try {
      const [as, users, downstream] = await Promise.all([createPostgresStore(db, options.now), createPostgresUserRecords(db), createPostgresDownstreamStorage(db)]);
      await migrateAuditPostgres(db);
      return { kind: 'postgres', location: redactUrl(pgConfig.url), as, users, downstream, audit: { kind: 'postgres', db }, close: () => db.close() };
    } catch (err) {
      await db.close().catch(() => {});
      throw err;
    }
  }
  const path = config.storage.sqlite.path;
  const db = openDatabase(path);
  return {
    kind: 'sqlite',
    location: path,
    as: createSqliteStore(db, options.now),
    users: createSqliteUserRecords(db),
    downstream: createSqliteDownstreamStorage(db),
    audit: { kind: 'sqlite', db },
    close: async () => { db.close(); },
  };
}
