import { describe, it, mock } from 'node:test';
import assert from 'node:assert/strict';
import { SessionRegistry, type RegisteredSession } from '../../src/gateway/session-registry.ts';
import { GatewayError } from '../../src/gateway/errors.ts';
import { Session } from '../../src/gateway/session.ts';
import type { Principal } from '../../src/kernel/caller.ts';

const AUD = 'https://mcp.example.com/mcp';
const principal = (subject: string, clientId = 'client-1', audience = AUD): Principal => ({ subject, clientId, issuer: 'https://as.example.com', audience, scopes: [], roles: [], claims: {}, expiresAt: 2_000_000_000 });

class FakeSession implements RegisteredSession {
  static next = 0;
  readonly id = `s${++FakeSession.next}`;
  ended = false;
  endedWith: string | undefined;
  constructor(readonly binding: RegisteredSession['binding'], public lastUse: number, private readonly registry: () => SessionRegistry<FakeSession>) {}
  async end(reason: string): Promise<void> {
    this.ended = true;
    this.endedWith = reason;
    this.registry().delete(this.id);
  }
}

function setup(limits: { perCaller?: number; perUser?: number; perClient?: number } = {}) {
  const foreign: string[] = [];
  const evicted: string[] = [];
  let clock = 0;
  const registry: SessionRegistry<FakeSession> = new SessionRegistry<FakeSession>({
    serverPath: '/mcp',
    maxSessionsPerCaller: limits.perCaller ?? 3,
    maxSessionsPerUser: limits.perUser ?? 10,
    maxSessionsPerClient: limits.perClient,
    onForeign: (caller, id) => foreign.push(`${caller.subject}/${caller.clientId}→${id}`),
    onEvict: (s) => evicted.push(s.id),
  });
  const open = (p: Principal) => registry.open(p, () => new FakeSession({ subject: p.subject, clientId: p.clientId, audience: p.audience, serverPath: '/mcp' }, ++clock, () => registry));
  return { registry, open, foreign, evicted };
}

const refusedWith = (code: string, status: number) => (e: unknown) => e instanceof GatewayError && e.code === code && e.status === status;

describe('SessionRegistry (MCP 2025-11-25 transports §Session Management)', () => {
  it('find: the session bound to the caller is returned; without the header 400, unknown 404', () => {
    const { registry, open } = setup();
    const alice = principal('alice');
    const s = open(alice);
    assert.equal(registry.find(s.id, alice), s);
    assert.throws(() => registry.find(undefined, alice), refusedWith('session_required', 400));
    assert.throws(() => registry.find('', alice), refusedWith('session_required', 400));
    assert.throws(() => registry.find(['a', 'b'], alice), refusedWith('session_required', 400));
    assert.throws(() => registry.find('unknown', alice), refusedWith('session_not_found', 404));
  });

  it('MCP security best practices §Session Hijacking: a session presented by another subject, client or audience is 404, like an unknown one, and reported', () => {
    const { registry, open, foreign } = setup();
    const s = open(principal('alice'));
    for (const other of [principal('mallory'), principal('alice', 'client-2'), principal('alice', 'client-1', 'https://mcp.example.com/other')]) {
      assert.throws(() => registry.find(s.id, other), (e: unknown) => e instanceof GatewayError && e.status === 404 && e.description === 'Session not found');
    }
    assert.deepEqual(foreign, [`mallory/client-1→${s.id}`, `alice/client-2→${s.id}`, `alice/client-1→${s.id}`]);
    assert.equal(registry.find(s.id, principal('alice')), s);
  });

  it('an ended session is not found', async () => {
    const { registry, open } = setup();
    const alice = principal('alice');
    const s = open(alice);
    await s.end('deleted by client');
    assert.throws(() => registry.find(s.id, alice), refusedWith('session_not_found', 404));
    assert.equal(registry.size, 0);
  });

  it('maxSessionsPerCaller: one more session of the same caller ends its least recently used one; other callers keep theirs', () => {
    const { registry, open, evicted } = setup({ perCaller: 2 });
    const alice = principal('alice');
    const bobs = open(principal('bob'));
    const a1 = open(alice);
    const a2 = open(alice);
    a1.lastUse = 100; // used after a2
    const a3 = open(alice);
    assert.deepEqual(evicted, [a2.id]);
    assert.equal(a2.endedWith, 'replaced by a newer session of the same caller');
    assert.deepEqual([a1.ended, a3.ended, bobs.ended], [false, false, false]);
    assert.equal(registry.size, 3);
    assert.throws(() => registry.find(a2.id, alice), refusedWith('session_not_found', 404));
  });

  it('maxSessionsPerCaller with real sessions: uses within one millisecond are still ordered, so the session just used is kept', async () => {
    // The clock does not move: only the order of use can tell the sessions apart.
    const now = mock.method(Date, 'now', () => 1_700_000_000_000);
    const registry = new SessionRegistry<Session>({ serverPath: '/mcp', maxSessionsPerCaller: 2, maxSessionsPerUser: 10 });
    const alice = principal('alice');
    const make = () => new Session({ subject: 'alice', clientId: 'client-1', audience: AUD, serverPath: '/mcp' }, 60_000, (s) => registry.delete(s.id));
    try {
      const first = registry.open(alice, make);
      const second = registry.open(alice, make);
      first.touch();
      const third = registry.open(alice, make);
      assert.deepEqual([first.ended, second.ended, third.ended], [false, true, false]);
      for (const s of [first, third]) await s.end('test over');
    } finally {
      now.mock.restore();
    }
  });

  it('maxSessionsPerUser: a user past the bound across many clients is refused with 429 and nothing is ended; the create function is not called', () => {
    const { registry, open, evicted } = setup({ perCaller: 5, perUser: 3 });
    const sessions = ['dcr-1', 'dcr-2', 'dcr-3'].map((c) => open(principal('alice', c)));
    let created = false;
    assert.throws(
      () => registry.open(principal('alice', 'dcr-4'), () => {
        created = true;
        throw new Error('must not be called');
      }),
      (e: unknown) => e instanceof GatewayError && e.code === 'too_many_sessions' && e.status === 429 && /already holds 3 sessions/.test(e.description) && !e.description.includes('alice'),
    );
    assert.equal(created, false);
    assert.deepEqual(evicted, []);
    assert.ok(sessions.every((s) => !s.ended));
    // Another user is not affected by alice's bound.
    open(principal('bob', 'dcr-4'));
    assert.equal(registry.size, 4);
  });

  it('at both bounds, a caller recycling its own least recently used session is admitted (the user total does not grow)', () => {
    const { registry, open, evicted } = setup({ perCaller: 2, perUser: 2 });
    const alice = principal('alice');
    const [a1] = [open(alice), open(alice)];
    const a3 = open(alice);
    assert.deepEqual(evicted, [a1!.id]);
    assert.equal(registry.find(a3.id, alice), a3);
    assert.throws(() => open(principal('alice', 'client-2')), refusedWith('too_many_sessions', 429));
  });

  it('maxSessionsPerClient: one client past its bound across users is refused with 429; other clients, and recycling a caller\'s own session, are not', () => {
    const { registry, open } = setup({ perCaller: 1, perClient: 2 });
    open(principal('alice', 'shared'));
    const bobs = open(principal('bob', 'shared'));
    assert.throws(() => open(principal('carol', 'shared')), (e: unknown) => e instanceof GatewayError && e.status === 429 && /this client already holds 2 sessions/.test(e.description));
    open(principal('carol', 'other'));
    // bob's second session replaces his first: the client's total does not grow.
    const again = open(principal('bob', 'shared'));
    assert.equal(bobs.ended, true);
    assert.equal(registry.find(again.id, principal('bob', 'shared')), again);
  });

  it('cluster: a copy adopted from another instance is found like any session, but neither counted against the bounds nor evicted', () => {
    const { registry, open, evicted } = setup({ perCaller: 1, perUser: 1 });
    const alice = principal('alice');
    const copy = Object.assign(new FakeSession({ subject: 'alice', clientId: 'client-1', audience: AUD, serverPath: '/mcp' }, 0, () => registry), { adopted: true });
    registry.adopt(copy);
    assert.equal(registry.find(copy.id, alice), copy);
    assert.equal(registry.get(copy.id), copy);
    const own = open(alice);
    assert.deepEqual(evicted, [], 'the adopted copy is not the least recently used session to end');
    assert.equal(copy.ended, false);
    assert.equal(registry.size, 2);
    assert.throws(() => open(principal('alice', 'client-2')), refusedWith('too_many_sessions', 429), 'the own session counts');
    assert.equal(own.ended, false);
  });

  it('closeAll ends every session', async () => {
    const { registry, open } = setup();
    const all = [open(principal('alice')), open(principal('bob'))];
    await registry.closeAll('gateway shutting down');
    assert.ok(all.every((s) => s.endedWith === 'gateway shutting down'));
    assert.equal(registry.size, 0);
  });
});
