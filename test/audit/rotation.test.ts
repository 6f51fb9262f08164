import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { JsonlAuditSink } from '../../src/audit/jsonl-sink.ts';
import type { AuditEvent } from '../../src/audit/types.ts';

const event = (n: number): AuditEvent => ({ time: '2026-01-21T10:00:00.000Z', subject: `user-${n}`, clientId: 'c', roles: [], server: 'notes', method: 'tools/call', target: 'read_note', decision: 'allow', rule: 'read', reason: 'ok', latencyUs: 1 });
const lines = (file: string) => readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as AuditEvent);

describe('audit: JSON Lines rotation by size', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'warden-rotate-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('rotates before maxBytes is passed, keeps `keep` files, never splits a line, and drops only the oldest', async () => {
    const file = join(dir, 'audit.jsonl');
    const lineBytes = Buffer.byteLength(`${JSON.stringify(event(10))}\n`);
    const errors: Error[] = [];
    const sink = new JsonlAuditSink(file, (e) => errors.push(e), { maxBytes: lineBytes * 5, keep: 2 });
    for (let n = 10; n < 40; n++) {
      sink.record(event(n));
      if (n % 2 === 1) sink.flush(); // batches of two events
    }
    await sink.close();
    assert.deepEqual(errors, []);
    assert.ok(!existsSync(`${file}.3`), 'no more than keep rotated files');
    const files = [`${file}.2`, `${file}.1`, file];
    for (const f of files) assert.ok(statSync(f).size <= lineBytes * 5, `${f} within maxBytes`);
    const subjects = files.flatMap((f) => lines(f).map((e) => e.subject));
    assert.deepEqual(subjects, Array.from({ length: 10 }, (_, i) => `user-${30 + i}`), 'the newest events (two files of two batches, the live one of one), in order, each whole');
  });

  it('counts an existing file toward maxBytes, and maxBytes 0 never rotates', async () => {
    const file = join(dir, 'existing.jsonl');
    writeFileSync(file, `${'x'.repeat(500)}\n`);
    const sink = new JsonlAuditSink(file, () => {}, { maxBytes: 600, keep: 1 });
    sink.record(event(1));
    await sink.close();
    assert.equal(readFileSync(`${file}.1`, 'utf8'), `${'x'.repeat(500)}\n`);
    assert.deepEqual(lines(file).map((e) => e.subject), ['user-1']);

    const plain = join(dir, 'plain.jsonl');
    const unbounded = new JsonlAuditSink(plain, () => {}, { maxBytes: 0 });
    for (let n = 0; n < 200; n++) unbounded.record(event(n));
    await unbounded.close();
    assert.equal(lines(plain).length, 200);
    assert.ok(!existsSync(`${plain}.1`));
  });
});
