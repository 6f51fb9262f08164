/**
 * Reading audit events back, for `mcp-warden audit`: filters by user, client, server, decision
 * and time range, newest first, each using an index of the `audit_events` table.
 */
import type { SqliteDatabase } from '../storage/sqlite/database.ts';
import { migrateAudit } from './sqlite-sink.ts';
import type { AuditEvent } from './types.ts';

export interface AuditQuery {
  subject?: string;
  clientId?: string;
  server?: string;
  decision?: 'allow' | 'deny';
  /** Inclusive lower bound, milliseconds since the epoch. */
  since?: number;
  /** Exclusive upper bound, milliseconds since the epoch. */
  until?: number;
  limit?: number;
}

/** One `audit_events` row as both backends return it. */
export interface AuditEventRow {
  time: string;
  subject: string;
  client_id: string;
  roles: string;
  server: string;
  method: string;
  target: string | null;
  decision: 'allow' | 'deny';
  rule: string | null;
  reason: string;
  latency_us: number;
  arguments: string | null;
  session_id: string | null;
  count: number;
  remote_address: string | null;
}

/** Recorded events matching every given filter, newest first (default limit 100). */
export function queryAuditEvents(db: SqliteDatabase, query: AuditQuery = {}): AuditEvent[] {
  migrateAudit(db);
  const where: string[] = [];
  const values: Record<string, string | number> = {};
  const eq = (column: string, key: string, value: string | undefined) => {
    if (value === undefined) return;
    where.push(`${column} = @${key}`);
    values[key] = value;
  };
  eq('subject', 'subject', query.subject);
  eq('client_id', 'clientId', query.clientId);
  eq('server', 'server', query.server);
  eq('decision', 'decision', query.decision);
  if (query.since !== undefined) {
    where.push('time_ms >= @since');
    values.since = query.since;
  }
  if (query.until !== undefined) {
    where.push('time_ms < @until');
    values.until = query.until;
  }
  values.limit = query.limit ?? 100;
  const sql = `SELECT time, subject, client_id, roles, server, method, target, decision, rule, reason, latency_us, arguments, session_id, count, remote_address
    FROM audit_events ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY time_ms DESC, id DESC LIMIT @limit`;
  const rows = db.prepare(sql).all(values) as AuditEventRow[];
  return rows.map(decodeAuditEventRow);
}

/** An `audit_events` row (SQLite or PostgreSQL) as the event that was recorded. */
export function decodeAuditEventRow(r: AuditEventRow): AuditEvent {
  return {
    time: r.time,
    subject: r.subject,
    clientId: r.client_id,
    roles: JSON.parse(r.roles) as string[],
    server: r.server,
    method: r.method,
    target: r.target,
    decision: r.decision,
    rule: r.rule,
    reason: r.reason,
    latencyUs: r.latency_us,
    ...(r.arguments !== null ? { arguments: JSON.parse(r.arguments) as unknown } : {}),
    sessionId: r.session_id,
    ...(r.count !== 1 ? { count: r.count } : {}),
    ...(r.remote_address !== null ? { remoteAddress: r.remote_address } : {}),
  };
}
