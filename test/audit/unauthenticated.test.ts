import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { isUnauthenticatedDenial, UnauthenticatedFold } from '../../src/audit/unauthenticated.ts';
import type { AuditEvent, AuditSink } from '../../src/audit/types.ts';
import { waitFor } from '../helpers/wait-for.ts';
import { formatTable } from '../../src/cli/commands/audit.ts';

function unauthenticated(overrides: Partial<AuditEvent> = {}): AuditEvent {
  return { time: '2026-01-21T10:00:00.000Z', subject: '', clientId: '', roles: [], server: 'notes', method: 'http', target: null, decision: 'deny', rule: null, reason: 'invalid token: signature', latencyUs: 10, sessionId: null, remoteAddress: '203.0.113.7', ...overrides };
}

function collector() {
  const events: AuditEvent[] = [];
  let closed = false;
  const sink: AuditSink & { flush(): void } = { record: (e) => void events.push(e), flush() {}, close: async () => void (closed = true) };
  return { sink, events, closed: () => closed };
}

const total = (events: AuditEvent[]) => events.reduce((n, e) => n + (e.count ?? 1), 0);

describe('audit: unauthenticated denials folded per (server, reason, remote address) window', () => {
  it('RFC 6750 §3.1 invalid_token flood: the first is recorded at once, N more become one event with count N', () => {
    let now = 0;
    const out = collector();
    const fold = new UnauthenticatedFold(out.sink, { windowMs: 60_000, now: () => now });
    fold.record(unauthenticated({ time: 't0' }));
    assert.equal(out.events.length, 1, 'first occurrence written at once');
    assert.equal(out.events[0]!.count, undefined, 'the first stands for itself');
    for (let i = 1; i <= 1000; i++) {
      now = i;
      fold.record(unauthenticated({ time: `t${i}`, latencyUs: i % 2 ? 10 : 30 }));
    }
    assert.equal(out.events.length, 1, 'the flood is only counted while the window is open');
    now = 60_000;
    fold.record(unauthenticated({ time: 'next-window' }));
    assert.equal(out.events.length, 3, 'window end: one summary, then the next window opens with its first event at once');
    assert.equal(out.events[1]!.count, 1000);
    assert.equal(out.events[1]!.time, 't1', 'the summary carries the time of the first folded request');
    assert.equal(out.events[1]!.latencyUs, 20, 'mean latency of the folded requests');
    assert.equal(out.events[2]!.time, 'next-window');
    assert.equal(total(out.events), 1002);
  });

  it('keys are (server, reason, remote address): different addresses and reasons are separate, each first recorded', () => {
    const out = collector();
    const fold = new UnauthenticatedFold(out.sink, { windowMs: 60_000, now: () => 0 });
    for (let i = 0; i < 3; i++) {
      fold.record(unauthenticated({ remoteAddress: '203.0.113.7' }));
      fold.record(unauthenticated({ remoteAddress: '198.51.100.1' }));
      fold.record(unauthenticated({ reason: 'no access token' }));
      fold.record(unauthenticated({ server: 'other' }));
    }
    assert.equal(out.events.length, 4, 'four keys, four first occurrences');
    fold.flush();
    assert.equal(out.events.length, 8);
    assert.deepEqual(out.events.slice(4).map((e) => e.count), [2, 2, 2, 2]);
    assert.equal(total(out.events), 12);
  });

  it('authenticated decisions (and caller-bound denials) are never folded: one event each', () => {
    const out = collector();
    const fold = new UnauthenticatedFold(out.sink, { windowMs: 60_000, now: () => 0 });
    const allow: Partial<AuditEvent> = { subject: 'alice', clientId: 'c', method: 'tools/call', decision: 'allow', reason: 'ok' };
    const scopeDenial: Partial<AuditEvent> = { subject: 'bob', clientId: 'c', reason: 'missing required scope mcp:read' };
    for (let i = 0; i < 50; i++) {
      fold.record(unauthenticated(allow));
      fold.record(unauthenticated(scopeDenial));
    }
    assert.equal(out.events.length, 100);
    assert.ok(out.events.every((e) => e.count === undefined));
    assert.equal(isUnauthenticatedDenial(unauthenticated(scopeDenial)), false);
    assert.equal(isUnauthenticatedDenial(unauthenticated()), true);
  });

  it('windowMs 0 records every unauthenticated denial, as before', () => {
    const out = collector();
    const fold = new UnauthenticatedFold(out.sink, { windowMs: 0 });
    for (let i = 0; i < 20; i++) fold.record(unauthenticated());
    assert.equal(out.events.length, 20);
  });

  it('flush writes the counts so far without reopening the window; close writes the rest and closes the sink', async () => {
    let now = 0;
    const out = collector();
    const fold = new UnauthenticatedFold(out.sink, { windowMs: 60_000, now: () => now });
    for (let i = 0; i < 5; i++) fold.record(unauthenticated());
    fold.flush();
    assert.deepEqual(out.events.map((e) => e.count), [undefined, 4]);
    fold.flush();
    assert.equal(out.events.length, 2, 'nothing new, nothing written');
    now = 10;
    for (let i = 0; i < 3; i++) fold.record(unauthenticated());
    assert.equal(out.events.length, 2, 'still the same window: no new first event after a flush');
    await fold.close();
    assert.deepEqual(out.events.map((e) => e.count), [undefined, 4, 3]);
    assert.ok(out.closed());
    assert.equal(total(out.events), 8);
  });

  it('the unref\'d sweep ends idle windows on its own, and many addresses fold into "*" beyond maxWindows', async () => {
    const out = collector();
    const fold = new UnauthenticatedFold(out.sink, { windowMs: 30, maxWindows: 2 });
    for (let i = 0; i < 4; i++) {
      fold.record(unauthenticated({ remoteAddress: `192.0.2.${i}` }));
      fold.record(unauthenticated({ remoteAddress: `192.0.2.${i}` }));
    }
    assert.equal(fold.openWindows, 3, 'two addresses plus the shared "*" window');
    assert.deepEqual(out.events.map((e) => e.remoteAddress), ['192.0.2.0', '192.0.2.1', '*']);
    await waitFor(() => fold.openWindows === 0, 'the sweep to end the windows');
    assert.equal(total(out.events), 8);
    assert.equal(out.events.find((e) => e.remoteAddress === '*' && e.count !== undefined)?.count, 3);
    await fold.close();
  });

  it('mcp-warden audit shows how many requests a folded event stands for', () => {
    const table = formatTable([unauthenticated({ count: 41 }), unauthenticated()]);
    const [, folded, single] = table.split('\n');
    assert.match(folded!, /invalid token: signature \(×41\)$/);
    assert.match(single!, /invalid token: signature$/);
  });
});
