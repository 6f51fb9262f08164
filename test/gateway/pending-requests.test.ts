import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { PendingRequests, requestLimitsOf, type PendingRequest } from '../../src/gateway/pending-requests.ts';
import type { Exchange } from '../../src/gateway/exchange.ts';
import type { JsonRpcId } from '../../src/gateway/jsonrpc.ts';
import { waitFor } from '../helpers/wait-for.ts';

// The registry only keeps the exchange for whoever answers; it never calls it.
const exchange = {} as Exchange;
const limits = { timeoutMs: 60_000, maxTimeoutMs: 120_000, maxPending: 3, maxPendingBytes: 1000 };

describe('pending requests of a session', () => {
  it('servers[] keys become the limits in ms', () => {
    assert.deepEqual(requestLimitsOf({ requestTimeoutSeconds: 60, maxRequestTimeoutSeconds: 1800, maxPendingRequests: 100, maxPendingBytes: 8 }), { timeoutMs: 60_000, maxTimeoutMs: 1_800_000, maxPending: 100, maxPendingBytes: 8 });
  });

  it('one admission counts the requests it already let through: a batch cannot step past the count cap', () => {
    const pending = new PendingRequests(limits, () => {});
    pending.add(1, 'tools/call', undefined, exchange, 10);
    const admission = pending.admission(10);
    assert.equal(admission.refuse(2), undefined);
    assert.equal(admission.refuse(3), undefined);
    const refusal = admission.refuse(4);
    assert.equal(refusal?.id, 4);
    assert.equal(refusal?.error?.code, -32000);
    assert.match(refusal!.error!.message, /already has 3 requests waiting .*servers\[\]\.maxPendingRequests/);
    pending.clear();
  });

  it('the byte cap refuses a request that would pass it, but never the only pending one', () => {
    const pending = new PendingRequests(limits, () => {});
    assert.equal(pending.admission(5000).refuse(1), undefined, 'alone, any size up to maxBodyBytes gets through');
    pending.add(1, 'tools/call', undefined, exchange, 600);
    assert.match(pending.admission(500).refuse(2)!.error!.message, /would exceed 1000 bytes \(servers\[\]\.maxPendingBytes\)/);
    assert.equal(pending.admission(400).refuse(2), undefined);
    assert.equal(pending.take(1)?.bytes, 600);
    assert.deepEqual([pending.size, pending.bytes], [0, 0], 'an answered request gives its bytes back');
  });

  it('MCP lifecycle §Timeouts: progress resets the clock, never past maxTimeoutMs from the start; Retry-After counts to the first deadline', () => {
    let now = 1_000_000;
    const pending = new PendingRequests(limits, () => {}, () => now);
    const r = pending.add('a', 'tools/call', { _meta: { progressToken: 7 } }, exchange, 1);
    assert.equal(r.deadline, now + 60_000);
    assert.equal(pending.retryAfterSeconds(), 60);
    now += 50_000;
    assert.equal(pending.progressed(7), r);
    assert.equal(r.deadline, now + 60_000);
    now += 50_000;
    pending.progressed(7);
    assert.equal(r.deadline, 1_000_000 + 120_000, 'capped at the maximum');
    assert.equal(pending.progressed('7'), undefined, 'the token 7 and "7" are different tokens');
    pending.clear();
    assert.equal(pending.progressed(7), undefined, 'a released request no longer takes progress');
  });

  it('lifecycle §Cancellation: initialize never gets a deadline (its own timer ends the session instead)', () => {
    const pending = new PendingRequests(limits, () => {});
    assert.equal(pending.add(0, 'initialize', undefined, exchange, 1).deadline, Infinity);
    pending.clear();
  });

  it('at the deadline the request leaves the registry first, then the deadline handler runs; an answered request never reaches it', async () => {
    const expired: PendingRequest[] = [];
    const pending = new PendingRequests({ ...limits, timeoutMs: 20 }, (r) => {
      assert.equal(pending.has(r.id), false);
      expired.push(r);
    });
    pending.add(1, 'tools/call', undefined, exchange, 100);
    pending.add(2, 'tools/call', undefined, exchange, 100);
    pending.take(2);
    await waitFor(() => expired.length === 1, 'the deadline of request 1');
    assert.equal(expired[0]!.id, 1);
    assert.deepEqual([pending.size, pending.bytes], [0, 0]);
  });

  it('MCP lifecycle §Timeouts: every request expires at its own deadline, a progressed one later, and an answered one never', (t) => {
    // Simulated time: the registry's clock is injected and its timer mocked, advanced together one
    // millisecond at a time, so each deadline is checked to the millisecond and a stalled machine
    // cannot reorder them.
    t.mock.timers.enable({ apis: ['setTimeout'] });
    let now = 1_000_000;
    const advance = (ms: number) => {
      for (let i = 0; i < ms; i++) {
        now += 1;
        t.mock.timers.tick(1);
      }
    };
    const expired: { id: JsonRpcId; at: number }[] = [];
    const pending = new PendingRequests({ ...limits, timeoutMs: 400, maxTimeoutMs: 10_000 }, (r) => expired.push({ id: r.id, at: now - r.started }), () => now);
    const ids = () => expired.map((e) => e.id);
    pending.add(1, 'tools/call', undefined, exchange, 1);
    pending.add(2, 'tools/call', { _meta: { progressToken: 'p' } }, exchange, 1);
    pending.add(3, 'tools/call', undefined, exchange, 1);
    advance(100);
    pending.add(4, 'tools/call', undefined, exchange, 1);
    pending.take(1);
    advance(100);
    pending.progressed('p');
    advance(199);
    assert.deepEqual(ids(), [], 'nothing before the first deadline (400 ms)');
    advance(1);
    assert.deepEqual(ids(), [3], '3 at 400 ms; 1 was answered, 2 progressed');
    advance(99);
    assert.deepEqual(ids(), [3]);
    advance(1);
    assert.deepEqual(ids(), [3, 4], '4, added at 100 ms, at 500 ms');
    advance(99);
    assert.deepEqual(ids(), [3, 4]);
    advance(1);
    assert.deepEqual(expired, [{ id: 3, at: 400 }, { id: 4, at: 400 }, { id: 2, at: 600 }], 'progress at 200 ms moved the deadline of 2 to 400 ms after it');
    assert.equal(pending.size, 0);
    // Added after the timer stopped: arms it again.
    pending.add(5, 'tools/call', undefined, exchange, 1);
    advance(400);
    assert.deepEqual(expired[3], { id: 5, at: 400 });
  });
});
