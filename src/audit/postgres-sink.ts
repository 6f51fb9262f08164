/**
 * Audit events on PostgreSQL, for instances that share one database: the request path only
 * queues the event (one array push); batches are written by one `INSERT … SELECT FROM unnest(…)`
 * per batch (one round trip and one prepared statement whatever the batch size), off the request
 * path. Writes in flight are bounded: past `MAX_IN_FLIGHT` rows a batch is dropped and reported
 * with its count, never silently, so a database outage cannot grow memory without limit.
 *
 * Retention deletes old rows in chunks (`pruneBefore`), each a short statement on the `time_ms`
 * index, so pruning never locks the table against writers.
 */
import { Batch, type BatchOptions } from './batch.ts';
import { toRow } from './row.ts';
import { decodeAuditEventRow, type AuditEventRow, type AuditQuery } from './query.ts';
import type { AuditEvent, AuditSink } from './types.ts';
import { migrate, type PostgresDatabase } from '../storage/postgres/database.ts';

/** The `audit_events` table, the same columns as on SQLite (docs/storage.md). */
const MIGRATIONS = [
  `CREATE TABLE audit_events (
     id BIGSERIAL PRIMARY KEY,
     time TEXT NOT NULL,
     time_ms BIGINT NOT NULL,
     subject TEXT NOT NULL,
     client_id TEXT NOT NULL,
     roles TEXT NOT NULL,
     server TEXT NOT NULL,
     method TEXT NOT NULL,
     target TEXT,
     decision TEXT NOT NULL CHECK (decision IN ('allow', 'deny')),
     rule TEXT,
     reason TEXT NOT NULL,
     latency_us DOUBLE PRECISION NOT NULL,
     arguments TEXT,
     session_id TEXT,
     count INTEGER NOT NULL DEFAULT 1,
     remote_address TEXT);
   CREATE INDEX audit_events_time ON audit_events (time_ms);
   CREATE INDEX audit_events_subject ON audit_events (subject, time_ms);
   CREATE INDEX audit_events_client ON audit_events (client_id, time_ms);
   CREATE INDEX audit_events_server ON audit_events (server, time_ms);
   CREATE INDEX audit_events_decision ON audit_events (decision, time_ms);`,
];

/** Rows queued or being written at most; past it a batch is dropped and reported. */
export const MAX_IN_FLIGHT = 10_000;

const INSERT = `INSERT INTO audit_events
  (time, time_ms, subject, client_id, roles, server, method, target, decision, rule, reason, latency_us, arguments, session_id, count, remote_address)
  SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
    $9::text[], $10::text[], $11::text[], $12::float8[], $13::text[], $14::text[], $15::int[], $16::text[])`;

export async function migrateAuditPostgres(db: PostgresDatabase): Promise<void> {
  await migrate(db, 'audit', MIGRATIONS);
}

export class PostgresAuditSink implements AuditSink {
  readonly #db: PostgresDatabase;
  readonly #onError: (err: Error) => void;
  readonly #batch: Batch<AuditEvent>;
  readonly #writes = new Set<Promise<void>>();
  #inFlight = 0;

  /** Call `migrateAuditPostgres` first (start-up does). */
  constructor(db: PostgresDatabase, onError: (err: Error) => void = () => {}, options: BatchOptions = {}) {
    this.#db = db;
    this.#onError = onError;
    this.#batch = new Batch((events) => this.#write(events), options);
  }

  #write(events: AuditEvent[]): void {
    if (this.#inFlight + events.length > MAX_IN_FLIGHT) {
      this.#onError(new Error(`dropped ${events.length} audit event(s): ${this.#inFlight} are still being written to PostgreSQL`));
      return;
    }
    this.#inFlight += events.length;
    const columns: unknown[][] = Array.from({ length: 16 }, () => []);
    for (const e of events) toRow(e).forEach((v, i) => columns[i]!.push(v));
    const write = this.#db.query('warden_audit_insert', INSERT, columns)
      .then(() => {}, (err: Error) => this.#onError(new Error(`could not write ${events.length} audit event(s) to PostgreSQL: ${err.message}`)))
      .finally(() => {
        this.#inFlight -= events.length;
        this.#writes.delete(write);
      });
    this.#writes.add(write);
  }

  record(event: AuditEvent): void {
    this.#batch.push(event);
  }

  /** Writes what is queued and resolves when every write issued so far has finished. */
  async flush(): Promise<void> {
    this.#batch.flush();
    await Promise.all([...this.#writes]);
  }

  async close(): Promise<void> {
    await this.flush();
  }
}

/**
 * Deletes events older than `before` (ms) in chunks of `chunk` rows, each its own short statement,
 * so writers are never held behind one long delete. Returns how many were removed.
 */
export async function pruneAuditEventsPostgres(db: PostgresDatabase, before: number, chunk = 1000): Promise<number> {
  let removed = 0;
  for (;;) {
    const { rowCount } = await db.query('warden_audit_prune',
      'DELETE FROM audit_events WHERE id = ANY (ARRAY(SELECT id FROM audit_events WHERE time_ms < $1 ORDER BY time_ms LIMIT $2))', [before, chunk]);
    removed += rowCount ?? 0;
    if ((rowCount ?? 0) < chunk) return removed;
  }
}

/** How many events are older than `before` (ms): `mcp-warden audit prune --dry-run`. */
export async function countAuditEventsBeforePostgres(db: PostgresDatabase, before: number): Promise<number> {
  const { rows } = await db.query<{ n: number }>('warden_audit_count_before', 'SELECT COUNT(*)::int AS n FROM audit_events WHERE time_ms < $1', [before]);
  return rows[0]?.n ?? 0;
}

/** Recorded events matching every given filter, newest first (default limit 100): `mcp-warden audit` on PostgreSQL. */
export async function queryAuditEventsPostgres(db: PostgresDatabase, query: AuditQuery = {}): Promise<AuditEvent[]> {
  // One prepared statement for every filter combination: an absent filter is a NULL parameter.
  const { rows } = await db.query<AuditEventRow>('warden_audit_query', `SELECT time, subject, client_id, roles, server, method, target, decision, rule, reason,
      latency_us, arguments, session_id, count, remote_address FROM audit_events
    WHERE ($1::text IS NULL OR subject = $1) AND ($2::text IS NULL OR client_id = $2) AND ($3::text IS NULL OR server = $3)
      AND ($4::text IS NULL OR decision = $4) AND ($5::bigint IS NULL OR time_ms >= $5) AND ($6::bigint IS NULL OR time_ms < $6)
    ORDER BY time_ms DESC, id DESC LIMIT $7`,
  [query.subject ?? null, query.clientId ?? null, query.server ?? null, query.decision ?? null, query.since ?? null, query.until ?? null, query.limit ?? 100]);
  return rows.map(decodeAuditEventRow);
}
