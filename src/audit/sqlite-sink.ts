/**
 * Audit events in SQLite, owned by the `audit` migrations: stored as batches (sqlite-batches.ts),
 * readable as the `audit_events` view, queried by time and by user, client, server or decision
 * (query.ts). Writes are batched (batch.ts): `record` only queues, and the queue is written in
 * one transaction every 100 ms or at 256 queued events, so a request never waits for the disk and
 * requests arriving one at a time do not each pay for a transaction. A reader in another process
 * (`mcp-warden audit`) sees an event at most one interval late; a crash loses at most that much.
 */
import { migrate, type SqliteDatabase } from '../storage/sqlite/database.ts';
import { Batch, type BatchOptions } from './batch.ts';
import type { AuditEvent, AuditSink } from './types.ts';
import { toRow, type AuditRow } from './row.ts';
import { BATCHES_MIGRATION, createBatchWriter } from './sqlite-batches.ts';

export const AUDIT_MIGRATIONS: readonly string[] = [
  `CREATE TABLE audit_events (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     time TEXT NOT NULL,
     time_ms INTEGER NOT NULL,
     subject TEXT NOT NULL,
     client_id TEXT NOT NULL,
     roles TEXT NOT NULL,
     server TEXT NOT NULL,
     method TEXT NOT NULL,
     target TEXT,
     decision TEXT NOT NULL CHECK (decision IN ('allow', 'deny')),
     rule TEXT,
     reason TEXT NOT NULL,
     latency_us REAL NOT NULL,
     arguments TEXT,
     session_id TEXT);
   CREATE INDEX audit_events_time ON audit_events (time_ms);
   CREATE INDEX audit_events_subject ON audit_events (subject, time_ms);
   CREATE INDEX audit_events_client ON audit_events (client_id, time_ms);
   CREATE INDEX audit_events_server ON audit_events (server, time_ms);
   CREATE INDEX audit_events_decision ON audit_events (decision, time_ms);`,
  // 2: folded unauthenticated denials (unauthenticated.ts) carry how many they stand for and from where.
  `ALTER TABLE audit_events ADD COLUMN count INTEGER NOT NULL DEFAULT 1;
   ALTER TABLE audit_events ADD COLUMN remote_address TEXT;
   CREATE INDEX IF NOT EXISTS audit_events_time ON audit_events (time_ms);`,
  // 3: one row per batch instead of one per event; `audit_events` becomes a view (sqlite-batches.ts).
  BATCHES_MIGRATION,
];

/** Brings up the audit tables and the `audit_events` view (owner `audit`); idempotent. */
export function migrateAudit(db: SqliteDatabase): void {
  migrate(db, 'audit', AUDIT_MIGRATIONS);
}


/** Batched writer of audit events to SQLite on this thread; `close` writes what is queued. */
export class SqliteAuditSink implements AuditSink {
  readonly #writeRows: (rows: readonly AuditRow[]) => void;
  readonly #onError: (err: Error) => void;
  readonly #batch: Batch<AuditEvent>;

  constructor(db: SqliteDatabase, onError: (err: Error) => void = () => {}, options: BatchOptions = {}) {
    migrateAudit(db);
    this.#onError = onError;
    this.#writeRows = createBatchWriter(db);
    this.#batch = new Batch((batch) => {
      try {
        this.#writeRows(batch.map(toRow));
      } catch (err) {
        this.#onError(new Error(`could not write ${batch.length} audit event(s) to SQLite: ${(err as Error).message}`));
      }
    }, options);
  }

  record(event: AuditEvent): void {
    this.#batch.push(event);
  }

  /** Writes every queued event now. */
  flush(): void {
    this.#batch.flush();
  }

  async close(): Promise<void> {
    this.flush();
  }
}
