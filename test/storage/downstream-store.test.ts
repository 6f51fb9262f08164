/**
 * The downstream storage contracts (src/storage/downstream-store.ts), run against every backend:
 * settings are created once and agreed on by racing callers; sealed secrets round-trip byte for
 * byte, are listed without their values, replaced and removed; the first key check value stands.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DownstreamStorage } from '../../src/storage/downstream-store.ts';
import { openDatabase } from '../../src/storage/sqlite/database.ts';
import { createSqliteDownstreamStorage } from '../../src/storage/sqlite/downstream-store.ts';
import { createPostgresDownstreamStorage } from '../../src/storage/postgres/downstream-store.ts';
import { openPostgres } from '../../src/storage/postgres/database.ts';
import { openTestPostgres, postgresUnavailable, TEST_POSTGRES_URL } from '../helpers/postgres.ts';

interface Harness { storage: DownstreamStorage; second: () => Promise<DownstreamStorage>; close(): Promise<void> }

const sealed = () => ({ nonce: randomBytes(12), ciphertext: randomBytes(40), tag: randomBytes(16) });

function runDownstreamStoreContract(backend: string, open: () => Promise<Harness>, skip?: string): void {
  describe(`downstream storage contract: ${backend}`, { skip }, () => {
    async function withStorage(fn: (h: Harness) => Promise<void>): Promise<void> {
      const h = await open();
      try { await fn(h); } finally { await h.close(); }
    }

    it('a setting is created once: later calls and a second instance get the first value, never a new one', () => withStorage(async (h) => {
      const first = await h.storage.settings.getOrCreate('gateway-client-secret:gw', () => 'first');
      assert.equal(first, 'first');
      assert.equal(await h.storage.settings.getOrCreate('gateway-client-secret:gw', () => 'second'), 'first');
      const other = await h.second();
      const racing = await Promise.all(Array.from({ length: 8 }, (_, i) => (i % 2 ? other : h.storage).settings.getOrCreate('race', () => `value-${i}`)));
      assert.equal(new Set(racing).size, 1, `every racing caller agrees: ${racing.join(', ')}`);
    }));

    it('sealed secrets round-trip byte for byte, per (server, user); put replaces; remove says whether it removed', () => withStorage(async ({ storage: { secrets } }) => {
      const a = sealed();
      const b = sealed();
      await secrets.put('notes', 'alice', a, 1000);
      await secrets.put('notes', 'bob', b, 2000);
      assert.deepEqual(await secrets.get('notes', 'alice'), a);
      assert.deepEqual(await secrets.get('notes', 'bob'), b);
      assert.equal(await secrets.get('notes', 'carol'), undefined);
      assert.equal(await secrets.get('wiki', 'alice'), undefined);
      const a2 = sealed();
      await secrets.put('notes', 'alice', a2, 3000);
      assert.deepEqual(await secrets.get('notes', 'alice'), a2);
      assert.equal(await secrets.remove('notes', 'alice'), true);
      assert.equal(await secrets.remove('notes', 'alice'), false);
      assert.equal(await secrets.get('notes', 'alice'), undefined);
    }));

    it('list names server, user and time only, ordered, optionally for one server', () => withStorage(async ({ storage: { secrets } }) => {
      await secrets.put('wiki', 'bob', sealed(), 5000);
      await secrets.put('notes', 'bob', sealed(), 4000);
      await secrets.put('notes', 'alice', sealed(), 3000);
      assert.deepEqual((await secrets.list()).map((s) => [s.server, s.user, s.updatedAt.getTime()]), [['notes', 'alice', 3000], ['notes', 'bob', 4000], ['wiki', 'bob', 5000]]);
      assert.deepEqual((await secrets.list('notes')).map((s) => s.user), ['alice', 'bob']);
      assert.deepEqual(Object.keys((await secrets.list())[0]!).sort(), ['server', 'updatedAt', 'user']);
    }));

    it('the first key check value of a server stands; a different candidate gets the stored one back', () => withStorage(async (h) => {
      const first = randomBytes(32);
      assert.deepEqual(await h.storage.secrets.keyCheckValue('notes', first, 1), first);
      assert.deepEqual(await (await h.second()).secrets.keyCheckValue('notes', randomBytes(32), 2), first);
      const other = randomBytes(32);
      assert.deepEqual(await h.storage.secrets.keyCheckValue('wiki', other, 3), other, 'per server');
    }));
  });
}

runDownstreamStoreContract('sqlite (file)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'warden-downstream-store-'));
  const path = join(dir, 'w.db');
  const db = openDatabase(path);
  const others: Array<ReturnType<typeof openDatabase>> = [];
  return {
    storage: createSqliteDownstreamStorage(db),
    // A second process on the same file.
    second: async () => { const o = openDatabase(path); others.push(o); return createSqliteDownstreamStorage(o); },
    close: async () => { for (const o of others) o.close(); db.close(); rmSync(dir, { recursive: true, force: true }); },
  };
});

runDownstreamStoreContract('sqlite (:memory:)', async () => {
  const db = openDatabase(':memory:');
  const storage = createSqliteDownstreamStorage(db);
  return { storage, second: async () => storage, close: async () => { db.close(); } };
});

runDownstreamStoreContract('postgres', async () => {
  const db = await openTestPostgres();
  const others: Array<{ close(): Promise<void> }> = [];
  return {
    storage: await createPostgresDownstreamStorage(db),
    // A second instance on the same database.
    second: async () => { const o = await openPostgres({ url: TEST_POSTGRES_URL, schema: db.schema, maxConnections: 4 }); others.push(o); return createPostgresDownstreamStorage(o); },
    close: async () => { for (const o of others) await o.close(); await db.drop(); },
  };
}, await postgresUnavailable());
