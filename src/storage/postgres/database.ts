/**
 * PostgreSQL for the durable state of a deployment with several instances (`storage.postgres.url`).
 * One pool per process; every statement is a named prepared statement (parsed once per
 * connection); each concern owns its tables and brings them up with `migrate` under its own
 * name, exactly like the SQLite backend (src/storage/sqlite/database.ts), so both evolve in step.
 */
import pg from 'pg';
import { poolSockets, type PoolSockets } from './sockets.ts';

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
  /** How long a connection stays idle in the pool before it is ended, ms (default pg-pool's, 10 s; tests shorten it). */
  idleTimeoutMs?: number;
  /** How long a server has to close a connection we ended, ms (default `CLOSE_GRACE_MS`, sockets.ts; tests lengthen it). */
  closeGraceMs?: number;
}

/** Default longest wait for one statement's answer: far above any statement of ours, far below a TCP timeout. */
export const QUERY_TIMEOUT_MS = 15_000;
/** Default longest wait for a connection. */
export const CONNECT_TIMEOUT_MS = 5_000;
/** Migrations may wait for another instance's (the advisory lock) and rewrite large tables. */
export const MIGRATION_TIMEOUT_MS = 15 * 60_000;

export interface PostgresDatabase {
  /**
   * One statement. `name` makes it a prepared statement, parsed once per pooled connection.
   * `timeoutMs` replaces the pool's limit for it (the client's wait; the server's stays the pool's).
   */
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(name: string, text: string, values?: unknown[], timeoutMs?: number): Promise<pg.QueryResult<R>>;
  /**
   * Runs `fn` in one transaction on one connection: all of it commits, or none of it. `timeoutMs`
   * replaces the pool's limit for each of its statements.
   */
  transaction<T>(fn: (tx: PostgresTransaction) => Promise<T>, options?: { timeoutMs?: number }): Promise<T>;
  /** Ends every connection; those a silent server holds are destroyed after a grace (sockets.ts). */
  close(): Promise<void>;
  readonly pool: pg.Pool;
  /** The pool's sockets, open or closing (what the tests of sockets.ts observe). */
  readonly sockets: Pick<PoolSockets, 'size'>;
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
  // connection is bounded:
  //  - the server cancels a statement that runs too long (`statement_timeout`, 57014), a little
  //    before the client gives up on it, so a slow but live database keeps its connections and
  //    runs nothing we no longer wait for;
  //  - the client gives up on a statement a silent server never answers (`query_timeout`), and
  //    the connection goes with it (pg-pool discards a client released with an error, and
  //    pg.Pool.query releases it so; `transaction` below does the same);
  //  - TCP keep-alive probes an idle connection after 10 s (pg's default 0 leaves the system's
  //    two hours).
  //  - a connection ended (discarded, or the pool closing) is destroyed when a silent server does
  //    not close it within a second (sockets.ts), so it does not stay open, nor keep the process
  //    from exiting.
  const queryTimeoutMs = options.queryTimeoutMs ?? QUERY_TIMEOUT_MS;
  const sockets = poolSockets(options.closeGraceMs);
  const pool = new pg.Pool({
    stream: () => sockets.open(),
    connectionString: options.url,
    max: options.maxConnections ?? 10,
    statement_timeout: serverLimit(queryTimeoutMs),
    query_timeout: queryTimeoutMs,
    connectionTimeoutMillis: options.connectTimeoutMs ?? CONNECT_TIMEOUT_MS,
    ...(options.idleTimeoutMs !== undefined ? { idleTimeoutMillis: options.idleTimeoutMs } : {}),
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
    // The search_path is set per connection at start-up, so every pooled connection sees our schema.
    ...(options.schema ? { options: `-c search_path=${options.schema}` } : {}),
  });
  // An idle connection that dies (database restart) emits 'error' on the pool: without a listener
  // that would crash the process. The next query opens a fresh connection.
  pool.on('error', () => {});
  // Before any migration: the same limits as a migration's statements (another instance may hold a lock).
  if (options.schema) await pool.query(underMigrationLimit(`CREATE SCHEMA IF NOT EXISTS ${options.schema}`));
  await pool.query(underMigrationLimit(`CREATE TABLE IF NOT EXISTS schema_migrations (
    owner TEXT NOT NULL, version INTEGER NOT NULL, applied_at BIGINT NOT NULL,
    PRIMARY KEY (owner, version))`)).catch((err: { code?: string }) => {
    // Two instances starting at once may race on CREATE TABLE IF NOT EXISTS (a unique violation
    // on the catalog): the other one created it, which is all we wanted.
    if (err.code !== '23505' && err.code !== '42P07') throw err;
  });
  let closing: Promise<void> | undefined;
  const query = <R extends pg.QueryResultRow>(client: pg.Pool | pg.PoolClient, name: string, text: string, values?: unknown[], timeoutMs?: number) =>
    client.query<R>(timed({ name, text, values }, timeoutMs));
  return {
    pool,
    query: (name, text, values, timeoutMs) => query(pool, name, text, values, timeoutMs),
    async transaction(fn, options = {}) {
      const timeoutMs = options.timeoutMs;
      const client = await pool.connect();
      // A statement of this transaction that failed other than with PostgreSQL's own error (a
      // timeout, a lost connection): its connection's state is unknown, possibly still waiting
      // for an answer.
      let broken: Error | undefined;
      const watch = <T>(p: Promise<T>): Promise<T> => p.catch((err: unknown) => {
        if (!(err instanceof pg.DatabaseError)) broken ??= err instanceof Error ? err : new Error(String(err));
        throw err;
      });
      const run = (text: string) => watch(client.query(timed({ text }, timeoutMs)));
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
        // The server's limit follows the client's for this transaction (set back at its end).
        if (timeoutMs !== undefined) await run(`SET LOCAL statement_timeout = ${serverLimit(timeoutMs)}`);
        const result = await fn({
          query: (name, text, values) => watch(query(client, name, text, values, timeoutMs)),
          exec: async (sql) => { await run(sql); },
        });
        await run('COMMIT');
        return result;
      } catch (err) {
        // A statement PostgreSQL refused, or an error of `fn`'s own, leaves a working connection
        // to roll back on. A broken one is discarded, and the server rolls the transaction back
        // when the connection ends; so is one whose ROLLBACK fails (it may still be waiting).
        if (!broken && !lost) await run('ROLLBACK').catch((e: unknown) => { lost ??= e instanceof Error ? e : new Error(String(e)); });
        lost ??= broken;
        throw err;
      } finally {
        client.off('error', onError);
        client.release(lost);
      }
    },
    sockets,
    close() {
      // pg-pool's `end` resolves once every connection is back in the pool and asked to end, not
      // once they have ended; one still in a statement holds it up to that statement's limit.
      // Both are bounded by the grace (sockets.ts): past it, what is still open is destroyed (a
      // statement still running then, even on a live server, fails). Once: pg-pool's second
      // `end` rejects.
      closing ??= (async () => {
        const ended = pool.end();
        await sockets.closeAll();
        await ended;
      })();
      return closing;
    },
  };
}

/**
 * `config` with a limit of its own for this statement (pg reads `query_timeout` from a query's
 * config before the pool's: lib/client.js `query`; @types/pg does not declare it).
 */
function timed(config: pg.QueryConfig, timeoutMs: number | undefined): pg.QueryConfig {
  return timeoutMs === undefined ? config : ({ ...config, query_timeout: timeoutMs } as pg.QueryConfig);
}

/**
 * One DDL statement outside `migrate`'s transactions, with a migration's limits on both sides (the
 * session's `statement_timeout` set back after it; rolled back with it if it fails).
 */
function underMigrationLimit(sql: string): pg.QueryConfig {
  return timed({ text: `SET statement_timeout = ${serverLimit(MIGRATION_TIMEOUT_MS)}; ${sql}; RESET statement_timeout` }, MIGRATION_TIMEOUT_MS);
}

/**
 * The server's limit for a statement the client waits `clientMs` for: a second less (half, for a
 * limit of 2 s or less), so a live server cancels it (57014) before the client gives up.
 */
function serverLimit(clientMs: number): number {
  return clientMs > 2000 ? clientMs - 1000 : Math.max(1, Math.floor(clientMs / 2));
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
