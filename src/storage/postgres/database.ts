/**
 * PostgreSQL for the durable state of a deployment with several instances (`storage.postgres.url`).
 * One pool per process; every statement is a named prepared statement (parsed once per
 * connection); each concern owns its tables and brings them up with `migrate` under its own
 * name, exactly like the SQLite backend (src/storage/sqlite/database.ts), so both evolve in step.
 */
import pg from 'pg';

export interface PostgresOptions {
  /** A libpq connection URI: `postgres://user@host:5432/db`. */
  url: string;
  /** Pool size per instance (pg's default is 10). */
  maxConnections?: number;
  /** A schema to keep the tables in (created when missing); default: the connection's search_path. */
  schema?: string;
}

export interface PostgresDatabase {
  /** One statement. `name` makes it a prepared statement, parsed once per pooled connection. */
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(name: string, text: string, values?: unknown[]): Promise<pg.QueryResult<R>>;
  /** Runs `fn` in one transaction on one connection: all of it commits, or none of it. */
  transaction<T>(fn: (tx: PostgresTransaction) => Promise<T>): Promise<T>;
  close(): Promise<void>;
  readonly pool: pg.Pool;
}

export interface PostgresTransaction {
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(name: string, text: string, values?: unknown[]): Promise<pg.QueryResult<R>>;
  /** Trusted DDL of our own migrations: may hold several statements, so it is not prepared. */
  exec(sql: string): Promise<void>;
}

const IDENTIFIER = /^[a-z_][a-z0-9_]{0,62}$/;

/** BIGINT columns come back as strings (they may exceed 2^53); our times are ms and fit. */
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => Number(v));

export async function openPostgres(options: PostgresOptions): Promise<PostgresDatabase> {
  if (options.schema !== undefined && !IDENTIFIER.test(options.schema)) {
    throw new Error(`storage.postgres.schema "${options.schema}" is not a plain lower-case SQL identifier`);
  }
  const pool = new pg.Pool({
    connectionString: options.url,
    max: options.maxConnections ?? 10,
    // The search_path is set per connection at start-up, so every pooled connection sees our schema.
    ...(options.schema ? { options: `-c search_path=${options.schema}` } : {}),
  });
  // An idle connection that dies (database restart) emits 'error' on the pool: without a listener
  // that would crash the process. The next query opens a fresh connection.
  pool.on('error', () => {});
  if (options.schema) await pool.query(`CREATE SCHEMA IF NOT EXISTS ${options.schema}`);
  await pool.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
    owner TEXT NOT NULL, version INTEGER NOT NULL, applied_at BIGINT NOT NULL,
    PRIMARY KEY (owner, version))`).catch((err: { code?: string }) => {
    // Two instances starting at once may race on CREATE TABLE IF NOT EXISTS (a unique violation
    // on the catalog): the other one created it, which is all we wanted.
    if (err.code !== '23505' && err.code !== '42P07') throw err;
  });
  const query = <R extends pg.QueryResultRow>(client: pg.Pool | pg.PoolClient, name: string, text: string, values?: unknown[]) =>
    client.query<R>({ name, text, values });
  return {
    pool,
    query: (name, text, values) => query(pool, name, text, values),
    async transaction(fn) {
      const client = await pool.connect();
      // pg-pool takes its own 'error' listener off a client while it is checked out, and pg emits
      // 'error' on a client whose connection drops (database restart, network cut) even mid-query:
      // without a listener that is an uncaught exception that ends the process. The statement in
      // flight is rejected anyway; the broken client is handed back with the error, so the pool
      // discards it instead of lending it out again.
      let lost: Error | undefined;
      const onError = (err: Error) => { lost = err; };
      client.on('error', onError);
      try {
        await client.query('BEGIN');
        const result = await fn({
          query: (name, text, values) => query(client, name, text, values),
          exec: async (sql) => { await client.query(sql); },
        });
        await client.query('COMMIT');
        return result;
      } catch (err) {
        await client.query('ROLLBACK').catch(() => {});
        throw err;
      } finally {
        client.off('error', onError);
        client.release(lost);
      }
    },
    close: () => pool.end(),
  };
}

/**
 * Applies, in one transaction each, the migrations of `owner` not yet applied. A transaction-level
 * advisory lock per owner serialises instances that start together, so each step runs once.
 * `steps[i]` is version i+1; never edit a released step, append a new one.
 */
export async function migrate(db: PostgresDatabase, owner: string, steps: readonly string[]): Promise<void> {
  await db.transaction(async (tx) => {
    await tx.query('warden_migrate_lock', 'SELECT pg_advisory_xact_lock(hashtext($1))', [`mcp-warden:${owner}`]);
    const { rows } = await tx.query<{ v: number | null }>('warden_migrate_current', 'SELECT MAX(version) AS v FROM schema_migrations WHERE owner = $1', [owner]);
    for (let version = (rows[0]?.v ?? 0) + 1; version <= steps.length; version++) {
      await tx.exec(steps[version - 1]!);
      await tx.query('warden_migrate_record', 'INSERT INTO schema_migrations (owner, version, applied_at) VALUES ($1, $2, $3)', [owner, version, Date.now()]);
    }
  });
}
