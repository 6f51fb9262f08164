/**
 * The Store contract suite (src/storage/store.ts): every backend runs exactly these tests.
 * A PostgreSQL backend adds one line to store.test.ts.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Store } from '../../src/storage/store.ts';

export interface StoreHarness {
  store: Store;
  clock: { now: number };
  close(): void | Promise<void>;
}

export function runStoreContract(backend: string, open: () => Promise<StoreHarness> | StoreHarness, skip?: string): void {
  describe(`Store contract: ${backend}`, { skip }, () => {
    async function withStore(fn: (h: StoreHarness) => Promise<void>): Promise<void> {
      const h = await open();
      try { await fn(h); } finally { await h.close(); }
    }

    it('upsert then find returns the payload; upsert replaces it', () => withStore(async ({ store }) => {
      await store.models.upsert('Session', 'a', { uid: 'u1', accountId: 'alice' }, undefined);
      assert.deepEqual(await store.models.find('Session', 'a'), { uid: 'u1', accountId: 'alice' });
      await store.models.upsert('Session', 'a', { uid: 'u2', accountId: 'bob' }, undefined);
      assert.deepEqual(await store.models.find('Session', 'a'), { uid: 'u2', accountId: 'bob' });
      assert.equal(await store.models.find('Session', 'missing'), undefined);
      assert.equal(await store.models.find('Grant', 'a'), undefined, 'models are separate namespaces');
    }));

    it('expired entries are invisible to every read', () => withStore(async ({ store, clock }) => {
      await store.models.upsert('AuthorizationCode', 'c', { uid: 'x', userCode: 'UC', grantId: 'g' }, clock.now + 1000);
      assert.ok(await store.models.find('AuthorizationCode', 'c'));
      clock.now += 1001;
      assert.equal(await store.models.find('AuthorizationCode', 'c'), undefined);
      assert.equal(await store.models.findByUid('AuthorizationCode', 'x'), undefined);
      assert.equal(await store.models.findByUserCode('AuthorizationCode', 'UC'), undefined);
      assert.deepEqual(await store.models.list('AuthorizationCode'), []);
    }));

    it('findByUid and findByUserCode look up by those fields', () => withStore(async ({ store }) => {
      await store.models.upsert('Session', 's1', { uid: 'uid-1' }, undefined);
      await store.models.upsert('DeviceCode', 'd1', { userCode: 'ABCD-EFGH' }, undefined);
      assert.deepEqual(await store.models.findByUid('Session', 'uid-1'), { uid: 'uid-1' });
      assert.deepEqual(await store.models.findByUserCode('DeviceCode', 'ABCD-EFGH'), { userCode: 'ABCD-EFGH' });
      assert.equal(await store.models.findByUid('Session', 'uid-2'), undefined);
    }));

    it('consume marks the entry with the first consumption time (seconds), later ones do not move it', () => withStore(async ({ store, clock }) => {
      await store.models.upsert('RefreshToken', 'r', { grantId: 'g' }, undefined);
      await store.models.consume('RefreshToken', 'r', clock.now);
      const first = (await store.models.find('RefreshToken', 'r'))!.consumed;
      assert.equal(first, Math.floor(clock.now / 1000));
      await store.models.consume('RefreshToken', 'r', clock.now + 60_000);
      assert.equal((await store.models.find('RefreshToken', 'r'))!.consumed, first);
    }));

    it('OAuth 2.1 §4.3.1 rotation: consumeAndWrite consumes and writes together, once; a second rotation of the same token writes nothing', () => withStore(async ({ store, clock }) => {
      await store.models.upsert('RefreshToken', 'old', { grantId: 'g' }, clock.now + 60_000);
      const first = await store.models.consumeAndWrite('RefreshToken', 'old', clock.now, [
        { model: 'RefreshToken', id: 'next-1', payload: { grantId: 'g' }, expiresAt: clock.now + 60_000 },
        { model: 'RefreshRotation', id: 'old', payload: { successor: 'next-1' }, expiresAt: clock.now + 60_000 },
      ]);
      assert.equal(first, true);
      assert.equal((await store.models.find('RefreshToken', 'old'))!.consumed, Math.floor(clock.now / 1000));
      assert.deepEqual(await store.models.find('RefreshToken', 'next-1'), { grantId: 'g' });
      assert.deepEqual(await store.models.find('RefreshRotation', 'old'), { successor: 'next-1' });
      const second = await store.models.consumeAndWrite('RefreshToken', 'old', clock.now + 1000, [
        { model: 'RefreshToken', id: 'next-2', payload: { grantId: 'g' }, expiresAt: clock.now + 60_000 },
        { model: 'RefreshRotation', id: 'old', payload: { successor: 'next-2' }, expiresAt: clock.now + 60_000 },
      ]);
      assert.equal(second, false, 'a consumed token is not rotated again');
      assert.equal(await store.models.find('RefreshToken', 'next-2'), undefined);
      assert.deepEqual(await store.models.find('RefreshRotation', 'old'), { successor: 'next-1' });
      assert.equal(await store.models.consumeAndWrite('RefreshToken', 'missing', clock.now, [
        { model: 'RefreshToken', id: 'next-3', payload: {}, expiresAt: undefined },
      ]), false, 'an unknown token is not rotated');
      assert.equal(await store.models.find('RefreshToken', 'next-3'), undefined);
    }));

    it('consumeAndWrite runs at most one of two concurrent rotations of the same token', () => withStore(async ({ store, clock }) => {
      await store.models.upsert('RefreshToken', 'old', { grantId: 'g' }, undefined);
      const results = await Promise.all(['a', 'b'].map((n) => store.models.consumeAndWrite('RefreshToken', 'old', clock.now, [
        { model: 'RefreshToken', id: `next-${n}`, payload: { grantId: 'g' }, expiresAt: undefined },
      ])));
      assert.deepEqual(results.sort(), [false, true]);
      const stored = (await store.models.list('RefreshToken')).map((r) => r.id).filter((id) => id.startsWith('next-'));
      assert.equal(stored.length, 1);
    }));

    it('destroy removes one entry; revokeByGrantId removes the grant and everything issued under it', () => withStore(async ({ store }) => {
      await store.models.upsert('Grant', 'g1', { jti: 'g1' }, undefined);
      await store.models.upsert('RefreshToken', 'r1', { grantId: 'g1' }, undefined);
      await store.models.upsert('AuthorizationCode', 'c1', { grantId: 'g1' }, undefined);
      await store.models.upsert('RefreshToken', 'r2', { grantId: 'g2' }, undefined);
      await store.models.destroy('AuthorizationCode', 'c1');
      assert.equal(await store.models.find('AuthorizationCode', 'c1'), undefined);
      await store.models.revokeByGrantId('g1');
      assert.equal(await store.models.find('Grant', 'g1'), undefined);
      assert.equal(await store.models.find('RefreshToken', 'r1'), undefined);
      assert.ok(await store.models.find('RefreshToken', 'r2'), 'other grants are untouched');
    }));

    it('list returns every live entry of one model', () => withStore(async ({ store }) => {
      await store.models.upsert('Client', 'b', { client_id: 'b' }, undefined);
      await store.models.upsert('Client', 'a', { client_id: 'a' }, undefined);
      await store.models.upsert('Grant', 'x', {}, undefined);
      assert.deepEqual((await store.models.list('Client')).map((e) => e.id), ['a', 'b']);
    }));

    it('a failed write (unserialisable payload) loses nothing already stored', () => withStore(async ({ store }) => {
      await store.models.upsert('Client', 'c', { client_id: 'c', v: 1 }, undefined);
      await assert.rejects(store.models.upsert('Client', 'c', { client_id: 'c', v: 10n as unknown as number }, undefined));
      assert.deepEqual(await store.models.find('Client', 'c'), { client_id: 'c', v: 1 });
    }));

    it('keys: newest first per use; retire keeps the record with retiredAt', () => withStore(async ({ store }) => {
      await store.keys.add({ kid: 'k1', use: 'sig', jwk: { kty: 'EC', crv: 'P-256', x: 'x', y: 'y', d: 'd' }, createdAt: 1 });
      await store.keys.add({ kid: 'k2', use: 'sig', jwk: { kty: 'EC', crv: 'P-256', x: 'x2', y: 'y2', d: 'd2' }, createdAt: 2 });
      await store.keys.add({ kid: 'c1', use: 'cookie', jwk: { kty: 'oct', k: 'secret' }, createdAt: 3 });
      assert.deepEqual((await store.keys.list('sig')).map((k) => k.kid), ['k2', 'k1']);
      await store.keys.retire('k1', 10);
      const k1 = (await store.keys.list('sig')).find((k) => k.kid === 'k1');
      assert.equal(k1!.retiredAt, 10);
      assert.equal(k1!.jwk.d, 'd');
      assert.deepEqual((await store.keys.list('cookie')).map((k) => k.kid), ['c1']);
      await assert.rejects(store.keys.add({ kid: 'k1', use: 'sig', jwk: { kty: 'EC' }, createdAt: 4 }), 'kids are unique');
    }));

    it('consents: one per (user, client, resource), replaced on put, filtered lists, remove returns what it removed', () => withStore(async ({ store }) => {
      const base = { accountId: 'alice', clientId: 'c1', grantId: 'g1', resource: 'https://r/mcp', scopes: ['a'], createdAt: 1 };
      await store.consents.put(base);
      await store.consents.put({ ...base, grantId: 'g2', scopes: ['a', 'b'] });
      await store.consents.put({ ...base, clientId: 'c2', grantId: 'g3' });
      await store.consents.put({ ...base, accountId: 'bob', grantId: 'g4' });
      assert.deepEqual((await store.consents.find('alice', 'c1', 'https://r/mcp'))!.scopes, ['a', 'b']);
      assert.equal(await store.consents.find('alice', 'c1', 'https://other/mcp'), undefined);
      assert.equal((await store.consents.list()).length, 3);
      assert.deepEqual((await store.consents.list({ accountId: 'alice' })).map((c) => c.clientId), ['c1', 'c2']);
      const removed = await store.consents.remove({ accountId: 'alice', clientId: 'c1' });
      assert.deepEqual(removed.map((c) => c.grantId), ['g2']);
      assert.equal((await store.consents.remove({ accountId: 'alice' })).length, 1);
      assert.deepEqual((await store.consents.list()).map((c) => c.accountId), ['bob']);
    }));

    it('RFC 7009 §2.1 revocations: a grant or token keeps its first time, a user or client the latest; the expiry only grows', () => withStore(async ({ store, clock }) => {
      const t = clock.now;
      assert.deepEqual(await store.revocations.put({ kind: 'grant', id: 'g', revokedAt: t, expiresAt: t + 1000 }), { kind: 'grant', id: 'g', revokedAt: t, expiresAt: t + 1000 });
      assert.deepEqual(await store.revocations.put({ kind: 'grant', id: 'g', revokedAt: t + 5, expiresAt: t + 500 }), { kind: 'grant', id: 'g', revokedAt: t, expiresAt: t + 1000 });
      await store.revocations.put({ kind: 'subject', id: 'carol', revokedAt: t, expiresAt: t + 1000 });
      assert.deepEqual(await store.revocations.put({ kind: 'subject', id: 'carol', revokedAt: t + 7, expiresAt: t + 2000 }), { kind: 'subject', id: 'carol', revokedAt: t + 7, expiresAt: t + 2000 });
      assert.deepEqual(await store.revocations.put({ kind: 'subject', id: 'carol', revokedAt: t + 3, expiresAt: t + 100 }), { kind: 'subject', id: 'carol', revokedAt: t + 7, expiresAt: t + 2000 }, 'an older removal heard late does not move the line back');
      // Kinds are separate namespaces: a client with a user's name is another revocation.
      await store.revocations.put({ kind: 'client', id: 'carol', revokedAt: t + 1, expiresAt: t + 1000 });
      const { records } = await store.revocations.changedSince(0);
      assert.deepEqual(records.map((r) => `${r.kind}:${r.id}:${r.revokedAt - t}`).sort(), ['client:carol:1', 'grant:g:0', 'subject:carol:7']);
    }));

    it('revocations: changedSince lists what was put after the cursor, in put order, never an expired one', () => withStore(async ({ store, clock }) => {
      const t = clock.now;
      const all = await store.revocations.changedSince(0);
      assert.deepEqual(all.records, []);
      await store.revocations.put({ kind: 'token', id: 'j1', revokedAt: t, expiresAt: t + 1000 });
      await store.revocations.put({ kind: 'grant', id: 'g1', revokedAt: t, expiresAt: t + 60_000 });
      const first = await store.revocations.changedSince(all.cursor);
      assert.deepEqual(first.records.map((r) => r.id), ['j1', 'g1']);
      assert.deepEqual((await store.revocations.changedSince(first.cursor)).records, [], 'nothing new');
      await store.revocations.put({ kind: 'client', id: 'c1', revokedAt: t, expiresAt: t + 60_000 });
      // Put again: a change too (another instance must hear a moved line), listed at its new place.
      await store.revocations.put({ kind: 'token', id: 'j1', revokedAt: t, expiresAt: t + 2000 });
      const second = await store.revocations.changedSince(first.cursor);
      assert.deepEqual(second.records.map((r) => r.id), ['c1', 'j1']);
      assert.ok(second.cursor > first.cursor);
      clock.now += 2000;
      assert.deepEqual((await store.revocations.changedSince(0)).records.map((r) => r.id), ['g1', 'c1'], 'expired: not listed');
      assert.deepEqual((await store.revocations.changedSince(second.cursor)).records, []);
      await store.revocations.put({ kind: 'subject', id: 's1', revokedAt: clock.now, expiresAt: clock.now + 1000 });
      assert.deepEqual((await store.revocations.changedSince(second.cursor)).records.map((r) => r.id), ['s1'], 'positions are not reused after expiry');
    }));
  });
}
