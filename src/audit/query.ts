/**
 * Reading audit events back, for `mcp-warden audit`: filters by user, client, server, decision
 * and time range, newest first. On SQLite the events are stored in batches (sqlite-batches.ts):
 * the query walks the batches holding the first given of user, client, server and denial (their
 * key rows, newest batch first) or all batches by their latest time, and filters each batch's
 * events; it stops as soon as no older batch can hold an event newer than the `limit`-th found.
 */
import type { SqliteDatabase } from '../storage/sqlite/database.ts';
import type { AuditRow } from './row.ts';
import { migrateAudit } from './sqlite-sink.ts';
import { eventsOf, isKeyed, KEY_COLUMNS, MAX_EVENTS_PER_BATCH, type KeyColumn, type StoredBatch } from './sqlite-batches.ts';
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

/** The batches holding a value of one key column (`kind`, `value`), newest first, over the key rows' primary key. */
export const BATCHES_BY_KEY_SQL = `SELECT b.id, b.last_ms, b.events FROM audit_batch_keys k JOIN audit_batches b ON b.id = k.batch_id
  WHERE k.kind = ? AND k.value = ? AND k.last_ms >= ? AND b.first_ms < ? ORDER BY k.last_ms DESC, k.batch_id DESC`;
/** Every batch that may hold events of [since, until), newest first, over the `last_ms` index. */
export const BATCHES_SQL = 'SELECT id, last_ms, events FROM audit_batches WHERE last_ms >= ? AND first_ms < ? ORDER BY last_ms DESC, id DESC';

/** An event found, with where it sorts: by time, then insertion order (the view's `id`). */
interface Found {
  row: AuditRow;
  order: number;
}

const newestFirst = (a: Found, b: Found) => b.row[1] - a.row[1] || b.order - a.order;

/** Recorded events matching every given filter, newest first (default limit 100). */
export function queryAuditEvents(db: SqliteDatabase, query: AuditQuery = {}): AuditEvent[] {
  migrateAudit(db);
  const limit = query.limit ?? 100;
  // A limit that is not a positive number (0, negative, NaN) answers nothing.
  if (!(limit > 0)) return [];
  const since = query.since ?? Number.MIN_SAFE_INTEGER;
  const until = query.until ?? Number.MAX_SAFE_INTEGER;
  const asked: [KeyColumn, string | undefined][] = [['subject', query.subject], ['client_id', query.clientId], ['server', query.server], ['decision', query.decision]];
  const given = asked.filter((f): f is [KeyColumn, string] => f[1] !== undefined);
  const filters = given.map(([column, value]) => [KEY_COLUMNS[column], value] as const);
  // The first filter with key rows leads to the batches to read; every filter is checked per event.
  const key = given.find(([column, value]) => isKeyed(column, value));
  const batches = key
    ? db.prepare<[string, string, number, number]>(BATCHES_BY_KEY_SQL).iterate(key[0], key[1], since, until)
    : db.prepare<[number, number]>(BATCHES_SQL).iterate(since, until);
  let found: Found[] = [];
  for (const batch of batches as IterableIterator<StoredBatch>) {
    // Every later batch's events are no newer than its `last_ms`: once `limit` events newer than
    // that are found, none of them can still make the list.
    if (found.length >= limit && batch.last_ms < found[limit - 1]!.row[1]) break;
    const rows = eventsOf(batch);
    for (let i = 0; i < rows.length; i++) {
      const row = rows[i]!;
      if (row === null || row[1] < since || row[1] >= until) continue;
      if (!filters.every(([at, value]) => row[at] === value)) continue;
      found.push({ row, order: batch.id * MAX_EVENTS_PER_BATCH + i });
    }
    if (found.length >= limit) found = found.sort(newestFirst).slice(0, limit);
  }
  return found.sort(newestFirst).map(({ row }) => decodeAuditEventRow(rowValues(row)));
}

/** A stored event's positional values under the column names both backends return. */
function rowValues(r: AuditRow): AuditEventRow {
  return {
    time: r[0], subject: r[2], client_id: r[3], roles: r[4], server: r[5], method: r[6], target: r[7], decision: r[8] as 'allow' | 'deny',
    rule: r[9], reason: r[10], latency_us: r[11], arguments: r[12], session_id: r[13], count: r[14], remote_address: r[15],
  };
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
