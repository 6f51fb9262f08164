/**
 * The user records contract (src/storage/users.ts), run against every backend, and the user
 * store on top of it: a username is unique, updates name what they change, and nothing but the
 * scrypt hash of a password is ever stored.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { UserRecords } from '../../src/storage/users.ts';
import { openDatabase } from '../../src/storage/sqlite/database.ts';
import { createSqliteUserRecords } from '../../src/storage/sqlite/users.ts';
import { createPostgresUserRecords } from '../../src/storage/postgres/users.ts';
import { UserStore } from '../../src/users/user-store.ts';
import { openTestPostgres, postgresUnavailable } from '../helpers/postgres.ts';

function runUserRecordsContract(backend: string, open: () => Promise<{ records: UserRecords; close(): Promise<void> }>, skip?: string): void {
  describe(`user records contract: ${backend}`, { skip }, () => {
    async function withRecords(fn: (r: UserRecords) => Promise<void>): Promise<void> {
      const h = await open();
      try { await fn(h.records); } finally { await h.close(); }
    }

    it('insert once per username, get, list ordered by username, remove', () => withRecords(async (r) => {
      assert.equal(await r.insert({ username: 'bob', passwordHash: 'h-bob', roles: ['member'], createdAt: 2 }), true);
      assert.equal(await r.insert({ username: 'alice', passwordHash: 'h-alice', roles: ['admin', 'member'], createdAt: 1 }), true);
      assert.equal(await r.insert({ username: 'alice', passwordHash: 'other', roles: [], createdAt: 3 }), false, 'a username is unique; the first record stays');
      assert.deepEqual(await r.get('alice'), { username: 'alice', passwordHash: 'h-alice', roles: ['admin', 'member'], createdAt: 1 });
      assert.equal(await r.get('carol'), undefined);
      assert.deepEqual((await r.list()).map((u) => u.username), ['alice', 'bob']);
      assert.equal(await r.remove('bob'), true);
      assert.equal(await r.remove('bob'), false);
      assert.deepEqual((await r.list()).map((u) => u.username), ['alice']);
    }));

    it('count is the number of records, disabled ones included, and follows insert and remove', () => withRecords(async (r) => {
      assert.equal(await r.count(), 0);
      await r.insert({ username: 'alice', passwordHash: 'h', roles: ['member'], createdAt: 1 });
      await r.insert({ username: 'bob', passwordHash: 'h', roles: [], createdAt: 2 });
      assert.equal(await r.insert({ username: 'bob', passwordHash: 'x', roles: [], createdAt: 3 }), false);
      await r.update('bob', { disabledAt: 5 });
      assert.equal(await r.count(), 2, 'a refused duplicate adds nothing; a disabled account still counts');
      await r.remove('alice');
      assert.equal(await r.count(), 1);
    }));

    it('update changes only what it names, and says when there is no such user', () => withRecords(async (r) => {
      await r.insert({ username: 'alice', passwordHash: 'h1', roles: ['member'], createdAt: 1 });
      assert.equal(await r.update('alice', { roles: ['admin'] }), true);
      assert.deepEqual(await r.get('alice'), { username: 'alice', passwordHash: 'h1', roles: ['admin'], createdAt: 1 });
      assert.equal(await r.update('alice', { passwordHash: 'h2' }), true);
      assert.deepEqual(await r.get('alice'), { username: 'alice', passwordHash: 'h2', roles: ['admin'], createdAt: 1 });
      assert.equal(await r.update('nobody', { roles: ['admin'] }), false);
    }));

    it('the user store keeps only the scrypt hash and authenticates only the right password', () => withRecords(async (r) => {
      const users = new UserStore(r, ['admin', 'member'], { testHashCost: 12 });
      await users.add('alice', 'correct horse battery', ['admin']);
      const stored = await r.get('alice');
      assert.match(stored!.passwordHash, /^scrypt\$4096\$8\$1\$/);
      assert.ok(!stored!.passwordHash.includes('correct horse'));
      assert.equal((await users.authenticate('alice', 'correct horse battery'))?.username, 'alice');
      assert.equal(await users.authenticate('alice', 'wrong password!'), undefined);
      await users.setPassword('alice', 'another good one');
      assert.equal(await users.authenticate('alice', 'correct horse battery'), undefined);
      assert.equal((await users.authenticate('alice', 'another good one'))?.username, 'alice');
    }));
  });
}

runUserRecordsContract('sqlite (file)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'warden-users-'));
  const db = openDatabase(join(dir, 'w.db'));
  return { records: createSqliteUserRecords(db), close: async () => { db.close(); rmSync(dir, { recursive: true, force: true }); } };
});

runUserRecordsContract('sqlite (:memory:)', async () => {
  const db = openDatabase(':memory:');
  return { records: createSqliteUserRecords(db), close: async () => { db.close(); } };
});

runUserRecordsContract('postgres', async () => {
  const db = await openTestPostgres();
  return { records: await createPostgresUserRecords(db), close: () => db.drop() };
}, await postgresUnavailable());
