/**
 * What storing an audit event costs the writer thread, and what reading it back costs
 * `mcp-warden audit`: the SQLite store as shipped (one row per batch of events plus key rows,
 * src/audit/sqlite-batches.ts) against the store it replaced (one row per event in `audit_events`,
 * indexed by time and by subject, client, server and decision each with time) and against that
 * table with the time index alone (the floor of any one-row-per-event store).
 * Run: npm run bench -- audit-store [--rounds N]
 *
 * Method: one process, a fresh database file per store, load and round (WAL, `synchronous=NORMAL`,
 * as openDatabase sets them). Three loads, as batch.ts makes them: busy, 200 transactions of 256
 * events (its largest batch); moderate, 500 of 16 (~160 events/s, flushed every 100 ms); quiet,
 * 2 000 of 1 (under 10 events/s, each flush holds one). Events as the gateway writes them
 * (20 users, 3 clients, one server, one tool, 1 in 20 denied, monotonic time, redacted
 * arguments). Writes: CPU (user + system, so the WAL's writes count) per event, and the file's
 * bytes in use per event after a checkpoint. Reads: wall time of the queries `mcp-warden audit`
 * makes over the busy load's 51 200 events, the one-row-per-event stores through the SQL the
 * query used to run. Stores interleaved in every round; medians over the rounds, and the median
 * of each round's ratio to the shipped store.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { migrate, openDatabase, type SqliteDatabase } from '../src/storage/sqlite/database.ts';
import { AUDIT_MIGRATIONS, migrateAudit } from '../src/audit/sqlite-sink.ts';
import { createBatchWriter } from '../src/audit/sqlite-batches.ts';
import { queryAuditEvents, type AuditQuery } from '../src/audit/query.ts';
import type { AuditRow } from '../src/audit/row.ts';
import { median } from './fixtures/mcp-load.ts';
import { auditRows, T0 } from './fixtures/audit-rows.ts';

const roundsIndex = process.argv.indexOf('--rounds');
const ROUNDS = roundsIndex === -1 ? 9 : Number(process.argv[roundsIndex + 1]);
/** [transactions, events each] per load. */
const LOADS: Record<string, [number, number]> = { busy: [200, 256], moderate: [500, 16], quiet: [2000, 1] };
const [BATCHES, BATCH] = LOADS.busy!;

/** The table as audit migrations 1 and 2 left it, written a row per event as before. */
function rowStore(db: SqliteDatabase, timeIndexOnly: boolean) {
  migrate(db, 'audit', AUDIT_MIGRATIONS.slice(0, 2));
  if (timeIndexOnly) db.exec('DROP INDEX audit_events_subject; DROP INDEX audit_events_client; DROP INDEX audit_events_server; DROP INDEX audit_events_decision;');
  const insert = db.prepare(`INSERT INTO audit_events
    (time, time_ms, subject, client_id, roles, server, method, target, decision, rule, reason, latency_us, arguments, session_id, count, remote_address)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`);
  const write = db.transaction((rows: AuditRow[]) => {
    for (const row of rows) insert.run(row);
  });
  // The query as it was (one index range per filter, newest first).
  const query = (q: AuditQuery) => {
    const where: string[] = [];
    const values: Record<string, string | number> = { limit: q.limit ?? 100 };
    const add = (condition: string, key: string, value: string | number | undefined) => {
      if (value === undefined) return;
      where.push(condition);
      values[key] = value;
    };
    add('subject = @subject', 'subject', q.subject);
    add('time_ms >= @since', 'since', q.since);
    add('time_ms < @until', 'until', q.until);
    return db.prepare(`SELECT * FROM audit_events ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY time_ms DESC, id DESC LIMIT @limit`).all(values).length;
  };
  return { write, query };
}

const stores: Record<string, (db: SqliteDatabase) => { write(rows: AuditRow[]): void; query(q: AuditQuery): number }> = {
  'batches (shipped)': (db) => {
    migrateAudit(db);
    return { write: createBatchWriter(db), query: (q) => queryAuditEvents(db, q).length };
  },
  'row per event, 5 indexes (before)': (db) => rowStore(db, false),
  'row per event, time index only (floor)': (db) => rowStore(db, true),
};


const QUERIES: Record<string, AuditQuery> = {
  'newest 100': {},
  'newest 100 of one user': { subject: 'user-7' },
  'a user with no events': { subject: 'nobody' },
  '100 from the middle (since/until)': { since: T0 + 20_000, until: T0 + 30_000 },
};

const names = Object.keys(stores);
const loads = Object.keys(LOADS);
const write: Record<string, Record<string, number[]>> = Object.fromEntries(names.map((n) => [n, Object.fromEntries(loads.map((l) => [l, []]))]));
const bytes: Record<string, Record<string, number[]>> = Object.fromEntries(names.map((n) => [n, Object.fromEntries(loads.map((l) => [l, []]))]));
const read: Record<string, Record<string, number[]>> = Object.fromEntries(names.map((n) => [n, Object.fromEntries(Object.keys(QUERIES).map((q) => [q, []]))]));
const dir = mkdtempSync(join(tmpdir(), 'warden-audit-store-'));
try {
  for (let round = 0; round < ROUNDS; round++) {
    // Rotate the order every round so drift in the machine's load hits every store alike.
    const order = names.map((_, i) => names[(i + round) % names.length]!);
    for (const load of loads) {
      const [transactions, size] = LOADS[load]!;
      for (const name of order) {
        const db = openDatabase(join(dir, `r${round}-${load}-${names.indexOf(name)}.db`));
        const store = stores[name]!(db);
        const batches = Array.from({ length: transactions }, (_, b) => auditRows(b * size, size));
        const before = process.cpuUsage();
        for (const rows of batches) store.write(rows);
        const used = process.cpuUsage(before);
        write[name]![load]!.push((used.user + used.system) / (transactions * size));
        db.pragma('wal_checkpoint(TRUNCATE)');
        const pages = (db.pragma('page_count', { simple: true }) as number) - (db.pragma('freelist_count', { simple: true }) as number);
        bytes[name]![load]!.push((pages * (db.pragma('page_size', { simple: true }) as number)) / (transactions * size));
        if (load === 'busy') {
          for (const [q, query] of Object.entries(QUERIES)) {
            const start = process.hrtime.bigint();
            for (let i = 0; i < 5; i++) store.query(query);
            read[name]![q]!.push(Number(process.hrtime.bigint() - start) / 5 / 1e6);
          }
        }
        db.close();
      }
    }
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}

console.log(`${ROUNDS} rounds; loads (transactions × events): ${loads.map((l) => `${l} ${LOADS[l]![0]} × ${LOADS[l]![1]}`).join(', ')}\n`);
console.log('| store | load | write: median CPU µs/event | min–max | ratio to batches (paired median) | bytes/event on disk |');
console.log('|---|---|---|---|---|---|');
for (const load of loads) {
  const base = write[names[0]!]![load]!;
  for (const name of names) {
    const xs = write[name]![load]!;
    console.log(`| ${name} | ${load} | ${median(xs).toFixed(2)} | ${Math.min(...xs).toFixed(2)}–${Math.max(...xs).toFixed(2)} | ${median(xs.map((x, i) => x / base[i]!)).toFixed(2)} | ${median(bytes[name]![load]!).toFixed(0)} |`);
  }
}
console.log(`\n| query (median ms, ${BATCHES * BATCH} events) | ${names.join(' | ')} |`);
console.log(`|---|${names.map(() => '---|').join('')}`);
for (const q of Object.keys(QUERIES)) console.log(`| ${q} | ${names.map((n) => median(read[n]![q]!).toFixed(2)).join(' | ')} |`);
