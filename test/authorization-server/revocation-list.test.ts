/**
 * The revocation list behind RFC 7009 §2.1 "also invalidate the access tokens of the same grant":
 * kept in the Store (a restart keeps it), remembered as long as an access token can live, and
 * carried to other instances by a bus.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDatabase } from '../../src/storage/sqlite/database.ts';
import { createSqliteStore } from '../../src/storage/sqlite/store.ts';
import { createMemoryStore } from '../../src/storage/memory/store.ts';
import { createInProcessRevocationBus, createRevocationList, revocationHorizonMs, type RevocationBus } from '../../src/authorization-server/revocation.ts';
import type { RevocationStore } from '../../src/storage/store.ts';
import { waitFor } from '../helpers/wait-for.ts';

/** Counts every call into a RevocationStore. */
function counting(records: RevocationStore): { records: RevocationStore; calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    records: {
      put: (r) => { calls.push('put'); return records.put(r); },
      changedSince: (c) => { calls.push('changedSince'); return records.changedSince(c); },
    },
  };
}

const HORIZON = revocationHorizonMs(900);

describe('revocation list', () => {
  it('RFC 7009 §2.1: a revoked grant stays revoked across a restart (a new list on the same database), until the longest access token has expired', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'warden-revlist-'));
    const clock = { now: 1_800_000_000_000 };
    try {
      const db1 = openDatabase(join(dir, 'w.db'));
      const first = createRevocationList({ records: createSqliteStore(db1, () => clock.now).revocations, now: () => clock.now, horizonMs: HORIZON });
      await first.revokeGrant('grant-1');
      await first.close();
      db1.close();

      const db2 = openDatabase(join(dir, 'w.db'));
      const second = createRevocationList({ records: createSqliteStore(db2, () => clock.now).revocations, now: () => clock.now, horizonMs: HORIZON });
      await second.start();
      assert.equal(await second.isRevoked({ jti: 'a', grant_id: 'grant-1', iat: clock.now / 1000 }), true);
      assert.equal(await second.isRevoked({ jti: 'b', grant_id: 'grant-2', iat: clock.now / 1000 }), false);
      clock.now += HORIZON + 1;
      assert.equal(await second.isRevoked({ grant_id: 'grant-1' }), false, 'forgotten once no token of the grant can be valid');
      await second.close();
      db2.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a removed user: tokens issued up to the removal are refused, those of a user added again later are not', async () => {
    const clock = { now: 1_800_000_000_500 };
    const list = createRevocationList({ records: createMemoryStore(() => clock.now).revocations, now: () => clock.now, horizonMs: HORIZON });
    await list.start();
    const before = Math.floor(clock.now / 1000);
    await list.revokeSubject('carol');
    assert.equal(await list.isRevoked({ sub: 'carol', client_id: 'c1', iat: before - 60 }), true);
    assert.equal(await list.isRevoked({ sub: 'carol', client_id: 'c1', iat: before }), true, 'issued in the same second: refused');
    assert.equal(await list.isRevoked({ sub: 'carol', client_id: 'c1', iat: before + 1 }), false, 'issued after the removal');
    assert.equal(await list.isRevoked({ sub: 'dave', client_id: 'c1', iat: before }), false);
    // A client-credentials token has sub = client_id: a user of the same name does not revoke it.
    assert.equal(await list.isRevoked({ sub: 'carol', client_id: 'carol', iat: before }), false);
    await list.close();
  });

  it('a removed client: its client-credentials and user tokens issued up to the removal are refused', async () => {
    const clock = { now: 1_800_000_000_000 };
    const list = createRevocationList({ records: createMemoryStore(() => clock.now).revocations, now: () => clock.now, horizonMs: HORIZON });
    await list.start();
    const iat = Math.floor(clock.now / 1000);
    await list.revokeClient('agent');
    assert.equal(await list.isRevoked({ sub: 'agent', client_id: 'agent', iat }), true);
    assert.equal(await list.isRevoked({ sub: 'alice', client_id: 'agent', iat }), true);
    assert.equal(await list.isRevoked({ sub: 'alice', client_id: 'other', iat }), false);
    await list.close();
  });

  it('RFC 7009 §2.1: one access token by jti, remembered until it expires', async () => {
    const clock = { now: 1_800_000_000_000 };
    const list = createRevocationList({ records: createMemoryStore(() => clock.now).revocations, now: () => clock.now, horizonMs: HORIZON });
    await list.start();
    await list.revokeAccessToken('jti-1', clock.now + 60_000);
    assert.equal(await list.isRevoked({ jti: 'jti-1' }), true);
    assert.equal(await list.isRevoked({ jti: 'jti-2' }), false);
    clock.now += 60_000 + 60_001;
    assert.equal(await list.isRevoked({ jti: 'jti-1' }), false);
    await list.close();
  });

  it('the bus carries a revocation to an instance that does not share the database', async () => {
    const clock = { now: 1_800_000_000_000 };
    const bus = createInProcessRevocationBus();
    const a = createRevocationList({ records: createMemoryStore(() => clock.now).revocations, now: () => clock.now, horizonMs: HORIZON, bus });
    const b = createRevocationList({ records: createMemoryStore(() => clock.now).revocations, now: () => clock.now, horizonMs: HORIZON, bus });
    await b.start();
    await a.revokeGrant('g');
    assert.equal(await b.isRevoked({ grant_id: 'g' }), true);
    clock.now += HORIZON + 1;
    assert.equal(await b.isRevoked({ grant_id: 'g' }), false);
    await a.close();
    await b.close();
  });

  it('RFC 7009 §2.1: isRevoked answers from memory, synchronously, without a single Store call (revoked or not)', async () => {
    const clock = { now: 1_800_000_000_000 };
    const { records, calls } = counting(createMemoryStore(() => clock.now).revocations);
    const list = createRevocationList({ records, now: () => clock.now, horizonMs: HORIZON, syncIntervalMs: 3_600_000 });
    await list.start();
    await list.revokeGrant('g1');
    await list.revokeAccessToken('j1', clock.now + 60_000);
    await list.revokeSubject('carol');
    await list.revokeClient('agent');
    calls.length = 0;
    const iat = Math.floor(clock.now / 1000);
    const asked = [
      { jti: 'j1' }, { grant_id: 'g1' }, { sub: 'carol', client_id: 'c', iat }, { sub: 'x', client_id: 'agent', iat },
      { jti: 'j2', grant_id: 'g2', sub: 'alice', client_id: 'c', iat },
    ];
    const answers = asked.map((claims) => list.isRevoked(claims));
    assert.deepEqual(answers, [true, true, true, true, false], 'plain booleans, not promises');
    assert.deepEqual(calls, [], 'no Store call');
    await list.close();
  });

  it('a list refuses to answer before start() loaded the Store (an empty memory would let revoked tokens through)', async () => {
    const list = createRevocationList({ records: createMemoryStore().revocations, now: Date.now, horizonMs: HORIZON });
    assert.throws(() => list.isRevoked({ grant_id: 'g' }), /before start\(\)/);
    await list.close();
  });

  it('RFC 7009 §2.1: a revocation another process writes to the same database is refused within 1 s (the changed-since read), without any bus', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'warden-revlist-'));
    try {
      const db1 = openDatabase(join(dir, 'w.db'));
      const db2 = openDatabase(join(dir, 'w.db'));
      const reader = createRevocationList({ records: createSqliteStore(db1).revocations, now: Date.now, horizonMs: HORIZON });
      // The admin CLI's list: its own connection, its own in-process bus nobody else hears.
      const writer = createRevocationList({ records: createSqliteStore(db2).revocations, now: Date.now, horizonMs: HORIZON });
      await reader.start();
      assert.equal(reader.isRevoked({ grant_id: 'g-other' }), false);
      const written = Date.now();
      await writer.revokeGrant('g-other');
      await waitFor(() => reader.isRevoked({ grant_id: 'g-other' }), 'the revocation from the other connection', { timeoutMs: 5000, intervalMs: 10 });
      const ms = Date.now() - written;
      t.diagnostic(`refused ${ms} ms after the other connection committed it`);
      assert.ok(ms < 1000, `refused after ${ms} ms`);
      await reader.close();
      await writer.close();
      db1.close();
      db2.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('after the bus reconnects (it may have missed messages) the whole Store is read again', async () => {
    const clock = { now: 1_800_000_000_000 };
    const store = createMemoryStore(() => clock.now);
    const reconnected = new Set<() => void>();
    const bus: RevocationBus = { ...createInProcessRevocationBus(), onReconnect: (l) => { reconnected.add(l); return () => reconnected.delete(l); } };
    // No periodic read during the test: only the reconnect can bring the revocation in.
    const list = createRevocationList({ records: store.revocations, now: () => clock.now, horizonMs: HORIZON, bus, syncIntervalMs: 3_600_000 });
    await list.start();
    await store.revocations.put({ kind: 'client', id: 'agent', revokedAt: clock.now, expiresAt: clock.now + HORIZON });
    assert.equal(list.isRevoked({ sub: 'agent', client_id: 'agent', iat: 1 }), false, 'not heard on the bus');
    for (const l of reconnected) l();
    await waitFor(() => list.isRevoked({ sub: 'agent', client_id: 'agent', iat: 1 }), 'the full read after the reconnect');
    await list.close();
    assert.equal(reconnected.size, 0, 'close unsubscribes');
  });

  it('bounded memory: a bus message cannot keep a revocation longer than the longest access token lives', async () => {
    const clock = { now: 1_800_000_000_000 };
    const bus = createInProcessRevocationBus();
    const list = createRevocationList({ records: createMemoryStore(() => clock.now).revocations, now: () => clock.now, horizonMs: HORIZON, bus });
    await list.start();
    await bus.publish({ kind: 'grant', id: 'g', at: clock.now, until: clock.now + 365 * 86_400_000 });
    assert.equal(list.isRevoked({ grant_id: 'g' }), true);
    clock.now += HORIZON + 1;
    assert.equal(list.isRevoked({ grant_id: 'g' }), false, 'forgotten after one horizon');
    await list.close();
  });

  it('the Store unreachable: memory keeps answering (bus revocations included), the failure is reported once, the recovery once, and what was missed is read then', async () => {
    const clock = { now: 1_800_000_000_000 };
    const store = createMemoryStore(() => clock.now);
    let down = false;
    const records: RevocationStore = {
      put: (r) => store.revocations.put(r),
      changedSince: (c) => (down ? Promise.reject(new Error('connection refused')) : store.revocations.changedSince(c)),
    };
    const states: string[] = [];
    const bus = createInProcessRevocationBus();
    const list = createRevocationList({ records, now: () => clock.now, horizonMs: HORIZON, bus, syncIntervalMs: 3_600_000, onSyncState: (s) => states.push(s.ok ? 'ok' : 'failing') });
    await list.start();
    await store.revocations.put({ kind: 'grant', id: 'g-before', revokedAt: clock.now, expiresAt: clock.now + HORIZON });
    await list.sync();
    down = true;
    await store.revocations.put({ kind: 'grant', id: 'g-missed', revokedAt: clock.now, expiresAt: clock.now + HORIZON });
    await assert.rejects(list.sync(), /connection refused/);
    await assert.rejects(list.sync(), /connection refused/);
    await bus.publish({ kind: 'token', id: 'j-heard', at: clock.now, until: clock.now + 60_000 });
    assert.equal(list.isRevoked({ grant_id: 'g-before' }), true, 'memory still answers');
    assert.equal(list.isRevoked({ jti: 'j-heard' }), true, 'and hears the bus');
    assert.equal(list.isRevoked({ grant_id: 'g-missed' }), false);
    down = false;
    await list.sync();
    assert.equal(list.isRevoked({ grant_id: 'g-missed' }), true, 'read once the Store answers again');
    assert.deepEqual(states, ['failing', 'ok']);
    await list.close();
  });

  it('close does not wait for a read the database never answers (a shutdown is not held for its limit), and its failure then is no outage', async () => {
    const clock = { now: 1_800_000_000_000 };
    const store = createMemoryStore(() => clock.now);
    let frozen = false;
    let fail: ((err: Error) => void) | undefined;
    const records: RevocationStore = {
      put: (r) => store.revocations.put(r),
      changedSince: (c) => (frozen ? new Promise((_, reject) => { fail = reject; }) : store.revocations.changedSince(c)),
    };
    const states: string[] = [];
    const list = createRevocationList({ records, now: () => clock.now, horizonMs: HORIZON, syncIntervalMs: 3_600_000, onSyncState: (s) => states.push(s.ok ? 'ok' : 'failing') });
    await list.start();
    frozen = true;
    const reading = list.sync();
    reading.catch(() => {});
    await waitFor(() => fail !== undefined, 'the read to be in flight', { timeoutMs: 2_000, intervalMs: 1 });
    const closed = await Promise.race([list.close().then(() => 'closed'), new Promise((resolve) => setTimeout(() => resolve('waiting'), 1_000))]);
    assert.equal(closed, 'closed');
    // The storage closing lets go of the connection: the read fails, reported as nothing.
    fail!(new Error('Connection terminated'));
    await assert.rejects(reading, /Connection terminated/);
    assert.deepEqual(states, []);
  });
});
