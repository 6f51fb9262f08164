import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { openDatabase, type SqliteDatabase } from '../../src/storage/sqlite/database.ts';
import { createAuditSink, queryAuditEvents, type AuditEvent } from '../../src/audit/index.ts';
import { pruneAuditEvents, pruneAuditEventsInChunks, startRetention } from '../../src/audit/retention.ts';
import { SqliteAuditSink } from '../../src/audit/sqlite-sink.ts';
import { parseConfig } from '../../src/config/load.ts';
import { main } from '../../src/cli/main.ts';
import { createLogger } from '../../src/log.ts';
import { waitFor } from '../helpers/wait-for.ts';

const DAY = 86_400_000;

function event(timeMs: number, subject = 'alice'): AuditEvent {
  return {
    time: new Date(timeMs).toISOString(),
    subject,
    clientId: 'client-1',
    roles: [],
    server: 'notes',
    method: 'tools/call',
    target: 'read_note',
    decision: 'allow',
    rule: 'read',
    reason: 'allowed by rule "read"',
    latencyUs: 2,
  };
}

function seed(db: SqliteDatabase, times: number[], subject = 'alice'): void {
  const sink = new SqliteAuditSink(db, (err) => assert.fail(err));
  for (const t of times) sink.record(event(t, subject));
  sink.flush();
}

const count = (db: SqliteDatabase) => db.prepare('SELECT COUNT(*) FROM audit_events').pluck().get() as number;

describe('audit retention: pruning old events in bounded chunks', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'warden-retention-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('removes exactly the events strictly older than the cut-off (an event at the cut-off is kept)', () => {
    const db = openDatabase(':memory:');
    const cut = Date.UTC(2026, 0, 10);
    seed(db, [cut - 2 * DAY, cut - 1, cut, cut + 1, cut + DAY]);
    assert.deepEqual(pruneAuditEvents(db, cut, { dryRun: true }), { removed: 2, chunks: 0 });
    assert.equal(count(db), 5, 'a dry run removes nothing');
    assert.equal(pruneAuditEvents(db, cut).removed, 2);
    assert.deepEqual(queryAuditEvents(db).map((e) => Date.parse(e.time)).sort(), [cut, cut + 1, cut + DAY]);
    assert.equal(pruneAuditEvents(db, cut).removed, 0, 'pruning again finds nothing');
    db.close();
  });

  it('a batch straddling the cut-off is rewritten with its newer events, and its key rows name only what it still holds', () => {
    const db = openDatabase(':memory:');
    const cut = Date.UTC(2026, 0, 10);
    const sink = new SqliteAuditSink(db, (err) => assert.fail(err));
    sink.record({ ...event(cut - 2, 'gone'), decision: 'deny' });
    sink.record({ ...event(cut - 1, 'kept'), server: 'old-server' });
    sink.record(event(cut, 'kept'));
    sink.record(event(cut + 5, 'kept'));
    sink.flush();
    assert.deepEqual(db.prepare("SELECT value FROM audit_batch_keys WHERE kind = 'decision'").pluck().all(), ['deny'], 'denials are keyed, allows are not');
    assert.equal(pruneAuditEvents(db, cut).removed, 2);
    assert.deepEqual(db.prepare('SELECT first_ms, last_ms, count FROM audit_batches').all(), [{ first_ms: cut, last_ms: cut + 5, count: 2 }]);
    assert.deepEqual(db.prepare('SELECT kind, value FROM audit_batch_keys ORDER BY kind, value').all(), [
      { kind: 'client_id', value: 'client-1' }, { kind: 'server', value: 'notes' }, { kind: 'subject', value: 'kept' },
    ]);
    db.close();
  });

  it('deletes in chunks of whole batches of at least the given size, one transaction each, and yields between chunks', async () => {
    const db = openDatabase(':memory:');
    const old = Date.UTC(2025, 0, 1);
    seed(db, Array.from({ length: 1050 }, (_, i) => old + i));
    seed(db, [Date.UTC(2026, 5, 1)], 'recent');
    assert.deepEqual(pruneAuditEvents(db, Date.UTC(2026, 0, 1), { chunk: 100, dryRun: true }).removed, 1050);
    let turns = 0;
    const ticker = setInterval(() => turns++, 0);
    const result = await pruneAuditEventsInChunks(db, Date.UTC(2026, 0, 1), { chunk: 100 });
    clearInterval(ticker);
    // Written as batches of 256 (batch.ts): four of 256 and one of 26, one batch per chunk here.
    assert.deepEqual(result, { removed: 1050, chunks: 5 });
    assert.ok(turns > 0, 'other work ran between chunks');
    assert.deepEqual(queryAuditEvents(db).map((e) => e.subject), ['recent']);
    seed(db, Array.from({ length: 250 }, (_, i) => old + i));
    seed(db, Array.from({ length: 250 }, (_, i) => old + i));
    assert.deepEqual(pruneAuditEvents(db, Date.UTC(2026, 0, 1), { chunk: 300 }), { removed: 500, chunks: 1 }, 'whole batches until at least 300 events');
    seed(db, Array.from({ length: 5 }, (_, i) => old + i));
    seed(db, Array.from({ length: 5 }, (_, i) => old + i));
    seed(db, Array.from({ length: 5 }, (_, i) => old + i));
    assert.deepEqual(pruneAuditEvents(db, Date.UTC(2026, 0, 1), { chunk: 6 }), { removed: 15, chunks: 2 }, 'two batches, then the last one');
    assert.deepEqual(queryAuditEvents(db).map((e) => e.subject), ['recent']);
    db.close();
  });

  it('the gateway sink prunes at start per audit.retention, and 0 keeps every event', async () => {
    const now = Date.UTC(2026, 2, 1);
    const config = (retention: unknown) =>
      parseConfig({ publicUrl: 'https://m.example.com', audit: { retention }, servers: [{ name: 'notes', path: '/mcp', upstream: { http: { url: 'https://u.example.com/' } } }] });
    const db = openDatabase(join(dir, 'start.db'));
    seed(db, [now - 40 * DAY, now - 31 * DAY, now - 29 * DAY, now - DAY]);
    const forever = createAuditSink(config(0), db, { now: () => now });
    await forever.close();
    assert.equal(count(db), 4, 'retention 0 keeps everything');
    const sink = createAuditSink(config('30d'), db, { now: () => now });
    await waitFor(() => count(db) === 2, 'the start-up prune');
    await sink.close();
    assert.deepEqual(queryAuditEvents(db).map((e) => Date.parse(e.time)), [now - DAY, now - 29 * DAY]);
    db.close();
  });

  it('upgrade: with audit.retention unset, old events are all kept; once it is set, a prune logs one info line with the count, never event contents', async () => {
    const now = Date.UTC(2026, 2, 1);
    const base = { publicUrl: 'https://m.example.com', servers: [{ name: 'notes', path: '/mcp', upstream: { http: { url: 'https://u.example.com/' } } }] };
    const db = openDatabase(join(dir, 'upgrade.db'));
    seed(db, [now - 400 * DAY, now - 100 * DAY, now - DAY], 'secret-subject');
    const logged = capture();
    const logger = createLogger('info', logged.stream);
    const unset = createAuditSink(parseConfig(base), db, { now: () => now, logger });
    await unset.flush();
    await unset.close();
    assert.equal(count(db), 3, 'an upgrade without audit.retention deletes nothing');
    const sink = createAuditSink(parseConfig({ ...base, audit: { retention: '90d' } }), db, { now: () => now, logger });
    await waitFor(() => count(db) === 1, 'the start-up prune');
    await waitFor(() => logged.text().includes('pruned'), 'the prune log line');
    await sink.close();
    const lines = logged.text().trim().split('\n').map((l) => JSON.parse(l) as { level: number; msg: string; removed?: number });
    const pruned = lines.filter((l) => /pruned/.test(l.msg));
    assert.equal(pruned.length, 1);
    assert.equal(pruned[0]!.level, 30, 'info');
    assert.equal(pruned[0]!.removed, 2);
    assert.doesNotMatch(logged.text(), /secret-subject|read_note/);
    db.close();
  });

  it('the periodic pruner runs on its interval, reports failures through onError and keeps running', async () => {
    const db = openDatabase(':memory:');
    let now = Date.UTC(2026, 0, 1);
    seed(db, [now - 10]);
    const errors: Error[] = [];
    const pruned: number[] = [];
    const pruner = startRetention(db, { retentionMs: 5, intervalMs: 20, now: () => now, onPruned: (r) => pruned.push(r.removed), onError: (e) => errors.push(e) });
    await waitFor(() => pruned.length === 1, 'the first prune');
    seed(db, [now]);
    now += 100;
    await waitFor(() => pruned.length === 2, 'the periodic prune');
    assert.deepEqual(pruned, [1, 1]);
    db.exec('DROP TABLE audit_batches');
    db.exec('CREATE TABLE audit_batches (id INTEGER PRIMARY KEY)');
    await waitFor(() => errors.length > 0, 'a failed prune reported');
    assert.match(errors[0]!.message, /audit retention prune failed/);
    await pruner.stop();
    db.close();
  });

  it('retention config: days, durations, forever; a bad value names audit.retention', () => {
    const base = { publicUrl: 'https://m.example.com', servers: [{ name: 'n', path: '/mcp', upstream: { http: { url: 'https://u.example.com/' } } }] };
    assert.equal(parseConfig(base).audit.retention, 0, 'default: keep forever (deleting is opt-in)');
    assert.equal(parseConfig({ ...base, audit: { retention: '90d' } }).audit.retention, 90 * DAY);
    assert.equal(parseConfig({ ...base, audit: { retention: 7 } }).audit.retention, 7 * DAY);
    assert.equal(parseConfig({ ...base, audit: { retention: '36h' } }).audit.retention, 36 * 3_600_000);
    assert.equal(parseConfig({ ...base, audit: { retention: 'forever' } }).audit.retention, 0);
    assert.throws(() => parseConfig({ ...base, audit: { retention: 'soon' } }), /audit\.retention/);
    assert.throws(() => parseConfig({ ...base, audit: { retention: -1 } }), /audit\.retention/);
  });
});

function capture() {
  let text = '';
  const stream = new Writable({ write(chunk, _enc, cb) { text += String(chunk); cb(); } });
  return { stream, text: () => text };
}

describe('mcp-warden audit prune', () => {
  let dir: string;
  let configFile: string;
  let dbPath: string;
  const run = async (...argv: string[]) => {
    const stdout = capture();
    const stderr = capture();
    const code = await main(argv, { stdout: stdout.stream, stderr: stderr.stream, env: {} });
    return { code, stdout: stdout.text(), stderr: stderr.text() };
  };
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'warden-prune-cli-'));
    dbPath = join(dir, 'warden.db');
    configFile = join(dir, 'warden.yaml');
    writeFileSync(configFile, `publicUrl: https://mcp.example.com
storage: { sqlite: { path: ${JSON.stringify(dbPath)} } }
servers:
  - name: notes
    path: /mcp
    upstream: { http: { url: "https://upstream.example.com/mcp" } }
`);
    const db = openDatabase(dbPath);
    const now = Date.now();
    seed(db, [now - 40 * DAY, now - 35 * DAY, now - 31 * DAY, now - 10 * DAY, now - 1000]);
    db.close();
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('--dry-run prints how many would go and removes nothing; then --before 30d removes them', async () => {
    const dry = await run('audit', 'prune', '--config', configFile, '--before', '30d', '--dry-run');
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, /^would remove 3 audit event\(s\) older than \d{4}-\d\d-\d\dT.* \(dry run\)\n$/);
    const db = openDatabase(dbPath);
    assert.equal(count(db), 5);
    db.close();
    const real = await run('audit', 'prune', '--config', configFile, '--before', '30d');
    assert.equal(real.code, 0, real.stderr);
    assert.match(real.stdout, /^removed 3 audit event\(s\) older than /);
    const again = await run('audit', 'prune', '--config', configFile, '--before', new Date(Date.now() - 20 * DAY).toISOString());
    assert.match(again.stdout, /^removed 0 audit event/);
    const left = await run('audit', '--config', configFile, '--json');
    assert.equal(left.stdout.trim().split('\n').length, 2);
  });

  it('a missing or bad --before is a usage error, not a stack trace', async () => {
    const missing = await run('audit', 'prune', '--config', configFile);
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, /--before/);
    const bad = await run('audit', 'prune', '--config', configFile, '--before', 'yesterday');
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /--before "yesterday"/);
    assert.doesNotMatch(bad.stderr, /\n\s+at /);
  });
});

describe('audit schema upgrade', () => {
  it('a database made before count/remote_address (audit migration 1) upgrades in place: old rows count 1', async () => {
    const { migrate } = await import('../../src/storage/sqlite/database.ts');
    const { AUDIT_MIGRATIONS, migrateAudit } = await import('../../src/audit/sqlite-sink.ts');
    const db = openDatabase(':memory:');
    migrate(db, 'audit', AUDIT_MIGRATIONS.slice(0, 1));
    db.prepare(`INSERT INTO audit_events (time, time_ms, subject, client_id, roles, server, method, target, decision, rule, reason, latency_us)
      VALUES ('2026-01-01T00:00:00.000Z', ?, 'old', 'c', '[]', 'notes', 'ping', NULL, 'allow', NULL, 'ok', 1)`).run(Date.UTC(2026, 0, 1));
    migrateAudit(db);
    const [old] = queryAuditEvents(db, { subject: 'old' });
    assert.equal(old!.subject, 'old');
    assert.equal(old!.count, undefined, 'count 1 is not shown');
    assert.equal(old!.remoteAddress, undefined);
    db.close();
  });

  it('SQL on the audit_events view: the table\'s types and constraints on INSERT, and DELETE erases events, their key rows and emptied batches', () => {
    const db = openDatabase(':memory:');
    const t0 = Date.UTC(2026, 0, 1);
    const sink = new SqliteAuditSink(db, (err) => assert.fail(err));
    for (let i = 0; i < 6; i++) sink.record({ ...event(t0 + i, i % 3 === 0 ? 'erase-me' : 'keep'), latencyUs: 7 });
    sink.flush();
    sink.record(event(t0 + 100, 'erase-me'));
    sink.flush();
    assert.deepEqual(db.prepare('SELECT DISTINCT typeof(latency_us) AS t, typeof(time_ms) AS ms, typeof(count) AS n FROM audit_events').all(), [{ t: 'real', ms: 'integer', n: 'integer' }], 'as the table\'s REAL and INTEGER columns');

    const insert = (values: Record<string, unknown>) => db.prepare(`INSERT INTO audit_events (time, time_ms, subject, client_id, roles, server, method, target, decision, rule, reason, latency_us)
      VALUES (@time, @time_ms, @subject, 'c', '[]', 'notes', 'ping', NULL, @decision, NULL, 'ok', 1)`).run({ time: 'x', time_ms: t0, subject: 's', decision: 'allow', ...values });
    assert.throws(() => insert({ subject: null }), /NOT NULL constraint failed/);
    assert.throws(() => insert({ decision: 'maybe' }), /CHECK constraint failed/);

    db.prepare("DELETE FROM audit_events WHERE subject = 'erase-me'").run();
    assert.deepEqual(queryAuditEvents(db, { subject: 'erase-me' }), []);
    assert.equal(queryAuditEvents(db, { subject: 'keep' }).length, 4);
    assert.equal(db.prepare("SELECT COUNT(*) FROM audit_events").pluck().get(), 4);
    assert.equal(db.prepare("SELECT COUNT(*) FROM audit_batch_keys WHERE value = 'erase-me'").pluck().get(), 0, 'no key row names an erased user');
    assert.deepEqual(db.prepare('SELECT count FROM audit_batches').pluck().all(), [4], 'the batch left empty is gone');
    assert.equal(db.prepare("SELECT COUNT(*) FROM audit_batches WHERE events LIKE '%erase-me%'").pluck().get(), 0, 'nothing of the erased events is stored');
    assert.deepEqual(pruneAuditEvents(db, t0 + 3, { dryRun: true }), { removed: 2, chunks: 0 }, 'erased places are not counted');
    assert.equal(pruneAuditEvents(db, t0 + 3).removed, 2);
    assert.deepEqual(queryAuditEvents(db).map((e) => Date.parse(e.time) - t0), [5, 4]);

    // Values as the table's columns stored them: json(…) and numbers as text, numeric text as a number.
    db.prepare(`INSERT INTO audit_events (time, time_ms, subject, client_id, roles, server, method, target, decision, rule, reason, latency_us, arguments)
      VALUES ('t', ?, 42, 'c', json('["r"]'), 'notes', 'ping', NULL, 'allow', NULL, 'ok', '3', json('{"a":1}'))`).run(String(t0 + 50));
    const [typed] = queryAuditEvents(db, { subject: '42' });
    assert.deepEqual([typed!.roles, typed!.arguments, typed!.latencyUs, Date.parse(typed!.time)], [['r'], { a: 1 }, 3, NaN]);
    assert.deepEqual(db.prepare("SELECT typeof(time_ms) AS ms, typeof(subject) AS s, typeof(arguments) AS a FROM audit_events WHERE subject = '42'").get(), { ms: 'integer', s: 'text', a: 'text' });
    db.close();
  });

  it('a batch whose newer events were erased through the view is pruned whole once its older ones are past the cut-off', () => {
    const db = openDatabase(':memory:');
    const cut = Date.UTC(2026, 0, 10);
    const sink = new SqliteAuditSink(db, (err) => assert.fail(err));
    sink.record(event(cut - 100, 'old'));
    sink.record(event(cut + 100, 'erase-me'));
    sink.flush();
    db.prepare("DELETE FROM audit_events WHERE subject = 'erase-me'").run();
    assert.deepEqual(pruneAuditEvents(db, cut, { dryRun: true }), { removed: 1, chunks: 0 });
    assert.equal(pruneAuditEvents(db, cut).removed, 1);
    assert.deepEqual(db.prepare('SELECT COUNT(*) AS batches, (SELECT COUNT(*) FROM audit_batch_keys) AS keys FROM audit_batches').get(), { batches: 0, keys: 0 });
    db.close();
  });

  it('two processes migrating one file at once: the one that waited for the lock (past its busy timeout) finds the step applied (no "table already exists")', async () => {
    const { migrate } = await import('../../src/storage/sqlite/database.ts');
    const { AUDIT_MIGRATIONS } = await import('../../src/audit/sqlite-sink.ts');
    const dir = mkdtempSync(join(tmpdir(), 'warden-migrate-race-'));
    const file = join(dir, 'race.db');
    const holder = openDatabase(file);
    migrate(holder, 'audit', AUDIT_MIGRATIONS.slice(0, 2));
    // This connection is mid-way through applying step 3 (not committed) when the other process
    // reads the applied version and asks for the write lock.
    holder.exec('BEGIN IMMEDIATE');
    holder.exec(AUDIT_MIGRATIONS[2]!);
    holder.prepare("INSERT INTO schema_migrations (owner, version, applied_at) VALUES ('audit', 3, 0)").run();
    const script = `
      import { openDatabase } from ${JSON.stringify(new URL('../../src/storage/sqlite/database.ts', import.meta.url).href)};
      import { migrateAudit } from ${JSON.stringify(new URL('../../src/audit/sqlite-sink.ts', import.meta.url).href)};
      const db = openDatabase(${JSON.stringify(file)});
      // Shorter than the other process holds the lock: migrations wait for it all the same.
      db.pragma('busy_timeout = 100');
      process.stdout.write('migrating\\n');
      migrateAudit(db);
      process.stdout.write('done ' + db.pragma('busy_timeout', { simple: true }) + '\\n');`;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = once(child, 'exit');
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d));
    child.stderr.on('data', (d: Buffer) => (err += d));
    await waitFor(() => out.includes('migrating'), 'the other process to start migrating');
    await sleep(600);
    holder.exec('COMMIT');
    const [code] = (await exited) as [number | null];
    assert.equal(code, 0, err);
    assert.match(out, /done 100\b/, 'the connection\'s own busy timeout is back afterwards');
    assert.deepEqual(holder.prepare("SELECT version FROM schema_migrations WHERE owner = 'audit' ORDER BY version").pluck().all(), [1, 2, 3]);
    holder.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('rows of audit_events as a table (migration 2) move into batches: every field, their order and the view\'s ids kept; the view takes inserts', async () => {
    const { migrate } = await import('../../src/storage/sqlite/database.ts');
    const { AUDIT_MIGRATIONS, migrateAudit } = await import('../../src/audit/sqlite-sink.ts');
    const db = openDatabase(':memory:');
    migrate(db, 'audit', AUDIT_MIGRATIONS.slice(0, 2));
    const insert = db.prepare(`INSERT INTO audit_events
      (time, time_ms, subject, client_id, roles, server, method, target, decision, rule, reason, latency_us, arguments, session_id, count, remote_address)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`);
    const t0 = Date.UTC(2026, 0, 1);
    // 300 rows: two batches after the move (256 + 44); times not in id order, as clocks allow.
    const rows = Array.from({ length: 300 }, (_, i) => {
      const t = t0 + (i % 7 === 0 ? i - 3 : i) * 1000;
      return [new Date(t).toISOString(), t, `user-${i % 4}`, `client-${i % 3}`, '["admin"]', i % 5 === 0 ? 'other' : 'notes', 'tools/call', i % 2 ? 'read_note' : null,
        i % 6 === 0 ? 'deny' : 'allow', i % 6 === 0 ? null : 'read', `reason ${i}`, i + 0.5, i % 2 ? '{"id":"[redacted]"}' : null, i % 3 ? `s-${i}` : null, i % 10 === 0 ? 4 : 1, i % 10 === 0 ? '203.0.113.9' : null];
    });
    for (const row of rows) insert.run(row);
    const before = db.prepare('SELECT * FROM audit_events ORDER BY id').all() as Record<string, unknown>[];
    const queriedBefore = [queryAuditEvents(db, { limit: 1000 }), queryAuditEvents(db, { subject: 'user-1', limit: 7 }), queryAuditEvents(db, { decision: 'deny', server: 'other' }), queryAuditEvents(db, { clientId: 'client-2', since: t0 + 100_000, until: t0 + 200_000 })];

    migrateAudit(db);
    assert.equal(db.prepare("SELECT type FROM sqlite_master WHERE name = 'audit_events'").pluck().get(), 'view');
    assert.deepEqual(db.prepare('SELECT count, json_array_length(events) AS n FROM audit_batches ORDER BY id').all(), [{ count: 256, n: 256 }, { count: 44, n: 44 }]);
    const after = db.prepare('SELECT * FROM audit_events ORDER BY id').all() as Record<string, unknown>[];
    assert.deepEqual(after.map(({ id: _, ...r }) => r), before.map(({ id: _, ...r }) => r), 'every column of every row, in insertion order');
    assert.deepEqual(
      [queryAuditEvents(db, { limit: 1000 }), queryAuditEvents(db, { subject: 'user-1', limit: 7 }), queryAuditEvents(db, { decision: 'deny', server: 'other' }), queryAuditEvents(db, { clientId: 'client-2', since: t0 + 100_000, until: t0 + 200_000 })],
      queriedBefore,
      'the same answers as from the table',
    );

    // An older mcp-warden (or another tool) inserting into audit_events as into the table.
    insert.run([new Date(t0 + 10_000_000).toISOString(), t0 + 10_000_000, 'via-view', 'c', '[]', 'notes', 'ping', null, 'allow', null, 'ok', 1, null, null, 1, null]);
    assert.deepEqual(queryAuditEvents(db, { subject: 'via-view' }).map((e) => e.method), ['ping']);
    assert.equal(queryAuditEvents(db, { limit: 1 })[0]!.subject, 'via-view');
    assert.equal(pruneAuditEvents(db, t0 + 150_000).removed, (before as { time_ms: number }[]).filter((r) => r.time_ms < t0 + 150_000).length);
    assert.ok(queryAuditEvents(db, { limit: 1000 }).every((e) => Date.parse(e.time) >= t0 + 150_000));
    db.close();
  });
});
