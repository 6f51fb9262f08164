import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { JsonlAuditSink, listRotatedFiles } from '../../src/audit/jsonl-sink.ts';
import { parseConfig } from '../../src/config/load.ts';
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
    let now = Date.UTC(2026, 10, 26, 15, 0, 0);
    const sink = new JsonlAuditSink(file, (e) => errors.push(e), { maxBytes: lineBytes * 5, keep: 2, now: () => now });
    for (let n = 10; n < 40; n++) {
      sink.record(event(n));
      if (n % 2 === 1) {
        sink.flush(); // batches of two events
        now += 1000;
      }
    }
    await sink.close();
    assert.deepEqual(errors, []);
    const rotated = listRotatedFiles(file);
    assert.equal(rotated.length, 2, 'no more than keep rotated files');
    for (const f of rotated) assert.match(f, /audit\.jsonl\.\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d\.\d{3}Z$/);
    const files = [...rotated, file];
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
    const [aside] = listRotatedFiles(file);
    assert.equal(readFileSync(aside!, 'utf8'), `${'x'.repeat(500)}\n`);
    assert.deepEqual(lines(file).map((e) => e.subject), ['user-1']);

    const plain = join(dir, 'plain.jsonl');
    const unbounded = new JsonlAuditSink(plain, () => {}, { maxBytes: 0 });
    for (let n = 0; n < 200; n++) unbounded.record(event(n));
    await unbounded.close();
    assert.equal(lines(plain).length, 200);
    assert.deepEqual(listRotatedFiles(plain), []);
  });

  it('nothing stored is lost unasked: rotation never renames, overwrites or removes logrotate archives or any file it did not make', async () => {
    const sub = join(dir, 'logrotated');
    mkdirSync(sub);
    const file = join(sub, 'audit.jsonl');
    // A deployment that rotated with logrotate before: numbered, compressed and dated archives.
    const theirs = { 'audit.jsonl.1': 'one\n', 'audit.jsonl.2': 'two\n', 'audit.jsonl.6': 'six\n', 'audit.jsonl.3.gz': 'gz', 'audit.jsonl-20261101': 'dated\n', 'other.log': 'other\n' };
    for (const [name, text] of Object.entries(theirs)) writeFileSync(join(sub, name), text);
    const now = Date.UTC(2026, 10, 26, 15, 0, 0); // a fixed clock: every rotation wants the same name
    const errors: Error[] = [];
    const sink = new JsonlAuditSink(file, (e) => errors.push(e), { maxBytes: 200, keep: 2, now: () => now });
    for (let n = 0; n < 40; n++) {
      sink.record(event(n));
      sink.flush();
    }
    await sink.close();
    assert.deepEqual(errors, []);
    for (const [name, text] of Object.entries(theirs)) assert.equal(readFileSync(join(sub, name), 'utf8'), text, `${name} untouched`);
    const rotated = listRotatedFiles(file);
    assert.equal(rotated.length, 2, 'only its own files are pruned to keep');
    assert.match(rotated[1]!, /Z-\d+$/, 'a name already taken gets -N instead of replacing that file');
    assert.equal(readdirSync(sub).length, Object.keys(theirs).length + 3, 'their files, two rotated, the live one');
  });

  it('rotations within one millisecond keep the newest files: a name freed by pruning is not reused, so names still sort by age', async () => {
    const sub = join(dir, 'same-millisecond');
    mkdirSync(sub);
    const file = join(sub, 'audit.jsonl');
    const lineBytes = Buffer.byteLength(`${JSON.stringify(event(10))}\n`);
    const now = Date.UTC(2026, 10, 26, 15, 0, 0); // a fixed clock: every rotation gets the same UTC time
    const errors: Error[] = [];
    // One event per file: each flush after the first rotates, seven rotations in all, keep + 5.
    const sink = new JsonlAuditSink(file, (e) => errors.push(e), { maxBytes: lineBytes, keep: 2, now: () => now });
    for (let n = 10; n < 18; n++) {
      sink.record(event(n));
      sink.flush();
    }
    await sink.close();
    assert.deepEqual(errors, []);
    const rotated = listRotatedFiles(file);
    assert.equal(rotated.length, 2);
    assert.deepEqual([...rotated, file].map((f) => lines(f).map((e) => e.subject)), [['user-15'], ['user-16'], ['user-17']], 'the two newest rotated files, oldest first, then the live one');
  });

  it('upgrade: rotation is off and retention keeps forever unless configured', () => {
    const config = parseConfig({ publicUrl: 'https://m.example.com', audit: { jsonl: '/var/log/mcp-warden/audit.jsonl' }, servers: [{ name: 'n', path: '/mcp', upstream: { http: { url: 'https://u.example.com/' } } }] });
    assert.equal(config.audit.jsonlMaxBytes, 0);
    assert.equal(config.audit.retention, 0);
    assert.equal(parseConfig({ publicUrl: 'https://m.example.com', audit: { jsonlMaxBytes: 100 * 1024 * 1024 }, servers: [{ name: 'n', path: '/mcp', upstream: { http: { url: 'https://u.example.com/' } } }] }).audit.jsonlMaxBytes, 100 * 1024 * 1024);
  });
});
