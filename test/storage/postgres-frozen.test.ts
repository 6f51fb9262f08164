/**
 * A PostgreSQL that stops answering (src/storage/postgres/database.ts): a frozen server, or a
 * failover whose old address now drops packets, keeps TCP connections open and silent. Against
 * the real test PostgreSQL behind a TCP proxy the test freezes: statements and waits for a
 * connection fail at their limits instead of hanging, and once the database answers again (on
 * new connections: the frozen ones stay silent) the same pool serves again, transactions too.
 * The connections it gives up are closed on this side after a grace, since a frozen server never
 * closes them, and closing the pool lets go of every one.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { openPostgres, type PostgresDatabase } from '../../src/storage/postgres/database.ts';
import { CLOSE_GRACE_MS } from '../../src/storage/postgres/sockets.ts';
import { postgresUnavailable, TEST_POSTGRES_URL } from '../helpers/postgres.ts';
import { cuttableProxy, type CuttableProxy } from '../helpers/tcp-proxy.ts';
import { waitFor } from '../helpers/wait-for.ts';

/** The client's limit; the server's is half of it (src/storage/postgres/database.ts `serverLimit`). */
const LIMIT_MS = 1000;

/** `promise`'s outcome, or 'still waiting' after `ms`: what the test would otherwise hang on. */
function within(promise: Promise<unknown>, ms: number): Promise<'resolved' | 'rejected' | 'still waiting'> {
  return Promise.race([
    promise.then(() => 'resolved' as const, () => 'rejected' as const),
    new Promise<'still waiting'>((resolve) => setTimeout(() => resolve('still waiting'), ms).unref()),
  ]);
}

describe('a PostgreSQL that stops answering: every wait is bounded, and the pool recovers on new connections', { skip: await postgresUnavailable() }, () => {
  const proxies: CuttableProxy[] = [];
  const pools: PostgresDatabase[] = [];
  after(async () => {
    for (const p of proxies) await p.close();
    for (const db of pools) await db.close().catch(() => {});
  });

  const open = async (maxConnections: number, more: { idleTimeoutMs?: number; queryTimeoutMs?: number; closeGraceMs?: number } = {}) => {
    const proxy = await cuttableProxy(TEST_POSTGRES_URL);
    proxies.push(proxy);
    const db = await openPostgres({ url: proxy.url, maxConnections, queryTimeoutMs: LIMIT_MS, connectTimeoutMs: LIMIT_MS, ...more });
    pools.push(db);
    return { proxy, db };
  };
  const answers = async (db: PostgresDatabase) => (await db.query<{ n: number }>('frozen_probe', 'SELECT 1 AS n')).rows[0]!.n === 1;

  it('statements: more of them than the pool has connections each fail at the limit, and the pool serves again once the database answers', async () => {
    const { proxy, db } = await open(2);
    assert.ok(await answers(db));
    proxy.freeze();
    // Twice the pool: the first two wait on frozen connections, the others for a free connection.
    const outcomes = await Promise.all(Array.from({ length: 4 }, () => within(db.query('frozen_select', 'SELECT 1'), 10 * LIMIT_MS)));
    assert.deepEqual(outcomes, ['rejected', 'rejected', 'rejected', 'rejected'], 'none is left waiting');
    proxy.restore();
    await waitFor(() => answers(db).catch(() => false), 'the pool to answer on new connections', { timeoutMs: 10_000, intervalMs: 50 });
  });

  it('transactions: one whose statement times out gives its connection up, so the next transaction on a one-connection pool is not stuck behind it', async () => {
    const { proxy, db } = await open(1);
    assert.equal(await db.transaction(async (tx) => (await tx.query<{ n: number }>('tx_probe', 'SELECT 1 AS n')).rows[0]!.n), 1);
    proxy.freeze();
    assert.equal(await within(db.transaction((tx) => tx.query('tx_frozen', 'SELECT 1')), 10 * LIMIT_MS), 'rejected');
    proxy.restore();
    await waitFor(async () => (await within(db.transaction(async (tx) => (await tx.query<{ n: number }>('tx_probe', 'SELECT 1 AS n')).rows[0]!.n), 10 * LIMIT_MS)) === 'resolved', 'a transaction to commit on a new connection', { timeoutMs: 10_000, intervalMs: 50 });
  });

  it('a statement that runs too long on a live server is cancelled there (57014): nothing keeps running that nobody waits for', async () => {
    const { db } = await open(1);
    const marker = `slow_${process.pid}_${Date.now()}`;
    await assert.rejects(db.query('slow', `SELECT pg_sleep(5) AS ${marker}`), (err: { code?: string }) => err.code === '57014');
    const { rows } = await db.query<{ n: number }>('slow_left', "SELECT COUNT(*)::int AS n FROM pg_stat_activity WHERE state = 'active' AND query LIKE $1", [`%AS ${marker}`]);
    assert.equal(rows[0]!.n, 0, 'no backend still running it');
  });

  it('a transaction whose ROLLBACK gets no answer gives its connection up too', async () => {
    const { proxy, db } = await open(1);
    // The statement is refused, and the database falls silent before the ROLLBACK.
    await assert.rejects(db.transaction(async (tx) => {
      try {
        await tx.query('tx_bad', 'SELECT * FROM no_such_table_here');
      } finally {
        proxy.freeze();
      }
    }), (err: { code?: string }) => err.code === '42P01');
    proxy.restore();
    // The first statement after: on a new connection, not queued behind the unanswered ROLLBACK.
    assert.ok(await answers(db));
  });

  it('an error of the transaction\'s own code rolls back on its connection, which serves on', async () => {
    const { db } = await open(1);
    const backend = async () => (await db.query<{ pid: number }>('backend_pid', 'SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
    const before = await backend();
    await assert.rejects(db.transaction(async (tx) => {
      await tx.query('tx_probe', 'SELECT 1 AS n');
      throw new Error('the caller changed its mind');
    }), /changed its mind/);
    assert.equal(await backend(), before);
  });

  it('a statement PostgreSQL refuses keeps its connection: the transaction is rolled back on it, and the pool goes on', async () => {
    const { db } = await open(1);
    const backend = async () => (await db.query<{ pid: number }>('backend_pid', 'SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
    const before = await backend();
    await assert.rejects(db.transaction((tx) => tx.query('tx_bad', 'SELECT * FROM no_such_table_here')), (err: { code?: string }) => err.code === '42P01');
    assert.equal(await backend(), before, 'the same connection (server process) serves on');
  });

  it('an idle connection the pool ends while the server does not answer is closed within the grace, though the server never closes it', async () => {
    const { proxy, db } = await open(1, { idleTimeoutMs: 200 });
    assert.ok(await answers(db));
    proxy.freeze();
    // pg-pool ends the idle connection (Terminate, then its side of the socket) and forgets it;
    // the silent server holds the socket open.
    await waitFor(() => db.pool.totalCount === 0, 'the pool to end its idle connection', { timeoutMs: 5_000, intervalMs: 10 });
    assert.equal(db.sockets.size, 1, 'the server has not closed it');
    await waitFor(() => db.sockets.size === 0, 'the ended connection to be closed on this side', { timeoutMs: CLOSE_GRACE_MS + 5_000, intervalMs: 20 });
  });

  it('closing the pool while the server does not answer lets go of every connection, idle or in a statement, within the grace', async () => {
    // A statement limit far beyond the grace: only letting go of its connection ends it in time.
    const { proxy, db } = await open(2, { queryTimeoutMs: 60_000 });
    await Promise.all([answers(db), answers(db)]);
    assert.equal(db.sockets.size, 2);
    proxy.freeze();
    const stuck = db.query('frozen_select', 'SELECT 1');
    stuck.catch(() => {});
    // On its connection (checked out), not still waiting for one.
    await waitFor(() => db.pool.idleCount === 1, 'the statement to take a connection', { timeoutMs: 5_000, intervalMs: 5 });
    assert.equal(await within(db.close(), CLOSE_GRACE_MS + 3_000), 'resolved', 'close did not wait on the silent server');
    assert.equal(db.sockets.size, 0, 'no socket left open (an open one would keep the process from exiting)');
    assert.equal(await within(stuck, 1_000), 'rejected', 'the statement in flight failed with its connection');
    pools.splice(pools.indexOf(db), 1);
  });

  it('closing the pool of a server that answers does not wait out the grace: it closes each connection on Terminate', async () => {
    // A grace far beyond what closing takes, so a close that waited it out could not pass.
    const { db } = await open(2, { closeGraceMs: 20_000 });
    await Promise.all([answers(db), answers(db)]);
    // Twice at once, as two owners might: one close (pg-pool's second `end` would reject).
    assert.equal(await within(Promise.all([db.close(), db.close()]), 10_000), 'resolved');
    assert.equal(db.sockets.size, 0);
    pools.splice(pools.indexOf(db), 1);
  });
});
