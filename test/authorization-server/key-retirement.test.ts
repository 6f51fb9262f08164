import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { activeSigningKeys, ensureSigningKeys, rotateSigningKey } from '../../src/authorization-server/keys.ts';
import { createMemoryStore } from '../../src/storage/memory/store.ts';

describe('signing key retirement (RFC 7517 §5: a key stays published while tokens it signed are valid)', () => {
  it('keys beyond the newest two are retired only once every token they signed has expired; --force retires every previous key at once', async () => {
    let t = 1_000_000;
    const now = () => t;
    const store = createMemoryStore(now);
    const lifetime = { tokenLifetimeMs: 100_000 };
    const [a] = await ensureSigningKeys(store.keys, now);

    t += 10_000;
    const b = await rotateSigningKey(store.keys, now, lifetime);
    assert.deepEqual([b.retired, b.kept], [[], []]);

    t += 10_000; // a stopped signing 10 s ago: its tokens may live 90 s more
    const c = await rotateSigningKey(store.keys, now, lifetime);
    assert.deepEqual(c.retired, []);
    assert.deepEqual(c.kept, [{ kid: a!.kid, retireAfter: b.added.createdAt + 100_000 }]);
    assert.deepEqual((await activeSigningKeys(store.keys)).map((k) => k.kid), [c.added.kid, b.added.kid, a!.kid], 'three keys published');

    t = b.added.createdAt + 100_000; // exactly when a's last token expires
    const d = await rotateSigningKey(store.keys, now, lifetime);
    assert.deepEqual(d.retired, [a!.kid], 'a goes; b stopped signing when c arrived, less than a lifetime ago');
    assert.deepEqual(d.kept.map((k) => k.kid), [b.added.kid]);

    const e = await rotateSigningKey(store.keys, now, { ...lifetime, force: true });
    assert.deepEqual(e.retired, [d.added.kid, c.added.kid, b.added.kid], 'force: every previous key, the signing one (d) included');
    assert.deepEqual((await activeSigningKeys(store.keys)).map((k) => k.kid), [e.added.kid]);
  });
});
