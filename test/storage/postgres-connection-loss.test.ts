/**
 * A PostgreSQL connection lost in the middle of a transaction (a database restart, a failover, a
 * network cut) fails that transaction and nothing else: the process goes on, and the next
 * transaction runs on a fresh connection. The connection is cut by a TCP proxy between the pool
 * and the test server, so the server other test files use is not disturbed.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { openPostgres, type PostgresDatabase } from '../../src/storage/postgres/database.ts';
import { postgresUnavailable, TEST_POSTGRES_URL } from '../helpers/postgres.ts';
import { cuttableProxy } from '../helpers/tcp-proxy.ts';

describe('PostgreSQL: a connection lost during a transaction', { skip: await postgresUnavailable() }, () => {
  let proxy: Awaited<ReturnType<typeof cuttableProxy>>;
  let db: PostgresDatabase;
  const schema = `warden_test_${randomBytes(6).toString('hex')}`;

  before(async () => {
    proxy = await cuttableProxy(TEST_POSTGRES_URL);
    db = await openPostgres({ url: proxy.url, schema, maxConnections: 2 });
  });
  after(async () => {
    await db?.query('drop_schema', `DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => {});
    await db?.close();
    await proxy?.close();
  });

  it('rejects the transaction, does not end the process (no unhandled error event), and the next transaction succeeds', async () => {
    const uncaught: Error[] = [];
    const onUncaught = (err: Error) => { uncaught.push(err); };
    process.on('uncaughtException', onUncaught);
    try {
      await assert.rejects(db.transaction(async (tx) => {
        await tx.query('probe', 'SELECT 1');
        // The connection breaks while the transaction holds it, between two statements.
        proxy.cut();
        await new Promise((resolve) => setTimeout(resolve, 200));
        await tx.query('probe', 'SELECT 1');
      }));
      await new Promise((resolve) => setTimeout(resolve, 100));
      assert.deepEqual(uncaught.map((e) => e.message), [], 'no uncaught exception');
    } finally {
      process.off('uncaughtException', onUncaught);
    }
    proxy.restore();
    const answer = await db.transaction(async (tx) => (await tx.query<{ n: number }>('one', 'SELECT 1 AS n')).rows[0]!.n);
    assert.equal(answer, 1);
  });
});
