import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Worker } from 'node:worker_threads';
import { openDatabase } from '../../src/storage/sqlite/database.ts';
import { SQLITE_DRIVER } from '../../src/storage/sqlite/driver.ts';
import { createSqliteStore } from '../../src/storage/sqlite/store.ts';

/**
 * Another connection to the same file (the running gateway, while `mcp-warden consents revoke`
 * runs) holds the write lock for 300 ms, then commits a write of its own.
 */
const HOLDER = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.path);
db.pragma('busy_timeout = 5000');
db.exec('BEGIN IMMEDIATE');
db.prepare("INSERT INTO as_consents (account_id, client_id, resource, grant_id, scopes, created_at) VALUES ('carol', 'c2', 'https://r', 'g2', '[]', 1)").run();
parentPort.postMessage('locked');
Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 300);
db.exec('COMMIT');
db.close();
parentPort.postMessage('committed');
`;

test('SQLite consents.remove takes the write lock before it reads (BEGIN IMMEDIATE): a write another connection commits meanwhile makes it wait, not fail with SQLITE_BUSY', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'warden-write-lock-'));
  const path = join(dir, 'warden.db');
  const db = openDatabase(path);
  try {
    const store = createSqliteStore(db);
    await store.consents.put({ accountId: 'bob', clientId: 'c1', grantId: 'g1', resource: 'https://r', scopes: ['notes:read'], createdAt: 1 });
    const holder = new Worker(HOLDER, { eval: true, workerData: { path, driver: createRequire(import.meta.url).resolve(SQLITE_DRIVER) } });
    const committed = new Promise<void>((resolve, reject) => {
      holder.on('message', (m) => m === 'committed' && resolve());
      holder.once('error', reject);
    });
    await new Promise<void>((resolve, reject) => {
      holder.on('message', (m) => m === 'locked' && resolve());
      holder.once('error', reject);
    });
    // A deferred transaction reads first, then cannot take the lock from a snapshot that the
    // other connection's commit made stale: SQLite answers SQLITE_BUSY without waiting.
    // @see https://www.sqlite.org/lang_transaction.html#deferred_immediate_and_exclusive_transactions
    const removed = await store.consents.remove({ accountId: 'bob' });
    assert.deepEqual(removed.map((r) => r.grantId), ['g1']);
    await committed;
    assert.deepEqual((await store.consents.list({})).map((r) => r.accountId), ['carol'], "the other connection's write is kept");
  } finally {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
