import { createSqliteUserRecords } from '../../src/storage/sqlite/users.ts';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Readable, PassThrough } from 'node:stream';
import { openDatabase } from '../../src/storage/sqlite/database.ts';
import { UserStore, hashPassword, verifyPassword } from '../../src/users/user-store.ts';
import { readPassword } from '../../src/users/read-password.ts';

describe('user store', () => {
  it('stores scrypt hashes (self-describing), never the password; authenticates only the right password', async () => {
    const db = openDatabase(':memory:');
    try {
      const users = new UserStore(createSqliteUserRecords(db));
      await users.add('alice', 'correct horse battery', ['admin']);
      const row = db.prepare('SELECT password_hash FROM users WHERE username = ?').get('alice') as { password_hash: string };
      assert.match(row.password_hash, /^scrypt\$131072\$8\$1\$/);
      assert.ok(!row.password_hash.includes('correct horse'));
      assert.equal((await users.authenticate('alice', 'correct horse battery'))?.username, 'alice');
      assert.equal(await users.authenticate('alice', 'wrong password!'), undefined);
      assert.equal(await users.authenticate('nobody', 'correct horse battery'), undefined);
    } finally { db.close(); }
  });

  it('a disabled account cannot sign in (the right password neither) and has no active user until enabled', async () => {
    const db = openDatabase(':memory:');
    try {
      const users = new UserStore(createSqliteUserRecords(db), ['admin', 'member'], { testHashCost: 12 });
      await users.add('carol', 'correct horse battery', ['member']);
      assert.equal(await users.setDisabled('carol', true, 1_800_000_000_000), true);
      assert.equal(await users.authenticate('carol', 'correct horse battery'), undefined);
      assert.equal(await users.getActive('carol'), undefined);
      assert.equal((await users.get('carol'))?.disabledAt, 1_800_000_000_000, 'the account and its name stay');
      assert.equal(await users.setDisabled('carol', false), true);
      assert.equal((await users.authenticate('carol', 'correct horse battery'))?.username, 'carol');
      assert.equal((await users.get('carol'))?.disabledAt, undefined);
      assert.equal(await users.setDisabled('nobody', true), false);
    } finally { db.close(); }
  });

  it('refuses unknown roles, short passwords, bad usernames and duplicates with clear messages', async () => {
    const db = openDatabase(':memory:');
    try {
      const users = new UserStore(createSqliteUserRecords(db), ['admin', 'member']);
      await assert.rejects(users.add('bob', 'long enough pw', ['root']), /unknown role "root"/);
      await assert.rejects(users.add('bob', 'short', ['member']), /at least 8/);
      await assert.rejects(users.add('-bob', 'long enough pw', ['member']), /username/);
      await users.add('bob', 'long enough pw', ['member']);
      await assert.rejects(users.add('bob', 'long enough pw', ['member']), /already exists/);
      await users.setRoles('bob', ['admin']);
      assert.deepEqual((await users.get('bob'))?.roles, ['admin']);
      await assert.rejects(users.setRoles('nobody', ['admin']), /no user/);
    } finally { db.close(); }
  });

  it('a malformed stored hash never verifies', async () => {
    assert.equal(await verifyPassword('x', 'md5$abc'), false);
    assert.equal(await verifyPassword('pw', await hashPassword('pw')), true);
  });
});

describe('readPassword', () => {
  it('reads the first line of piped stdin and prints nothing', async () => {
    const out = new PassThrough();
    let written = '';
    out.on('data', (d) => { written += d; });
    assert.equal(await readPassword(Readable.from(['secret pass\r\nsecond line\n']), out), 'secret pass');
    assert.equal(written, '');
    assert.equal(await readPassword(Readable.from(['no newline']), out), 'no newline');
  });
});
