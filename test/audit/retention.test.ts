import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
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

  it('deletes in chunks of the given size, one transaction each, and yields between chunks', async () => {
    const db = openDatabase(':memory:');
    const old = Date.UTC(2025, 0, 1);
    seed(db, Array.from({ length: 1050 }, (_, i) => old + i));
    seed(db, [Date.UTC(2026, 5, 1)], 'recent');
    assert.deepEqual(pruneAuditEvents(db, Date.UTC(2026, 0, 1), { chunk: 100, dryRun: true }).removed, 1050);
    let turns = 0;
    const ticker = setInterval(() => turns++, 0);
    const result = await pruneAuditEventsInChunks(db, Date.UTC(2026, 0, 1), { chunk: 100 });
    clearInterval(ticker);
    assert.deepEqual(result, { removed: 1050, chunks: 11 });
    assert.ok(turns > 0, 'other work ran between chunks');
    assert.deepEqual(queryAuditEvents(db).map((e) => e.subject), ['recent']);
    seed(db, Array.from({ length: 250 }, (_, i) => old + i));
    assert.deepEqual(pruneAuditEvents(db, Date.UTC(2026, 0, 1), { chunk: 100 }), { removed: 250, chunks: 3 });
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
    db.exec('DROP TABLE audit_events');
    db.exec("DELETE FROM schema_migrations WHERE owner = 'audit'");
    db.exec('CREATE TABLE audit_events (id INTEGER PRIMARY KEY)');
    db.exec("INSERT INTO schema_migrations (owner, version, applied_at) VALUES ('audit', 2, 0)");
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
    const indexes = db.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'audit_events'").pluck().all();
    assert.ok(indexes.includes('audit_events_time'), 'pruning uses the time index');
    const plan = db.prepare('EXPLAIN QUERY PLAN SELECT id FROM audit_events WHERE time_ms < ? ORDER BY time_ms LIMIT 1000').all(0) as { detail: string }[];
    assert.match(plan.map((p) => p.detail).join(' '), /audit_events_time/);
    db.close();
  });
});
