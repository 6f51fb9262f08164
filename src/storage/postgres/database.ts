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
  /** Longest wait for the answer to one statement, ms (default `QUERY_TIMEOUT_MS`); see `openPostgres`. */
  queryTimeoutMs?: number;
  /** Longest wait for a connection, a new one or a free one of the pool, ms (default `CONNECT_TIMEOUT_MS`). */
  connectTimeoutMs?: number;
}

/** Default longest wait for one statement's answer: far above any statement of ours, far below a TCP timeout. */
export const QUERY_TIMEOUT_MS = 15_000;
/** Default longest wait for a connection. */
export const CONNECT_TIMEOUT_MS = 5_000;
/** Migrations may wait for another instance's (the advisory lock) and rewrite large tables. */
export const MIGRATION_TIMEOUT_MS = 15 * 60_000;

export interface PostgresDatabase {
  /** One statement. `name` makes it a prepared statement, parsed once per pooled connection. */
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(name: string, text: string, values?: unknown[]): Promise<pg.QueryResult<R>>;
  /**
   * Runs `fn` in one transaction on one connection: all of it commits, or none of it. `timeoutMs`
   * replaces the pool's limit for each of its statements.
   */
  transaction<T>(fn: (tx: PostgresTransaction) => Promise<T>, options?: { timeoutMs?: number }): Promise<T>;
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
  // A PostgreSQL that stops answering (a frozen server, a failover whose old address now drops
  // packets) leaves TCP connections open and silent: without limits, each statement would wait
  // for ever, the pool would fill with them, and the instance would not recover even once the
  // database answers again on new connections. So every statement and every wait for a
  // connection is bounded; a statement that times out takes its connection with it (pg-pool
  // discards a client released with an error, and pg.Pool.query releases it so), and TCP
  // keep-alive notices a dead peer on an idle connection.
  const pool = new pg.Pool({
    connectionString: options.url,
    max: options.maxConnections ?? 10,
    query_timeout: options.queryTimeoutMs ?? QUERY_TIMEOUT_MS,
    connectionTimeoutMillis: options.connectTimeoutMs ?? CONNECT_TIMEOUT_MS,
    keepAlive: true,
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
  const query = <R extends pg.QueryResultRow>(client: pg.Pool | pg.PoolClient, name: string, text: string, values?: unknown[], timeoutMs?: number) =>
    client.query<R>(timed({ name, text, values }, timeoutMs));
  return {
    pool,
    query: (name, text, values) => query(pool, name, text, values),
    async transaction(fn, options = {}) {
      const timeoutMs = options.timeoutMs;
      const run = (text: string) => client.query(timed({ text }, timeoutMs));
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
        await run('BEGIN');
        const result = await fn({
          query: (name, text, values) => query(client, name, text, values, timeoutMs),
          exec: async (sql) => { await run(sql); },
        });
        await run('COMMIT');
        return result;
      } catch (err) {
        // A statement PostgreSQL refused (an SQLSTATE) leaves a working connection to roll back
        // on. Anything else (a timeout, a lost connection) leaves one whose state is unknown,
        // possibly still waiting for an answer: it is discarded, and the server rolls the
        // transaction back when the connection ends.
        if (isStatementError(err)) await run('ROLLBACK').catch(() => {});
        else lost ??= err instanceof Error ? err : new Error(String(err));
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
 * `config` with a limit of its own for this statement (pg reads `query_timeout` from a query's
 * config before the pool's: lib/client.js `query`; @types/pg does not declare it).
 */
function timed(config: pg.QueryConfig, timeoutMs: number | undefined): pg.QueryConfig {
  return timeoutMs === undefined ? config : ({ ...config, query_timeout: timeoutMs } as pg.QueryConfig);
}

/** An error PostgreSQL answered with (an SQLSTATE, PostgreSQL Appendix A), not one of the connection. */
function isStatementError(err: unknown): boolean {
  return typeof (err as { code?: unknown } | null)?.code === 'string' && /^[0-9A-Z]{5}$/.test((err as { code: string }).code);
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
  }, { timeoutMs: MIGRATION_TIMEOUT_MS });
}
