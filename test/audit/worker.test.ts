import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { openDatabase, type SqliteDatabase } from '../../src/storage/sqlite/database.ts';
import { createAuditSink, queryAuditEvents, SqliteAuditSink, SqliteWorkerAuditSink, type AuditEvent } from '../../src/audit/index.ts';
import { parseConfig } from '../../src/config/load.ts';
import { waitFor } from '../helpers/wait-for.ts';
import { decodeBatch, encodeBatch } from '../../src/audit/batch-encoding.ts';
import { toRow, type AuditRow } from '../../src/audit/row.ts';
import { createBatchWriter, openWriterConnection, WRITER_CACHE_PAGES } from '../../src/audit/sqlite-batches.ts';
import { sqliteDriver } from '../../src/storage/sqlite/driver.ts';

const UNCLOSED = fileURLToPath(new URL('./fixtures/unclosed-writer.ts', import.meta.url));

function event(subject: string, overrides: Partial<AuditEvent> = {}): AuditEvent {
  return { time: new Date().toISOString(), subject, clientId: 'client-1', roles: ['member'], server: 'notes', method: 'tools/call', target: 'read_note', decision: 'allow', rule: 'read', reason: 'ok', latencyUs: 4, arguments: { id: '[redacted]' }, sessionId: 's-1', ...overrides };
}

describe('audit: SQLite writes on a worker thread', () => {
  let dir: string;
  let n = 0;
  const fresh = (): { db: SqliteDatabase; path: string } => {
    const path = join(dir, `w${++n}.db`);
    return { db: openDatabase(path), path };
  };
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'warden-audit-worker-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('events go through the thread: flush resolves once this thread\'s connection can read them, fields intact', async () => {
    const { db } = fresh();
    const errors: Error[] = [];
    const sink = new SqliteWorkerAuditSink(db, (e) => errors.push(e));
    for (let i = 0; i < 600; i++) sink.record(event('w-1'));
    sink.record(event('w-fold', { subject: '', clientId: '', method: 'http', decision: 'deny', count: 7, remoteAddress: '192.0.2.1', arguments: undefined }));
    await sink.flush();
    assert.equal(queryAuditEvents(db, { subject: 'w-1', limit: 1000 }).length, 600);
    const [one] = queryAuditEvents(db, { subject: 'w-1', limit: 1 });
    assert.deepEqual({ ...one, time: 'x' }, { ...event('w-1'), time: 'x' });
    const [folded] = queryAuditEvents(db, { decision: 'deny' });
    assert.equal(folded!.count, 7);
    assert.equal(folded!.remoteAddress, '192.0.2.1');
    assert.notEqual(sink.worker.threadId, 0);
    await sink.close();
    assert.deepEqual(errors, []);
    db.close();
  });

  it('one message per batch: the events go to the thread encoded (it builds the rows, the same as toRow), 256 at a time or on the timer, and all reach the table', async () => {
    const { db } = fresh();
    const sink = new SqliteWorkerAuditSink(db, () => {}, { intervalMs: 60_000 });
    const posted: { type: string; rows?: AuditRow[] }[] = [];
    const postMessage = sink.worker.postMessage.bind(sink.worker);
    sink.worker.postMessage = (message: { type: string; strings?: string[]; values?: Float64Array }, transfer?: Parameters<typeof postMessage>[1]) => {
      posted.push({ type: message.type, rows: message.values ? decodeBatch({ strings: message.strings!, values: message.values }) : undefined });
      postMessage(message, transfer);
    };
    for (let i = 0; i < 600; i++) sink.record(event('batched', { latencyUs: i }));
    // Two full batches left at once; the rest waits for the timer (a minute here) or a flush.
    assert.deepEqual(posted.map((m) => [m.type, m.rows?.length]), [['write', 256], ['write', 256]]);
    const first = posted[0]!.rows![0]!;
    assert.deepEqual(first, toRow(event('batched', { latencyUs: 0, time: first[0] })));
    await sink.flush();
    assert.deepEqual(posted.map((m) => m.rows?.length), [256, 256, 88]);
    const rows = queryAuditEvents(db, { subject: 'batched', limit: 1000 });
    assert.deepEqual(rows.map((r) => r.latencyUs).sort((a, b) => a - b), Array.from({ length: 600 }, (_, i) => i));
    await sink.close();
    db.close();
  });

  it('the writer thread opens its connection with openWriterConnection: its small page cache (a plain connection has better-sqlite3\'s 16 MB), the busy timeout it is given', async () => {
    const { db, path } = fresh();
    const sink = new SqliteWorkerAuditSink(db, () => {}, { busyTimeoutMs: 1234 });
    sink.record(event('settings'));
    // The thread reports its connection first; every answer comes after it.
    await sink.flush();
    const Database = sqliteDriver();
    const plain = new Database(path);
    try {
      // synchronous NORMAL is also what better-sqlite3 builds SQLite to use in WAL mode, and WAL
      // is the file's (openDatabase set it): only the page cache tells the two connections apart.
      assert.equal(plain.pragma('cache_size', { simple: true }), -16_000);
      assert.deepEqual(sink.writerConnection, { cacheSize: WRITER_CACHE_PAGES, synchronous: 1, busyTimeoutMs: 1234, journalMode: 'wal' });
    } finally {
      plain.close();
    }
    await sink.close();
    db.close();
  });

  it('the writer thread\'s connection keeps a small page cache (PRAGMA cache_size): a transaction larger than the cache spills its pages to the WAL before it commits, and commits whole', async () => {
    const { db, path } = fresh();
    // The sink migrates the file; the thread's connection is opened as the thread opens it.
    await new SqliteWorkerAuditSink(db).close();
    const writer = openWriterConnection(sqliteDriver(), path, 5000);
    const walBytes = () => (existsSync(`${path}-wal`) ? statSync(`${path}-wal`).size : 0);
    const before = walBytes();
    let inside = 0;
    try {
      assert.equal(writer.pragma('cache_size', { simple: true }), WRITER_CACHE_PAGES);
      // ~20 000 events are ~4.6 MB of JSON, over a thousand pages: more than the cache holds, so
      // the WAL grows before the commit (with better-sqlite3's 16 MB cache it grows only at it).
      const rows = Array.from({ length: 20_000 }, (_, i) => toRow(event('catching-up', { latencyUs: i })));
      const write = createBatchWriter(writer);
      writer.transaction(() => {
        write(rows);
        inside = walBytes();
      })();
    } finally {
      writer.close();
    }
    assert.ok(inside - before > WRITER_CACHE_PAGES * 4096, `the WAL grew by ${inside - before} bytes inside the transaction`);
    const back = queryAuditEvents(db, { subject: 'catching-up', limit: 30_000 });
    assert.equal(back.length, 20_000);
    assert.deepEqual(back.map((r) => r.latencyUs).sort((a, b) => a - b).slice(0, 3), [0, 1, 2]);
    db.close();
  });

  it('the batch encoding gives the thread the same rows toRow makes, nulls, counts and repeated texts included', () => {
    const roles = ['member', 'ünïcode'];
    const events = [
      event('a', { roles }),
      event('a', { roles, target: null, rule: null, arguments: undefined, sessionId: null, latencyUs: 0.5 }),
      event('', { subject: '', clientId: '', roles: [], method: 'http', decision: 'deny', count: 7, remoteAddress: '192.0.2.1', arguments: undefined, sessionId: undefined }),
      event('b', { arguments: { text: 'x\u2028"y"', n: [1, null] }, reason: 'allowed by rule "echo"' }),
    ];
    const { strings, values } = encodeBatch(events);
    assert.deepEqual(decodeBatch({ strings, values }), events.map(toRow));
    assert.equal(new Set(strings).size, strings.length, 'each text once');
  });

  it('the batch encoding serialises a repeated arguments object once, and never gives one event another\'s arguments', () => {
    const shared = Object.freeze({ id: '[redacted]' });
    const events = [
      event('a', { arguments: shared }),
      event('a', { arguments: shared }),
      event('b', { arguments: { id: 'x', more: true } }),
      event('c', { arguments: shared }),
      event('d', { arguments: 'raw' }),
      event('e', { arguments: undefined }),
    ];
    const first = encodeBatch(events);
    assert.deepEqual(decodeBatch(first), events.map(toRow));
    // The next batch starts with the object the last one ended on, and with one it has not seen.
    const next = [event('f', { arguments: { id: '[redacted]' } }), event('g', { arguments: shared })];
    assert.deepEqual(decodeBatch(encodeBatch(next)), next.map(toRow));
    // A mutable object recorded twice and changed in between is written as it is each time.
    const mutable: Record<string, unknown> = { id: 'first' };
    const a = event('h', { arguments: mutable });
    const rowA = toRow(a);
    const encodedA = encodeBatch([a]);
    mutable.id = 'second';
    const b = event('i', { arguments: mutable });
    assert.deepEqual(decodeBatch(encodedA), [rowA]);
    assert.deepEqual(decodeBatch(encodeBatch([b])), [toRow(b)]);
    assert.match(decodeBatch(encodeBatch([b]))[0]![12]!, /second/);
  });

  it('close drains what is still queued and ends the thread', async () => {
    const { db } = fresh();
    const sink = new SqliteWorkerAuditSink(db);
    for (let i = 0; i < 1000; i++) sink.record(event('drained'));
    const exited = once(sink.worker, 'exit');
    await sink.close();
    await exited;
    assert.equal(queryAuditEvents(db, { subject: 'drained', limit: 2000 }).length, 1000);
    db.close();
  });

  it('a write refused by a locked database is reported through onError; later writes succeed', async () => {
    const { db, path } = fresh();
    const errors: Error[] = [];
    const sink = new SqliteWorkerAuditSink(db, (e) => errors.push(e), { busyTimeoutMs: 20 });
    const locker = openDatabase(path);
    locker.exec('BEGIN IMMEDIATE');
    sink.record(event('locked-out'));
    await sink.flush();
    locker.exec('ROLLBACK');
    locker.close();
    assert.equal(errors.length, 1);
    assert.match(errors[0]!.message, /could not write 1 audit event\(s\) to SQLite: database is locked/);
    sink.record(event('after-lock'));
    await sink.flush();
    assert.equal(queryAuditEvents(db, { subject: 'after-lock' }).length, 1);
    await sink.close();
    db.close();
  });

  it('a writer thread held up by another connection\'s lock: rows in flight stay bounded, the overflow is reported with its count, the event loop is never held, later events are written', async () => {
    const { db, path } = fresh();
    const errors: Error[] = [];
    const sink = new SqliteWorkerAuditSink(db, (e) => errors.push(e), { busyTimeoutMs: 60_000, maxInFlightEvents: 512 });
    const locker = openDatabase(path);
    locker.exec('BEGIN EXCLUSIVE'); // the thread's insert now waits (up to its busy timeout) for the lock
    let peak = 0;
    const started = performance.now();
    for (let i = 0; i < 5000; i++) {
      sink.record(event('held'));
      peak = Math.max(peak, sink.inFlightEvents);
    }
    const recordingMs = performance.now() - started;
    assert.ok(peak <= 512, `in flight stayed within the bound: peak ${peak}`);
    assert.ok(recordingMs < 5000, `recording never waited on the lock (${Math.round(recordingMs)} ms for 5000 events)`);
    assert.equal(errors.length, 1, 'the first drop is reported at once, later ones are folded into the next report');
    assert.match(errors[0]!.message, /^dropped \d+ audit event\(s\): the writer thread has \d+ in flight \(limit 512\).*database is locked/);
    locker.exec('COMMIT');
    locker.close();
    await sink.flush();
    sink.record(event('after-lock'));
    await sink.flush();
    assert.equal(queryAuditEvents(db, { subject: 'after-lock' }).length, 1, 'written once the lock is released');
    await sink.close();
    const written = queryAuditEvents(db, { subject: 'held', limit: 10_000 }).length;
    const reported = errors.map((e) => Number(/dropped (\d+)/.exec(e.message)?.[1])).reduce((a, b) => a + b, 0);
    assert.ok(written > 0, 'what was in flight is written after the lock');
    assert.match(errors.at(-1)!.message, /^audit writer thread caught up: dropped \d+ more audit event\(s\)/);
    assert.equal(written + reported, 5000, `every event is either written or counted as dropped: ${errors.map((e) => e.message).join('; ')}`);
    db.close();
  });

  it('a dead writer thread is reported, the process lives on, and events are written on the main thread', async () => {
    const { db } = fresh();
    const errors: Error[] = [];
    const sink = new SqliteWorkerAuditSink(db, (e) => errors.push(e));
    sink.record(event('before-crash'));
    await sink.flush();
    await sink.worker.terminate();
    await waitFor(() => errors.length > 0, 'the exit to be reported');
    assert.match(errors[0]!.message, /audit writer thread exited/);
    sink.record(event('after-crash'));
    await sink.flush();
    assert.equal(queryAuditEvents(db, { subject: 'before-crash' }).length, 1);
    assert.equal(queryAuditEvents(db, { subject: 'after-crash' }).length, 1);
    await sink.close();
    db.close();
  });

  it('a thread that cannot open the database reports it, and the sink falls back to this thread', async () => {
    const { db, path } = fresh();
    const errors: Error[] = [];
    rmSync(dir, { recursive: true, force: true }); // the file (and its directory) are gone before the thread opens it
    const sink = new SqliteWorkerAuditSink(db, (e) => errors.push(e));
    sink.record(event('orphan'));
    await sink.flush();
    await waitFor(() => errors.some((e) => /exited/.test(e.message)), 'the failed start to be reported');
    assert.ok(errors.some((e) => /audit writer thread failed/.test(e.message)), errors.map((e) => e.message).join('; '));
    await sink.flush();
    assert.equal(queryAuditEvents(db, { subject: 'orphan' }).length, 1, `written by the main connection (${path})`);
    await sink.close();
    db.close();
    dir = mkdtempSync(join(tmpdir(), 'warden-audit-worker-'));
  });

  it('retention prunes on the thread in chunks, writing batches in between; cancel stops it; a dead thread prunes here', async () => {
    const { db } = fresh();
    const sink = new SqliteWorkerAuditSink(db);
    const old = Date.UTC(2025, 0, 1);
    for (let i = 0; i < 3000; i++) sink.record(event('old', { time: new Date(old + i).toISOString() }));
    await sink.flush();
    const cut = Date.UTC(2026, 0, 1);
    const pruning = sink.prune(cut, 100);
    sink.record(event('during-prune'));
    const flushed = sink.flush();
    // Whole batches of 256 (batch.ts), one per chunk of 100: eleven of 256 and one of 184.
    assert.deepEqual(await pruning, { removed: 3000, chunks: 12 });
    await flushed;
    assert.equal(queryAuditEvents(db, { subject: 'during-prune' }).length, 1);
    assert.equal(queryAuditEvents(db, { subject: 'old' }).length, 0);

    // 300 batches of 10, so the prune below takes 300 chunks and the cancel finds it running.
    for (let i = 0; i < 3000; i++) {
      sink.record(event('old', { time: new Date(old + i).toISOString() }));
      if (i % 10 === 9) await sink.flush();
    }
    const cancelled = sink.prune(cut, 10);
    sink.cancelPrune();
    const partial = await cancelled;
    assert.ok(partial.removed > 0 && partial.removed < 3000, `stopped early: ${partial.removed}`);

    await sink.worker.terminate();
    const here = await sink.prune(cut, 500);
    assert.equal(here.removed, 3000 - partial.removed, 'the rest, pruned on the main connection');
    await sink.close();
    db.close();
  });

  it('createAuditSink uses the thread for a file and the inline writer for :memory: or audit.writer inline', async () => {
    const base = { publicUrl: 'https://m.example.com', servers: [{ name: 'n', path: '/mcp', upstream: { http: { url: 'https://u.example.com/' } } }] };
    for (const [writer, path] of [['worker', join(dir, 'c1.db')], ['worker', ':memory:'], ['inline', join(dir, 'c2.db')]] as const) {
      const db = openDatabase(path);
      const sink = createAuditSink(parseConfig({ ...base, audit: { writer } }), db);
      sink.record(event(`via-${writer}`));
      await sink.flush();
      assert.equal(queryAuditEvents(db, { subject: `via-${writer}` }).length, 1, `${writer} ${path}`);
      await sink.close();
      db.close();
    }
    assert.throws(() => new SqliteWorkerAuditSink(openDatabase(':memory:')), /needs a database file/);
    assert.ok(new SqliteAuditSink(openDatabase(':memory:')));
  });

  it('an unclosed sink and its thread never keep the process alive', async () => {
    const path = join(dir, 'unclosed.db');
    const child = spawn(process.execPath, ['--import', 'tsx', UNCLOSED, path], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
    let code: number | null = null;
    // 'close': exited and its stdout read to the end.
    child.once('close', (c) => (code = c));
    try {
      await waitFor(() => code !== null, 'the child to exit on its own', { timeoutMs: 20_000 });
    } finally {
      if (code === null) child.kill('SIGKILL');
    }
    assert.equal(code, 0);
    assert.equal(out, 'flushed\n');
    const db = openDatabase(path);
    assert.ok(queryAuditEvents(db, { subject: 'unclosed' }).length >= 1);
    db.close();
  });
});
