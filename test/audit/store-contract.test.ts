/**
 * The audit storage contract, run against every backend: events recorded through the sink are
 * read back by the query `mcp-warden audit` uses, with every filter, newest first; retention
 * removes exactly the events older than the cut-off, in chunks.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDatabase } from '../../src/storage/sqlite/database.ts';
import { SqliteAuditSink, queryAuditEvents, pruneAuditEvents, type AuditEvent, type AuditQuery } from '../../src/audit/index.ts';
import { MAX_IN_FLIGHT, migrateAuditPostgres, PostgresAuditSink, pruneAuditEventsPostgres, queryAuditEventsPostgres } from '../../src/audit/postgres-sink.ts';
import { openTestPostgres, postgresUnavailable } from '../helpers/postgres.ts';

interface AuditHarness {
  record(e: AuditEvent): void;
  flush(): Promise<void>;
  query(q?: AuditQuery): Promise<AuditEvent[]>;
  prune(before: number, chunk: number): Promise<number>;
  close(): Promise<void>;
}

const T0 = Date.parse('2026-01-21T10:00:00.000Z');
function event(i: number, overrides: Partial<AuditEvent> = {}): AuditEvent {
  return {
    time: new Date(T0 + i * 1000).toISOString(),
    subject: i % 2 ? 'bob' : 'alice',
    clientId: `client-${i % 3}`,
    roles: i % 2 ? ['member'] : ['admin'],
    server: i % 4 === 0 ? 'files' : 'notes',
    method: 'tools/call',
    target: `tool_${i}`,
    decision: i % 5 === 0 ? 'deny' : 'allow',
    rule: i % 5 === 0 ? null : 'read-tools',
    reason: `reason ${i}`,
    latencyUs: i + 0.5,
    sessionId: `s-${i}`,
    ...overrides,
  };
}

function runAuditContract(backend: string, open: () => Promise<AuditHarness>, skip?: string): void {
  describe(`audit storage contract: ${backend}`, { skip }, () => {
    async function withAudit(fn: (h: AuditHarness) => Promise<void>): Promise<void> {
      const h = await open();
      try { await fn(h); } finally { await h.close(); }
    }

    it('every recorded event is read back whole, newest first', () => withAudit(async (h) => {
      for (let i = 0; i < 30; i++) h.record(event(i));
      h.record(event(30, { arguments: { path: '[redacted]' }, count: 7, remoteAddress: '203.0.113.9', sessionId: null }));
      await h.flush();
      const all = await h.query({ limit: 1000 });
      assert.equal(all.length, 31);
      assert.deepEqual(all[0], { ...event(30, { arguments: { path: '[redacted]' }, count: 7, remoteAddress: '203.0.113.9' }), sessionId: null });
      assert.deepEqual(all[30], event(0));
      assert.deepEqual(all.map((e) => e.time), [...all.map((e) => e.time)].sort().reverse());
    }));

    it('filters by user, client, server, decision and time range; limit caps the answer', () => withAudit(async (h) => {
      for (let i = 0; i < 40; i++) h.record(event(i));
      await h.flush();
      const expect = (q: AuditQuery, pred: (i: number) => boolean) => async () => {
        const got = (await h.query({ ...q, limit: 1000 })).map((e) => Number(e.target!.slice(5))).sort((a, b) => a - b);
        assert.deepEqual(got, [...Array(40).keys()].filter(pred), JSON.stringify(q));
      };
      await expect({ subject: 'bob' }, (i) => i % 2 === 1)();
      await expect({ clientId: 'client-2' }, (i) => i % 3 === 2)();
      await expect({ server: 'files' }, (i) => i % 4 === 0)();
      await expect({ decision: 'deny' }, (i) => i % 5 === 0)();
      await expect({ decision: 'allow' }, (i) => i % 5 !== 0)();
      await expect({ server: 'files', decision: 'allow' }, (i) => i % 4 === 0 && i % 5 !== 0)();
      await expect({ since: T0 + 10_000, until: T0 + 20_000 }, (i) => i >= 10 && i < 20)();
      await expect({ subject: 'alice', decision: 'deny' }, (i) => i % 2 === 0 && i % 5 === 0)();
      assert.equal((await h.query({ limit: 5 })).length, 5);
      assert.equal((await h.query()).length, 40, 'default limit 100');
    }));

    it('written over many batches with times out of write order: newest first, and every limit cuts at the right event', () => withAudit(async (h) => {
      // 60 events in 12 writes of 5; event n's time is a permutation of 0..59 s, so later writes
      // hold older events than earlier ones (clocks of several sessions, a slow decision).
      const order = Array.from({ length: 60 }, (_, n) => (n * 37) % 60);
      for (let n = 0; n < 60; n++) {
        h.record(event(order[n]!));
        if (n % 5 === 4) await h.flush();
      }
      const newest = (pred: (i: number) => boolean) => [...order].filter(pred).sort((a, b) => b - a);
      const got = async (q: AuditQuery) => (await h.query(q)).map((e) => Number(e.target!.slice(5)));
      for (const limit of [1, 2, 7, 13, 59, 60, 100]) {
        assert.deepEqual(await got({ limit }), newest(() => true).slice(0, limit), `limit ${limit}`);
        assert.deepEqual(await got({ subject: 'bob', limit }), newest((i) => i % 2 === 1).slice(0, limit), `bob, limit ${limit}`);
        assert.deepEqual(await got({ decision: 'deny', server: 'files', limit }), newest((i) => i % 5 === 0 && i % 4 === 0).slice(0, limit), `denials on files, limit ${limit}`);
        assert.deepEqual(await got({ since: T0 + 20_000, until: T0 + 45_000, limit }), newest((i) => i >= 20 && i < 45).slice(0, limit), `time range, limit ${limit}`);
      }
    }));

    it('a prune whose cut falls inside a write keeps that write\'s newer events, and a user left with no events is gone from the filters', () => withAudit(async (h) => {
      for (let i = 0; i < 10; i++) h.record(event(i, { subject: i < 4 ? 'early' : 'late' }));
      await h.flush();
      assert.equal(await h.prune(T0 + 4_000, 1000), 4);
      assert.deepEqual(await h.query({ subject: 'early' }), []);
      assert.deepEqual((await h.query({ subject: 'late' })).map((e) => e.target), ['tool_9', 'tool_8', 'tool_7', 'tool_6', 'tool_5', 'tool_4']);
      assert.deepEqual((await h.query({ server: 'files' })).map((e) => e.target), ['tool_8', 'tool_4'], 'the kept events keep their other keys');
    }));

    it('retention removes exactly the events older than the cut-off, chunk by chunk', () => withAudit(async (h) => {
      for (let i = 0; i < 25; i++) h.record(event(i));
      await h.flush();
      assert.equal(await h.prune(T0 + 12_000, 5), 12);
      const left = await h.query({ limit: 1000 });
      assert.equal(left.length, 13);
      assert.ok(left.every((e) => Date.parse(e.time) >= T0 + 12_000));
      assert.equal(await h.prune(T0 + 12_000, 5), 0, 'a second prune finds nothing');
    }));
  });
}

runAuditContract('sqlite (file)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'warden-audit-contract-'));
  const db = openDatabase(join(dir, 'w.db'));
  const sink = new SqliteAuditSink(db);
  return {
    record: (e) => sink.record(e),
    flush: async () => sink.flush(),
    query: async (q) => queryAuditEvents(db, q),
    prune: async (before, chunk) => pruneAuditEvents(db, before, { chunk }).removed,
    close: async () => { await sink.close(); db.close(); rmSync(dir, { recursive: true, force: true }); },
  };
});

runAuditContract('sqlite (:memory:)', async () => {
  const db = openDatabase(':memory:');
  const sink = new SqliteAuditSink(db);
  return {
    record: (e) => sink.record(e),
    flush: async () => sink.flush(),
    query: async (q) => queryAuditEvents(db, q),
    prune: async (before, chunk) => pruneAuditEvents(db, before, { chunk }).removed,
    close: async () => { await sink.close(); db.close(); },
  };
});

runAuditContract('postgres', async () => {
  const db = await openTestPostgres();
  await migrateAuditPostgres(db);
  const errors: Error[] = [];
  const sink = new PostgresAuditSink(db, (err) => errors.push(err));
  return {
    record: (e) => sink.record(e),
    flush: () => sink.flush(),
    query: (q) => queryAuditEventsPostgres(db, q),
    prune: (before, chunk) => pruneAuditEventsPostgres(db, before, chunk),
    close: async () => { await sink.close(); await db.drop(); assert.deepEqual(errors, []); },
  };
}, await postgresUnavailable());

describe('audit on PostgreSQL off the request path', { skip: await postgresUnavailable() }, () => {
  it('a database that refuses writes costs the request path nothing: record returns at once, the failure is reported with its count', async () => {
    const db = await openTestPostgres();
    try {
      await migrateAuditPostgres(db);
      await db.query('break_audit', 'ALTER TABLE audit_events RENAME TO audit_events_gone');
      const errors: Error[] = [];
      const sink = new PostgresAuditSink(db, (err) => errors.push(err));
      for (let i = 0; i < 10; i++) sink.record(event(i));
      await sink.flush();
      assert.equal(errors.length, 1);
      assert.match(errors[0]!.message, /could not write 10 audit event\(s\) to PostgreSQL/);
      await db.query('repair_audit', 'ALTER TABLE audit_events_gone RENAME TO audit_events');
      sink.record(event(11));
      await sink.flush();
      assert.equal((await queryAuditEventsPostgres(db)).length, 1, 'writes resume once the database takes them again');
    } finally {
      await db.drop();
    }
  });

  it('writes in flight are bounded: while the table is locked, rows past the bound are dropped and counted, the rest land after', async () => {
    const db = await openTestPostgres();
    const locker = await db.pool.connect();
    try {
      await migrateAuditPostgres(db);
      await locker.query('BEGIN');
      await locker.query('LOCK TABLE audit_events IN ACCESS EXCLUSIVE MODE');
      const errors: Error[] = [];
      const sink = new PostgresAuditSink(db, (err) => errors.push(err), { maxQueue: 1000 });
      for (let i = 0; i < MAX_IN_FLIGHT + 2000; i++) sink.record(event(i % 50));
      const flushed = sink.flush();
      await locker.query('COMMIT');
      await flushed;
      const dropped = errors.reduce((n, e) => n + Number(/dropped (\d+)/.exec(e.message)?.[1] ?? 0), 0);
      assert.equal(dropped, 2000);
      const { rows } = await db.query<{ n: number }>('count_audit', 'SELECT COUNT(*)::int AS n FROM audit_events');
      assert.equal(rows[0]!.n, MAX_IN_FLIGHT);
    } finally {
      locker.release();
      await db.drop();
    }
  });
});
