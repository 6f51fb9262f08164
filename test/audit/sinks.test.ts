import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { setImmediate as nextTurn, setTimeout as sleep } from 'node:timers/promises';
import { openDatabase, type SqliteDatabase } from '../../src/storage/sqlite/database.ts';
import { BATCHES_BY_KEY_SQL, BATCHES_SQL } from '../../src/audit/query.ts';
import { createAuditSink, JsonlAuditSink, migrateAudit, queryAuditEvents, redactArguments, REDACTED, SqliteAuditSink, type AuditEvent } from '../../src/audit/index.ts';
import { parseConfig } from '../../src/config/load.ts';
import { MAX_QUEUE } from '../../src/audit/batch.ts';
import { waitFor } from '../helpers/wait-for.ts';

function event(overrides: Partial<AuditEvent> = {}): AuditEvent {
  return {
    time: '2026-01-21T10:00:00.000Z',
    subject: 'alice',
    clientId: 'client-1',
    roles: ['admin'],
    server: 'notes',
    method: 'tools/call',
    target: 'delete_note',
    decision: 'allow',
    rule: 'admin-write-tools',
    reason: 'allowed by rule "admin-write-tools"',
    latencyUs: 3.5,
    ...overrides,
  };
}

describe('audit: SQLite sink records every decision with its rule and reason', () => {
  let dir: string;
  let db: SqliteDatabase;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'warden-audit-'));
    db = openDatabase(join(dir, 'warden.db'));
  });
  after(() => {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('record only queues: the batch is written by the 100 ms timer, not on the next turn', async () => {
    const sink = new SqliteAuditSink(db);
    sink.record(event({ subject: 'batch-1' }));
    sink.record(event({ subject: 'batch-1' }));
    assert.equal(queryAuditEvents(db, { subject: 'batch-1' }).length, 0);
    await nextTurn();
    assert.equal(queryAuditEvents(db, { subject: 'batch-1' }).length, 0, 'one request per turn must not mean one transaction per request');
    await waitFor(() => queryAuditEvents(db, { subject: 'batch-1' }).length === 2, 'the timer to write the batch');
  });

  it('flush writes the queue at once, for readers in the same process', () => {
    const sink = new SqliteAuditSink(db);
    sink.record(event({ subject: 'flushed' }));
    sink.flush();
    assert.equal(queryAuditEvents(db, { subject: 'flushed' }).length, 1);
  });

  it(`a queue of ${MAX_QUEUE} events is written at once, without waiting for the timer`, () => {
    const sink = new SqliteAuditSink(db);
    for (let i = 0; i < MAX_QUEUE - 1; i++) sink.record(event({ subject: 'burst' }));
    assert.equal(queryAuditEvents(db, { subject: 'burst', limit: 1000 }).length, 0);
    sink.record(event({ subject: 'burst' }));
    assert.equal(queryAuditEvents(db, { subject: 'burst', limit: 1000 }).length, MAX_QUEUE);
  });

  it('a pending batch does not keep the process alive, and close writes it', async () => {
    const file = join(dir, 'exit.db');
    const script = `
      import { openDatabase } from ${JSON.stringify(new URL('../../src/storage/sqlite/database.ts', import.meta.url).href)};
      import { SqliteAuditSink } from ${JSON.stringify(new URL('../../src/audit/sqlite-sink.ts', import.meta.url).href)};
      const db = openDatabase(${JSON.stringify(file)});
      const lost = new SqliteAuditSink(db, undefined, { intervalMs: 600_000 });
      lost.record(${JSON.stringify(event({ subject: 'never-written' }))});
      const kept = new SqliteAuditSink(db, undefined, { intervalMs: 600_000 });
      kept.record(${JSON.stringify(event({ subject: 'closed' }))});
      await kept.close();`;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: 'inherit' });
    const killer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    const [code, signal] = (await once(child, 'exit')) as [number | null, string | null];
    clearTimeout(killer);
    assert.deepEqual([code, signal], [0, null], 'the child exits by itself while a 10-minute timer is pending');
    const check = openDatabase(file);
    try {
      assert.equal(queryAuditEvents(check, { subject: 'closed' }).length, 1);
      assert.equal(queryAuditEvents(check, { subject: 'never-written' }).length, 0);
    } finally {
      check.close();
    }
  });

  it('every field round-trips, and queries filter by user, client, server, decision and time, newest first', async () => {
    const sink = new SqliteAuditSink(db);
    sink.record(event({ time: '2026-02-01T10:00:00.000Z', subject: 'q-bob', clientId: 'c-a', decision: 'deny', rule: null, reason: 'this tool requires a role you do not have', arguments: { id: REDACTED }, sessionId: 's-1' }));
    sink.record(event({ time: '2026-02-01T11:00:00.000Z', subject: 'q-bob', clientId: 'c-b', server: 'other', target: 'read_note' }));
    sink.record(event({ time: '2026-02-01T12:00:00.000Z', subject: 'q-alice', clientId: 'c-a' }));
    await sink.close();
    const bob = queryAuditEvents(db, { subject: 'q-bob' });
    assert.deepEqual(bob.map((e) => e.time), ['2026-02-01T11:00:00.000Z', '2026-02-01T10:00:00.000Z']);
    assert.deepEqual(bob[1], event({ time: '2026-02-01T10:00:00.000Z', subject: 'q-bob', clientId: 'c-a', decision: 'deny', rule: null, reason: 'this tool requires a role you do not have', arguments: { id: REDACTED }, sessionId: 's-1' }));
    assert.deepEqual(queryAuditEvents(db, { clientId: 'c-a', since: Date.parse('2026-02-01T00:00:00Z') }).map((e) => e.subject), ['q-alice', 'q-bob']);
    assert.deepEqual(queryAuditEvents(db, { server: 'other' }).map((e) => e.target), ['read_note']);
    assert.deepEqual(queryAuditEvents(db, { decision: 'deny', subject: 'q-bob' }).map((e) => e.rule), [null]);
    assert.deepEqual(queryAuditEvents(db, { since: Date.parse('2026-02-01T10:30:00Z'), until: Date.parse('2026-02-01T12:00:00Z') }).map((e) => e.subject), ['q-bob']);
    assert.equal(queryAuditEvents(db, { subject: 'q-bob', limit: 1 }).length, 1);
  });

  it('the user and time queries walk an index of the batches, not a scan of every event', () => {
    migrateAudit(db);
    const plan = (sql: string) => (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all('subject', 'x', 0, 1) as { detail: string }[]).map((r) => r.detail).join('; ');
    assert.match(plan(BATCHES_BY_KEY_SQL), /SEARCH k USING PRIMARY KEY \(kind=\? AND value=\? AND last_ms>\?\)/);
    assert.doesNotMatch(plan(BATCHES_BY_KEY_SQL), /TEMP B-TREE/, 'newest first without sorting');
    const bare = (sql: string) => (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(0, 1) as { detail: string }[]).map((r) => r.detail).join('; ');
    assert.match(bare(BATCHES_SQL), /audit_batches_last/);
    assert.doesNotMatch(bare(BATCHES_SQL), /TEMP B-TREE/);
  });

  it('a write failure is reported, not thrown at the caller', async () => {
    const other = openDatabase(':memory:');
    const errors: Error[] = [];
    const sink = new SqliteAuditSink(other, (e) => errors.push(e));
    other.close();
    sink.record(event());
    // From the timer: an exception there would be uncaught and fail the whole file.
    await waitFor(() => errors.length > 0, 'the timer to report the failed write');
    assert.equal(errors.length, 1);
    assert.match(errors[0]!.message, /could not write 1 audit event/);
  });
});

describe('audit: JSON Lines sink', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'warden-jsonl-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('appends one JSON object per line and flushes on close', async () => {
    const file = join(dir, 'nested', 'audit.jsonl');
    const first = new JsonlAuditSink(file);
    first.record(event({ subject: 'one' }));
    first.record(event({ subject: 'two', decision: 'deny', rule: null }));
    await first.close();
    const second = new JsonlAuditSink(file);
    second.record(event({ subject: 'three' }));
    await second.close();
    const lines = readFileSync(file, 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l) as AuditEvent);
    assert.deepEqual(lines.map((l) => l.subject), ['one', 'two', 'three']);
    assert.deepEqual(lines[1], event({ subject: 'two', decision: 'deny', rule: null }));
  });

  it('record is not a write per event: lines reach the file on the timer, in one write', async () => {
    const file = join(dir, 'timed.jsonl');
    // A longer interval than the default, so "not yet" below holds on a loaded machine too.
    const sink = new JsonlAuditSink(file, undefined, { intervalMs: 500 });
    sink.record(event({ subject: 'timed-1' }));
    sink.record(event({ subject: 'timed-2' }));
    await nextTurn();
    await sleep(20);
    assert.equal(readFileSync(file, 'utf8'), '', 'nothing written before the timer');
    await waitFor(() => readFileSync(file, 'utf8') !== '', 'the timer to write the lines');
    await sink.close();
    assert.deepEqual(readFileSync(file, 'utf8').trimEnd().split('\n').map((l) => (JSON.parse(l) as AuditEvent).subject), ['timed-1', 'timed-2']);
  });

  it('createAuditSink writes to SQLite and to audit.jsonl when configured', async () => {
    const file = join(dir, 'both.jsonl');
    const db = openDatabase(':memory:');
    const config = parseConfig({ publicUrl: 'https://m.example.com', audit: { jsonl: file }, servers: [{ name: 'n', path: '/mcp', upstream: { http: { url: 'https://u.example.com/' } } }] });
    const sink = createAuditSink(config, db);
    sink.record(event({ subject: 'fan-out' }));
    await sink.close();
    assert.equal(queryAuditEvents(db, { subject: 'fan-out' }).length, 1);
    assert.equal(JSON.parse(readFileSync(file, 'utf8')).subject, 'fan-out');
    db.close();
  });
});

describe('audit: argument redaction', () => {
  it('by default keeps argument names and redacts every value', () => {
    assert.deepEqual(redactArguments({ title: 'salary review', body: { text: 'x' } }, false), { title: REDACTED, body: REDACTED });
    assert.equal(redactArguments('raw', false), REDACTED);
    assert.equal(redactArguments(undefined, false), undefined);
  });

  it('calls with the same argument names share one frozen redacted object; other names, order or values never leak into it', () => {
    const first = redactArguments({ title: 'salary review', body: 'x' }, false);
    const again = redactArguments({ title: 'another', body: 'secret y' }, false);
    assert.equal(again, first, 'the same names in the same order: the same object');
    assert.ok(Object.isFrozen(first));
    const reordered = redactArguments({ body: 'x', title: 't' }, false);
    assert.notEqual(reordered, first);
    assert.deepEqual(Object.keys(reordered as object), ['body', 'title']);
    assert.deepEqual(redactArguments({ title: 't', body: 'b', extra: 1 }, false), { title: REDACTED, body: REDACTED, extra: REDACTED });
    assert.deepEqual(redactArguments({}, false), {});
    assert.deepEqual(redactArguments({ title: 't' }, false), { title: REDACTED });
  });

  it('with includeArguments keeps values but still redacts credential-like names, at any depth', () => {
    const out = redactArguments({ path: '/public/a', auth: { apiKey: 'k', password: 'p', nested: [{ access_token: 't' }] }, n: 3 }, true);
    assert.deepEqual(out, { path: '/public/a', auth: { apiKey: REDACTED, password: REDACTED, nested: [{ access_token: REDACTED }] }, n: 3 });
  });

  it('with includeArguments cuts long strings and refuses huge payloads', () => {
    const long = redactArguments({ s: 'a'.repeat(5000) }, true) as { s: string };
    assert.ok(long.s.length < 1100 && long.s.endsWith('[5000 chars]'));
    const huge = redactArguments({ items: Array.from({ length: 100 }, () => 'b'.repeat(1000)) }, true);
    assert.match(String(huge), /bytes of arguments, not recorded/);
  });
});
