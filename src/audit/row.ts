/**
 * An audit event as the positional values of one `audit_events` row: shared by the inline SQLite
 * writer, the writer thread (which builds the rows of the events it is posted) and PostgreSQL.
 * Its own module, without the database code, so the writer thread loads only what it needs.
 */
import type { AuditEvent } from './types.ts';

/** The columns an event is written to, in order: shared by the inline sink and the writer thread. */
export const INSERT_SQL = `INSERT INTO audit_events
  (time, time_ms, subject, client_id, roles, server, method, target, decision, rule, reason, latency_us, arguments, session_id, count, remote_address)
  VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`;

export type AuditRow = [string, number, string, string, string, string, string, string | null, string, string | null, string, number, string | null, string | null, number, string | null];

/** One event as the positional values of `INSERT_SQL`. */
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
