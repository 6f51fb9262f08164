/**
 * An audit event as the positional values of one `audit_events` row (the columns of
 * sqlite-batches.ts's `AUDIT_COLUMNS`, in order): what a SQLite batch stores per event, built by
 * the inline writer and by the writer thread (from the events it is posted), and the values of
 * PostgreSQL's insert. Its own module, without the database code, so the writer thread loads only
 * what it needs.
 */
import type { AuditEvent } from './types.ts';

export type AuditRow = [string, number, string, string, string, string, string, string | null, string, string | null, string, number, string | null, string | null, number, string | null];

/** One event as the positional values of an `audit_events` row. */
export function toRow(e: AuditEvent): AuditRow {
  const timeMs = Date.parse(e.time);
  return [
    e.time,
    Number.isNaN(timeMs) ? 0 : timeMs,
    e.subject,
    e.clientId,
    JSON.stringify(e.roles),
    e.server,
    e.method,
    e.target,
    e.decision,
    e.rule,
    e.reason,
    e.latencyUs,
    e.arguments === undefined ? null : JSON.stringify(e.arguments),
    e.sessionId ?? null,
    e.count ?? 1,
    e.remoteAddress ?? null,
  ];
}
