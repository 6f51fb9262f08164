/**
 * What the `audit_events` indexes cost per event on the writer: the table as migrated (time, and
 * subject, client, server and decision each with time), against two cheaper schemas that were
 * measured and not shipped (docs/benchmarks.md, "The audit trail's indexes"): without the server
 * and decision indexes but with a partial index of the denials, and the time index alone (the
 * floor: what any queryable trail pays).
 * Run: npm run bench -- audit-indexes [--rounds N]
 *
 * Method: one process, a fresh database file per schema and round (WAL, `synchronous=NORMAL`, as
 * openDatabase sets them), the real migrations and the writer's own insert transaction
 * (createRowWriter), 200 transactions of 256 rows each (batch.ts's largest batch); rows as the
 * gateway writes them (20 users, 3 clients, one server, one tool, 1 in 20 denied, monotonic time).
 * CPU (user + system, so the WAL's writes count) per row, schemas interleaved in every round;
 * medians over the rounds and the median of each round's ratio to the shipped schema.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDatabase, type SqliteDatabase } from '../src/storage/sqlite/database.ts';
import { createRowWriter, migrateAudit } from '../src/audit/sqlite-sink.ts';
import type { AuditRow } from '../src/audit/row.ts';
import { median } from './fixtures/mcp-load.ts';

const roundsIndex = process.argv.indexOf('--rounds');
const ROUNDS = roundsIndex === -1 ? 9 : Number(process.argv[roundsIndex + 1]);
const BATCHES = 200;
const BATCH = 256;

const schemas: Record<string, (db: SqliteDatabase) => void> = {
  'as migrated (5 indexes)': (db) => migrateAudit(db),
  'no server/decision index, partial index of denials': (db) => {
    migrateAudit(db);
    db.exec(`DROP INDEX audit_events_server; DROP INDEX audit_events_decision;
      CREATE INDEX audit_events_denials ON audit_events (time_ms) WHERE decision = 'deny';`);
  },
  'time index only (floor)': (db) => {
    migrateAudit(db);
    db.exec('DROP INDEX audit_events_subject; DROP INDEX audit_events_client; DROP INDEX audit_events_server; DROP INDEX audit_events_decision;');
  },
};

const T0 = Date.UTC(2026, 11, 1);
function batch(start: number): AuditRow[] {
  const rows: AuditRow[] = [];
  for (let i = start; i < start + BATCH; i++) {
    const deny = i % 20 === 0;
    rows.push([new Date(T0 + i).toISOString(), T0 + i, `user-${i % 20}`, `client-${i % 3}`, '["user"]', 'notes', 'tools/call', 'echo',
      deny ? 'deny' : 'allow', deny ? null : 'read-tools', deny ? 'no rule allows tools/call echo' : 'rule read-tools allows', 12.5,
      '{"message":"[redacted]"}', 'a1b2c3d4-e5f6-4789-abcd-ef0123456789', 1, null]);
  }
  return rows;
}

const names = Object.keys(schemas);
const perRow: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
const dir = mkdtempSync(join(tmpdir(), 'warden-audit-indexes-'));
try {
  for (let round = 0; round < ROUNDS; round++) {
    // Rotate the order every round so drift in the machine's load hits every schema alike.
    const order = names.map((_, i) => names[(i + round) % names.length]!);
    for (const name of order) {
      const db = openDatabase(join(dir, `r${round}-${names.indexOf(name)}.db`));
      schemas[name]!(db);
      const write = createRowWriter(db);
      const batches = Array.from({ length: BATCHES }, (_, b) => batch(b * BATCH));
      const before = process.cpuUsage();
      for (const rows of batches) write(rows);
      const used = process.cpuUsage(before);
      perRow[name]!.push((used.user + used.system) / (BATCHES * BATCH));
      db.close();
    }
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}

const base = perRow[names[0]!]!;
console.log(`${ROUNDS} rounds × ${BATCHES} transactions of ${BATCH} rows; CPU µs per row (user + system)\n`);
console.log('| schema | median µs/row | min–max | ratio to as migrated (paired median) |');
console.log('|---|---|---|---|');
for (const name of names) {
  const xs = perRow[name]!;
  const paired = median(xs.map((x, i) => x / base[i]!));
  console.log(`| ${name} | ${median(xs).toFixed(2)} | ${Math.min(...xs).toFixed(2)}–${Math.max(...xs).toFixed(2)} | ${paired.toFixed(2)} |`);
}
