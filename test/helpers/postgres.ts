/**
 * PostgreSQL for tests: `WARDEN_TEST_POSTGRES_URL` (default: the local server on the standard
 * port, database `test`). Each harness gets a schema of its own, dropped at close, so test files
 * run in parallel without seeing each other's rows.
 *
 * When the server is not reachable: under CI (`CI` set) that is a failure, since CI must run these
 * suites; elsewhere the suite is skipped with one line saying how to start the server.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { openPostgres, type PostgresDatabase } from '../../src/storage/postgres/database.ts';

export const TEST_POSTGRES_URL = process.env.WARDEN_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

let probe: Promise<string | undefined> | undefined;

/** undefined when PostgreSQL answers; otherwise the reason a suite should be skipped. Throws under CI. */
export function postgresUnavailable(): Promise<string | undefined> {
  probe ??= (async () => {
    const client = new pg.Client({ connectionString: TEST_POSTGRES_URL, connectionTimeoutMillis: 3000 });
    try {
      await client.connect();
      await client.query('SELECT 1');
      return undefined;
    } catch (err) {
      const line = `PostgreSQL not reachable at ${TEST_POSTGRES_URL.replace(/\/\/[^@/]*@/, '//…@')} (${(err as Error).message}): start it (e.g. pg_ctlcluster 15 main start) or set WARDEN_TEST_POSTGRES_URL`;
      if (process.env.CI) throw new Error(`${line}; CI requires it`, { cause: err });
      process.stderr.write(`# skipped PostgreSQL suites: ${line}\n`);
      return line;
    } finally {
      await client.end().catch(() => {});
    }
  })();
  return probe;
}

/** A pool on a fresh schema of its own; `drop()` removes the schema and closes the pool. */
export async function openTestPostgres(): Promise<PostgresDatabase & { schema: string; drop(): Promise<void> }> {
  const schema = `warden_test_${randomBytes(6).toString('hex')}`;
  const db = await openPostgres({ url: TEST_POSTGRES_URL, schema, maxConnections: 4 });
  return Object.assign(db, {
    schema,
    async drop() {
      await db.query('drop_schema', `DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => {});
      await db.close();
    },
  });
}
