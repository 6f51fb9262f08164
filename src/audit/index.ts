/**
 * Audit sinks: every authorization decision goes to SQLite and, when
 * `audit.jsonl` is set, to a JSON Lines file. The gateway fills the events (using
 * `redactArguments` for tool arguments) and calls `record`, which never blocks on I/O.
 * Unauthenticated denials are folded per window (unauthenticated.ts), so a 401 flood does not grow
 * the store at the sender's pace; old events are pruned (retention.ts) only once `audit.retention`
 * is set, as deleting what is stored is the operator's call (schema.ts).
 */
import type { Config } from '../config/schema.ts';
import type { Logger } from '../log.ts';
import type { SqliteDatabase } from '../storage/sqlite/database.ts';
import type { AuditBackend } from '../storage/index.ts';
import { PostgresAuditSink, pruneAuditEventsPostgres } from './postgres-sink.ts';
import { JsonlAuditSink } from './jsonl-sink.ts';
import { startRetention } from './retention.ts';
import { SqliteAuditSink } from './sqlite-sink.ts';
import { SqliteWorkerAuditSink } from './sqlite-worker-sink.ts';
import type { AuditSink } from './types.ts';
import { UnauthenticatedFold } from './unauthenticated.ts';

export type { AuditEvent, AuditSink } from './types.ts';
export { redactArguments, REDACTED } from './redact.ts';
export { createDecisionRecorder, type DecisionRecord, type DecisionRecorder } from './decision.ts';
export { queryAuditEvents, type AuditQuery } from './query.ts';
export { SqliteAuditSink, migrateAudit } from './sqlite-sink.ts';
export { SqliteWorkerAuditSink } from './sqlite-worker-sink.ts';
export { JsonlAuditSink } from './jsonl-sink.ts';
export { pruneAuditEvents, startRetention } from './retention.ts';
export { UnauthenticatedFold, isUnauthenticatedDenial } from './unauthenticated.ts';

export interface AuditSinkOptions {
  /** Where write failures are reported (they never reach the request path). */
  logger?: Logger;
  /** Clock for retention and folding windows (tests). */
  now?: () => number;
}

/**
 * The configured audit sinks behind one `AuditSink`: the database (SQLite on a writer thread or
 * inline, or PostgreSQL in batches) and, when set, the JSON Lines file. `backend` may be a SQLite
 * handle (the embedded default) or what `openStorage` chose.
 */
export function createAuditSink(config: Config, backend: AuditBackend | SqliteDatabase, options: AuditSinkOptions = {}): AuditSink & { flush(): Promise<void> } {
  const store: AuditBackend = 'kind' in backend ? backend : { kind: 'sqlite', db: backend };
  const onError = (err: Error) => options.logger?.error({ err: { message: err.message } }, 'audit write failed');
  let primary: SqliteAuditSink | SqliteWorkerAuditSink | PostgresAuditSink;
  let prune: { run(before: number, chunk: number): Promise<{ removed: number; chunks: number }>; cancel(): void } | undefined;
  if (store.kind === 'postgres') {
    const pg = store.db;
    primary = new PostgresAuditSink(pg, onError);
    // Chunked deletes on the time index: retention never holds a lock writers wait behind.
    let cancelled = false;
    prune = { run: async (before, chunk) => (cancelled ? { removed: 0, chunks: 0 } : { removed: await pruneAuditEventsPostgres(pg, before, chunk), chunks: 1 }), cancel: () => { cancelled = true; } };
  } else {
    const sqlite = config.audit.writer === 'worker' && !store.db.memory ? new SqliteWorkerAuditSink(store.db, onError) : new SqliteAuditSink(store.db, onError);
    primary = sqlite;
    // With the writer thread, pruning runs there too, off the event loop.
    if (sqlite instanceof SqliteWorkerAuditSink) prune = { run: (before, chunk) => sqlite.prune(before, chunk), cancel: () => sqlite.cancelPrune() };
  }
  const sinks: (SqliteAuditSink | SqliteWorkerAuditSink | PostgresAuditSink | JsonlAuditSink)[] = [primary];
  if (config.audit.jsonl) sinks.push(new JsonlAuditSink(config.audit.jsonl, onError, { maxBytes: config.audit.jsonlMaxBytes, keep: config.audit.jsonlKeep }));
  const retention = startRetention(store.kind === 'sqlite' ? store.db : undefined, {
    retentionMs: config.audit.retention,
    ...(prune ? { prune } : {}),
    ...(options.now ? { now: options.now } : {}),
    onError,
    // One info line per prune that removed rows: the count only, never event contents.
    onPruned: ({ removed }) => options.logger?.info({ removed }, 'old audit events pruned'),
  });
  const all: AuditSink & { flush(): Promise<unknown> } = {
    record(event) {
      for (const sink of sinks) sink.record(event);
    },
    flush: () => Promise.all(sinks.map((s) => s.flush())),
    async close() {
      await retention.stop();
      await Promise.all(sinks.map((s) => s.close()));
    },
  };
  const fold = new UnauthenticatedFold(all, { windowMs: config.audit.unauthenticatedWindowSeconds * 1000, ...(options.now ? { now: options.now } : {}) });
  return {
    record: (event) => fold.record(event),
    /**
     * Writes queued events (and the unauthenticated counts so far) now and resolves when SQLite has
     * them: tests, and before reading the trail back in-process.
     */
    flush: async () => {
      await fold.flush();
    },
    close: () => fold.close(),
  };
}
