import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { rotateSigningKey } from '../../src/authorization-server/keys.ts';
import { createSqliteStore } from '../../src/storage/sqlite/store.ts';
import { startEmbeddedAs } from '../helpers/embedded-as.ts';

describe('publicJwks(): one object per key set, the contract the gateway verifier relies on (src/gateway/token-verifier.ts)', () => {
  it('the same frozen object until a reload changes the keys; a new one after; a reload that changes nothing keeps it', async () => {
    const s = await startEmbeddedAs();
    try {
      const first = await s.as.publicJwks();
      assert.equal(await s.as.publicJwks(), first, 'unchanged keys: the same object (the gateway compares identities)');
      assert.ok(Object.isFrozen(first) && first.keys.every((k) => Object.isFrozen(k)));
      assert.equal((await s.as.reloadSigningKeys()).changed, false);
      assert.equal(await s.as.publicJwks(), first, 'a reload without a change keeps the object');
      await rotateSigningKey(createSqliteStore(s.db).keys, Date.now, { force: true });
      assert.equal((await s.as.reloadSigningKeys()).changed, true);
      const second = await s.as.publicJwks();
      assert.notEqual(second, first, 'changed keys: a new object');
      assert.equal(await s.as.publicJwks(), second);
    } finally {
      await s.close();
    }
  });
});
