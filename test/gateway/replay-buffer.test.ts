import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ReplayBuffer } from '../../src/gateway/replay-buffer.ts';
import { formatEventId, parseLastEventId } from '../../src/gateway/event-id.ts';
import { GatewayError } from '../../src/gateway/errors.ts';

describe('replay buffer and event IDs (MCP 2025-11-25 transports §Resumability and Redelivery)', () => {
  it('MCP transports §Resumability and Redelivery: replays only the named stream, after the named event', () => {
    const b = new ReplayBuffer({ maxEvents: 10, maxBytes: 1000, retentionMs: 60_000 });
    b.push(1, 1, 'a1', 0);
    b.push(2, 2, 'b2', 0);
    b.push(1, 3, 'a3', 0);
    assert.deepEqual(b.after(1, 1)!.map((e) => e.text), ['a3']);
    assert.deepEqual(b.after(1, 0)!.map((e) => e.text), ['a1', 'a3']);
    assert.deepEqual(b.after(2, 0)!.map((e) => e.text), ['b2']);
  });

  it('replayMaxBytes: the oldest events go first; a resume before an evicted event of its stream is a gap (undefined)', () => {
    const b = new ReplayBuffer({ maxEvents: 100, maxBytes: 10, retentionMs: 60_000 });
    b.push(1, 1, '12345', 0);
    b.push(2, 2, '12345', 0);
    b.push(1, 3, '12345', 0);
    assert.equal(b.size, 2);
    assert.equal(b.heldBytes, 10);
    assert.equal(b.after(1, 0), undefined, 'seq 1 of stream 1 is gone');
    assert.deepEqual(b.after(1, 1)!.map((e) => e.seq), [3]);
    assert.deepEqual(b.after(2, 0)!.map((e) => e.seq), [2], 'stream 2 lost nothing');
  });

  it('replayRetentionSeconds: events older than the retention expire; a finished stream is forgotten once nothing of it is held', () => {
    const b = new ReplayBuffer({ maxEvents: 100, maxBytes: 1000, retentionMs: 1000 });
    b.push(1, 1, 'old', 0);
    b.finish(1);
    b.push(2, 2, 'new', 900);
    b.prune(1500);
    assert.equal(b.size, 1);
    assert.equal(b.knows(1), false);
    assert.equal(b.knows(2), true);
    b.prune(5000);
    assert.equal(b.size, 0);
    assert.equal(b.heldBytes, 0);
    assert.equal(b.after(2, 1), undefined, 'the expired event is a gap for a live stream');
  });

  it('event IDs round-trip; anything else is a 400 invalid_message', () => {
    assert.deepEqual(parseLastEventId(formatEventId(7, 0, 42)), { session: 7, stream: 0, seq: 42 });
    assert.equal(parseLastEventId(undefined), undefined);
    // cluster: the instance holding the replay buffer prefixes the ID (docs/deployment.md "Scale-out").
    assert.equal(formatEventId(7, 0, 42, 'k3x9'), 'k3x9.7-0-42');
    assert.deepEqual(parseLastEventId(formatEventId(7, 0, 42, 'k3x9')), { instance: 'k3x9', session: 7, stream: 0, seq: 42 });
    for (const bad of ['.7-0-42', 'K3.7-0-42', 'a-b.7-0-42', 'k3x9.7-0', 'k3x9.k3x9.7-0-42', `${'a'.repeat(17)}.7-0-42`]) {
      assert.throws(() => parseLastEventId(bad), (err: unknown) => err instanceof GatewayError && err.status === 400, bad);
    }
    for (const bad of ['', '7-0', '7-0-42-1', '7-x-42', '07-0-42', '-1-0-4', '7-0-4.5', `${'9'.repeat(16)}-0-1`, ['7-0-1', '7-0-2']]) {
      assert.throws(() => parseLastEventId(bad), (err: unknown) => err instanceof GatewayError && err.status === 400 && err.code === 'invalid_message', String(bad));
    }
  });
});
