/**
 * Audit sinks (issue 4 §5): every authorization decision goes to SQLite and, when
 * `audit.jsonl` is set, to a JSON Lines file. The gateway fills the events (using
 * `redactArguments` for tool arguments) and calls `record`, which never blocks on I/O.
 */
import type { Config } from '../config/schema.ts';
import type { Logger } from '../log.ts';
import type { SqliteDatabase } from '../storage/sqlite/database.ts';
import { JsonlAuditSink } from './jsonl-sink.ts';
import { SqliteAuditSink } from './sqlite-sink.ts';
import type { AuditSink } from './types.ts';

export type { AuditEvent, AuditSink } from './types.ts';
export { redactArguments, REDACTED } from './redact.ts';
export { queryAuditEvents, type AuditQuery } from './query.ts';
export { SqliteAuditSink, migrateAudit } from './sqlite-sink.ts';
export { JsonlAuditSink } from './jsonl-sink.ts';

export interface AuditSinkOptions {
  /** Where write failures are reported (they never reach the request path). */
  logger?: Logger;
}

/** The configured audit sinks behind one `AuditSink`. */
export function createAuditSink(config: Config, db: SqliteDatabase, options: AuditSinkOptions = {}): AuditSink & { flush(): void } {
  const onError = (err: Error) => options.logger?.error({ err: { message: err.message } }, 'audit write failed');
  const sinks: (SqliteAuditSink | JsonlAuditSink)[] = [new SqliteAuditSink(db, onError)];
  if (config.audit.jsonl) sinks.push(new JsonlAuditSink(config.audit.jsonl, onError));
  return {
    record(event) {
      for (const sink of sinks) sink.record(event);
    },
    /** Writes queued events now (tests, and before reading the trail back in-process). */
    flush() {
      for (const sink of sinks) sink.flush();
    },
    async close() {
      await Promise.all(sinks.map((s) => s.close()));
    },
  };
}
