/**
 * How SQLite stores audit events: one row per written batch, not one row per event.
 *
 * `audit_batches` holds each batch's events as one JSON array of rows (row.ts's columns, in
 * order), with the batch's earliest and latest `time_ms` and its number of events;
 * `audit_batch_keys` holds, for every user, client and server that occurs in a batch (and for a denial),
 * one row pointing at it, ordered by the batch's latest time. A query walks the batches of one key
 * (or all batches) newest first and filters their events (query.ts); pruning deletes whole
 * batches older than the cut and rewrites the one or two that straddle it (`createPruneChunk`).
 *
 * Why: with one row per event every event updated five B-trees (the table and four indexes) on the
 * audit writer thread, ~12.5 µs of CPU per event on a 2-vCPU VM, the largest part of what policy
 * and audit added to a tool call at saturation (docs/benchmarks.md, "The audit trail as
 * batches"). A batch of 256 events is one row of ~60 KB and a few key rows: ~2.4 µs per event,
 * JSON included. A batch of one (a quiet gateway's 100 ms flush) costs about what a row did.
 *
 * `audit_events` stays usable by SQL as a view over the batches (`json_each`), with the columns,
 * types and constraints it had as a table, `id` in insertion order: an `INSERT` into it is stored
 * as a batch of one, and a `DELETE` (erasing one user's events) leaves a JSON `null` in its place
 * in the batch, which every reader skips, and drops the key rows that no longer lead to an event.
 * Reading through the view decodes every batch it touches, so it suits ad-hoc SQL;
 * `mcp-warden audit` (query.ts) uses the key rows instead.
 *
 * The writer thread's connection is opened here too (`openWriterConnection`): the thread's module
 * starts a thread's work when imported, so what a test must check of it lives beside the writes.
 *
 * Types only from better-sqlite3, so the writer thread (sqlite-writer.worker.ts) loads nothing else.
 */
import type BetterSqlite3 from 'better-sqlite3';
import type { AuditRow } from './row.ts';

/**
 * Events per `audit_batches` row at most: the view's `id` is `batch id × 65 536 + position`, so
 * positions must stay below that. batch.ts's batches are 256; only a writer catching up after its
 * thread died writes more at once.
 */
export const MAX_EVENTS_PER_BATCH = 65_536;

/** The columns of `audit_events` (the view) and of each event's JSON array, in order. */
export const AUDIT_COLUMNS = ['time', 'time_ms', 'subject', 'client_id', 'roles', 'server', 'method', 'target', 'decision', 'rule', 'reason', 'latency_us', 'arguments', 'session_id', 'count', 'remote_address'] as const;

/**
 * The columns `audit_batch_keys` indexes, as they are named there (`kind`) and as `AUDIT_COLUMNS`
 * positions. Of the decision only `deny` is keyed: nearly every batch holds an `allow`, so its key
 * rows would lead a query to every batch, which walking all batches does without them.
 */
export const KEY_COLUMNS = { subject: 2, client_id: 3, server: 5, decision: 8 } as const;
export type KeyColumn = keyof typeof KEY_COLUMNS;
/** Whether a value of `kind` has key rows. */
export const isKeyed = (kind: KeyColumn, value: string): boolean => kind !== 'decision' || value === 'deny';
const KEYED = Object.entries(KEY_COLUMNS) as [KeyColumn, number][];
/** SQL: whether `column` (holding a value of `kind`) has key rows, as `isKeyed`. */
const keyedSql = (kind: KeyColumn, column: string) => (kind === 'decision' ? `${column} = 'deny'` : '1');

/**
 * A value of the inserted row as the old table's column would have stored it: numbers for its
 * INTEGER and REAL columns, text for the rest (`|| ''` also drops the JSON subtype a `json(…)`
 * argument carries, which `json_array` would otherwise nest as JSON instead of text; NULL stays NULL).
 */
const inserted = (c: string) =>
  c === 'count' ? 'CAST(coalesce(NEW.count, 1) AS INTEGER)' : c === 'time_ms' ? 'CAST(NEW.time_ms AS INTEGER)' : c === 'latency_us' ? 'CAST(NEW.latency_us AS REAL)' : `(NEW.${c} || '')`;
const eventJson = `json_array(${AUDIT_COLUMNS.map(inserted).join(', ')})`;
/** The old table's NOT NULL columns (audit migrations 1 and 2). */
const REQUIRED = ['time', 'time_ms', 'subject', 'client_id', 'roles', 'server', 'method', 'decision', 'reason', 'latency_us'];
/** The view's column `i` from the JSON array `e.value`, with the SQL type the table's column had. */
const column = (name: string, i: number) => (name === 'latency_us' ? `CAST(e.value ->> ${i} AS REAL)` : `e.value ->> ${i}`);
const batchOf = (id: string) => `(${id} / ${MAX_EVENTS_PER_BATCH})`;
const keyValues = KEYED.map(([k]) => `SELECT '${k}' AS kind, ${inserted(k)} AS value WHERE ${keyedSql(k, `NEW.${k}`)}`).join(' UNION ALL ');

/**
 * The `audit` owner's third migration (sqlite-sink.ts): the batch tables, every existing
 * `audit_events` row moved into them in groups of 256 consecutive ids (their order kept: the
 * view's ids sort as the old ones did), then the table replaced by the view. One transaction, as
 * every migration step (src/storage/sqlite/database.ts): a crash leaves the old table whole.
 */
export const BATCHES_MIGRATION = `
  CREATE TABLE audit_batches (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    first_ms INTEGER NOT NULL,
    last_ms INTEGER NOT NULL,
    count INTEGER NOT NULL,
    events TEXT NOT NULL);
  CREATE INDEX audit_batches_last ON audit_batches (last_ms);
  CREATE INDEX audit_batches_first ON audit_batches (first_ms);
  CREATE TABLE audit_batch_keys (
    kind TEXT NOT NULL CHECK (kind IN (${Object.keys(KEY_COLUMNS).map((k) => `'${k}'`).join(', ')})),
    value TEXT NOT NULL,
    last_ms INTEGER NOT NULL,
    batch_id INTEGER NOT NULL,
    PRIMARY KEY (kind, value, last_ms, batch_id)) WITHOUT ROWID;

  INSERT INTO audit_batches (id, first_ms, last_ms, count, events)
    SELECT (id - 1) / 256 + 1, MIN(time_ms), MAX(time_ms), COUNT(*),
      json_group_array(json_array(${AUDIT_COLUMNS.join(', ')}) ORDER BY id)
    FROM audit_events GROUP BY (id - 1) / 256;
${KEYED.map(([k]) => `
  INSERT OR IGNORE INTO audit_batch_keys (kind, value, last_ms, batch_id)
    SELECT DISTINCT '${k}', e.${k}, b.last_ms, b.id FROM audit_events e JOIN audit_batches b ON b.id = (e.id - 1) / 256 + 1 WHERE ${keyedSql(k, `e.${k}`)};`).join('')}

  DROP TABLE audit_events;
  CREATE VIEW audit_events (id, ${AUDIT_COLUMNS.join(', ')}) AS
    SELECT b.id * ${MAX_EVENTS_PER_BATCH} + e.key, ${AUDIT_COLUMNS.map(column).join(', ')}
    FROM audit_batches b, json_each(b.events) e WHERE e.type = 'array';
  CREATE TRIGGER audit_events_insert INSTEAD OF INSERT ON audit_events BEGIN
    SELECT RAISE(ABORT, 'NOT NULL constraint failed: audit_events') WHERE ${REQUIRED.map((c) => `NEW.${c} IS NULL`).join(' OR ')};
    SELECT RAISE(ABORT, 'CHECK constraint failed: decision IN (''allow'', ''deny'')') WHERE NEW.decision NOT IN ('allow', 'deny');
    INSERT INTO audit_batches (first_ms, last_ms, count, events) VALUES (${inserted('time_ms')}, ${inserted('time_ms')}, 1, json_array(${eventJson}));
    INSERT OR IGNORE INTO audit_batch_keys (kind, value, last_ms, batch_id)
      SELECT k.kind, k.value, ${inserted('time_ms')}, b.id FROM (SELECT last_insert_rowid() AS id) b, (${keyValues}) k;
  END;
  CREATE TRIGGER audit_events_delete INSTEAD OF DELETE ON audit_events BEGIN
    UPDATE audit_batches SET events = json_replace(events, '$[' || (OLD.id % ${MAX_EVENTS_PER_BATCH}) || ']', json('null')), count = count - 1
      WHERE id = ${batchOf('OLD.id')};${KEYED.map(([k, i]) => `
    DELETE FROM audit_batch_keys WHERE kind = '${k}' AND value = OLD.${k}
      AND last_ms = (SELECT last_ms FROM audit_batches WHERE id = ${batchOf('OLD.id')}) AND batch_id = ${batchOf('OLD.id')} AND NOT EXISTS (
      SELECT 1 FROM audit_batches b, json_each(b.events) e WHERE b.id = ${batchOf('OLD.id')} AND e.type = 'array' AND e.value ->> ${i} = OLD.${k});`).join('')}
    DELETE FROM audit_batches WHERE id = ${batchOf('OLD.id')} AND count = 0;
  END;`;

/**
 * The writer thread's page cache, in pages (`PRAGMA cache_size`; better-sqlite3 builds SQLite with
 * 16 MB). The writer appends: what it reads again is the right edge of each B-tree and the leaves
 * of the key rows it adds, a few dozen pages a batch; a batch's own ~15 overflow pages are never
 * read again. With 16 MB the cache grew for the first ~50 000 events, each new page a fresh
 * allocation the kernel faulted in, and then held ~16 MB that nothing reads (docs/benchmarks.md,
 * "The audit writer's page cache"). 256 pages (1 MB at 4 KB) hold what a batch with ~200 distinct
 * key values touches; past that, pages come back from the operating system's file cache. The
 * thread's transactions are batches of at most 256 events (~27 pages) and retention chunks; one
 * larger than the cache would spill its pages to the WAL before it commits.
 * @see https://www.sqlite.org/pragma.html#pragma_cache_size
 */
export const WRITER_CACHE_PAGES = 256;

/**
 * The writer thread's own connection to the gateway's database file (already migrated, in WAL
 * mode): `busyTimeoutMs` for another connection's lock, `synchronous = NORMAL` as openDatabase
 * sets it (durable at each checkpoint), and the small page cache above.
 */
export function openWriterConnection(Database: typeof BetterSqlite3, path: string, busyTimeoutMs: number): BetterSqlite3.Database {
  const db = new Database(path, { timeout: busyTimeoutMs });
  db.pragma('synchronous = NORMAL');
  db.pragma(`cache_size = ${WRITER_CACHE_PAGES}`);
  return db;
}

/** A better-sqlite3 connection (the main thread's wrapper or the writer thread's own). */
type Connection = Pick<BetterSqlite3.Database, 'prepare' | 'transaction'>;

/** A function writing rows as batches, in one transaction, on `db`. */
export function createBatchWriter(db: Connection): (rows: readonly AuditRow[]) => void {
  const insertBatch = db.prepare<[number, number, number, string]>('INSERT INTO audit_batches (first_ms, last_ms, count, events) VALUES (?, ?, ?, ?)');
  const keys = keyStatements(db);
  const writeOne = (rows: readonly AuditRow[]) => {
    const { first, last } = timeSpan(rows);
    const id = insertBatch.run(first, last, rows.length, JSON.stringify(rows)).lastInsertRowid;
    for (const [kind, value] of keysOf(rows)) keys.insert.run(kind, value, last, id);
  };
  return db.transaction((rows: readonly AuditRow[]) => {
    if (rows.length <= MAX_EVENTS_PER_BATCH) writeOne(rows);
    else for (let i = 0; i < rows.length; i += MAX_EVENTS_PER_BATCH) writeOne(rows.slice(i, i + MAX_EVENTS_PER_BATCH));
  });
}

/** The earliest and latest `time_ms` of `rows` (at least one). */
function timeSpan(rows: readonly AuditRow[]): { first: number; last: number } {
  let first = rows[0]![1];
  let last = first;
  for (const row of rows) {
    if (row[1] < first) first = row[1];
    if (row[1] > last) last = row[1];
  }
  return { first, last };
}

function keyStatements(db: Connection) {
  return {
    insert: db.prepare<[string, string, number, number | bigint]>('INSERT OR IGNORE INTO audit_batch_keys (kind, value, last_ms, batch_id) VALUES (?, ?, ?, ?)'),
    delete: db.prepare<[string, string, number, number]>('DELETE FROM audit_batch_keys WHERE kind = ? AND value = ? AND last_ms = ? AND batch_id = ?'),
  };
}

/** The key rows `rows` call for (`isKeyed`), each once; a deleted event's place is skipped. */
function keysOf(rows: readonly (AuditRow | null)[]): [KeyColumn, string][] {
  const keys: [KeyColumn, string][] = [];
  for (const [kind, at] of KEYED) {
    // Consecutive events mostly share a value: compare with the last one before the set.
    let previous: unknown;
    const seen = new Set<string>();
    for (const row of rows) {
      if (row === null) continue;
      const value = row[at] as string;
      if (value === previous) continue;
      previous = value;
      if (seen.has(value) || !isKeyed(kind, value)) continue;
      seen.add(value);
      keys.push([kind, value]);
    }
  }
  return keys;
}

/** A batch as query.ts and the pruner read it. */
export interface StoredBatch {
  id: number;
  last_ms: number;
  /** A JSON array of rows; a deleted event's place holds `null` (the view's `DELETE`). */
  events: string;
}

/** The events of a stored batch, a deleted event's place holding `null`. */
export const eventsOf = (batch: Pick<StoredBatch, 'events'>): (AuditRow | null)[] => JSON.parse(batch.events) as (AuditRow | null)[];

/**
 * One chunk of a prune: whole batches whose every event is strictly older than `beforeMs`,
 * oldest first, until at least `chunk` events are removed; when fewer than that remain, the
 * batches that straddle `beforeMs` are rewritten without their older events. Returns the events
 * removed, so a caller repeating chunks stops at the first one that removed fewer than `chunk`.
 */
export function createPruneChunk(db: Connection): (beforeMs: number, chunk: number) => number {
  const oldest = db.prepare<[number, number]>('SELECT id, count FROM audit_batches WHERE last_ms < ? ORDER BY last_ms LIMIT ?');
  const batchById = db.prepare<[number]>('SELECT id, last_ms, events FROM audit_batches WHERE id = ?');
  const deleteBatch = db.prepare<[number]>('DELETE FROM audit_batches WHERE id = ?');
  // After the whole batches are gone, every batch starting before the cut ends after it.
  const straddling = db.prepare<[number]>('SELECT id, last_ms, events FROM audit_batches WHERE first_ms < ?');
  const rewrite = db.prepare<[number, number, string, number]>('UPDATE audit_batches SET first_ms = ?, count = ?, events = ? WHERE id = ?');
  const keys = keyStatements(db);
  // A batch's key rows are found from its events (the key rows' primary key), not from an index
  // on `batch_id`, which every write would pay for.
  const deleteKeys = (batch: StoredBatch, rows: readonly (AuditRow | null)[]) => {
    for (const [kind, value] of keysOf(rows)) keys.delete.run(kind, value, batch.last_ms, batch.id);
  };
  const prune = db.transaction((beforeMs: number, chunk: number): number => {
    let removed = 0;
    // A batch holds at least one event: `chunk` batches always cover `chunk` events.
    for (const { id, count } of oldest.all(beforeMs, chunk) as { id: number; count: number }[]) {
      const batch = batchById.get(id) as StoredBatch;
      deleteKeys(batch, eventsOf(batch));
      deleteBatch.run(id);
      removed += count;
      if (removed >= chunk) return removed;
    }
    for (const batch of straddling.all(beforeMs) as StoredBatch[]) {
      const rows = eventsOf(batch);
      const kept = rows.filter((row): row is AuditRow => row !== null && row[1] >= beforeMs);
      const older = rows.filter((row) => row !== null && row[1] < beforeMs).length;
      if (older === 0) continue;
      removed += older;
      if (kept.length === 0) {
        // Its newer events were erased through the view, which leaves `last_ms` as it was.
        deleteKeys(batch, rows);
        deleteBatch.run(batch.id);
        continue;
      }
      // Rewritten without the deleted events' places too: positions change, which only the view's
      // ids show (they stay in insertion order).
      rewrite.run(timeSpan(kept).first, kept.length, JSON.stringify(kept), batch.id);
      // The values only the removed events had must no longer lead a query to this batch.
      deleteKeys(batch, rows);
      for (const [kind, value] of keysOf(kept)) keys.insert.run(kind, value, batch.last_ms, batch.id);
    }
    return removed;
  });
  // BEGIN IMMEDIATE: a prune reads, then writes. A deferred transaction would read from a
  // snapshot that a write committed meanwhile by another connection to the file makes stale, and
  // SQLite then refuses its upgrade to a write at once (SQLITE_BUSY, without the busy_timeout wait).
  // @see https://www.sqlite.org/lang_transaction.html#deferred_immediate_and_exclusive_transactions
  return (beforeMs, chunk) => prune.immediate(beforeMs, chunk);
}

/** How many events are strictly older than `beforeMs` (a dry-run prune). */
export function createPruneCount(db: Connection): (beforeMs: number) => number {
  const whole = db.prepare<[number]>('SELECT COALESCE(SUM(count), 0) FROM audit_batches WHERE last_ms < ?').pluck();
  const straddling = db.prepare<[number, number]>('SELECT events FROM audit_batches WHERE first_ms < ? AND last_ms >= ?');
  return (beforeMs) => {
    let n = whole.get(beforeMs) as number;
    for (const batch of straddling.all(beforeMs, beforeMs) as StoredBatch[]) {
      for (const row of eventsOf(batch)) if (row !== null && row[1] < beforeMs) n++;
    }
    return n;
  };
}
