/**
 * Audit writer micro-benchmark: how long the event loop is held per batch of audit events by
 *   - the inline SQLite writer (toRow + one insert transaction on the main connection), and
 *   - the worker writer (toRow + postMessage; the transaction runs on the writer thread),
 * for batches of 1, 100 and 256 events (batch.ts writes every 100 ms or at 256 events), plus the
 * wall time to get 50k events on disk through each (throughput of the whole path).
 * Run: npm run bench -- audit [--quick]
 *
 * Method: one process, a temp database file per writer, the same events; the two writers'
 * batches are interleaved (inline, worker, inline, …) so machine-load drift hits both alike;
 * the median and p90 main-thread time per batch are reported. The worker's own time is not on
 * the event loop and is not counted here; its cost shows in the drain wall time.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDatabase } from '../src/storage/sqlite/database.ts';
import { migrateAudit } from '../src/audit/sqlite-sink.ts';
import { createBatchWriter } from '../src/audit/sqlite-batches.ts';
import { toRow } from '../src/audit/row.ts';
import { SqliteWorkerAuditSink } from '../src/audit/sqlite-worker-sink.ts';
import type { AuditEvent } from '../src/audit/types.ts';

const quick = process.argv.includes('--quick');
const BATCHES = quick ? 60 : 300;
const TOTAL = quick ? 10_000 : 50_000;

const event = (i: number): AuditEvent => ({
  time: new Date(Date.UTC(2026, 0, 1) + i).toISOString(),
  subject: `user-${i % 50}`,
  clientId: 'https://client.example.com/metadata.json',
  roles: ['member'],
  server: 'notes',
  method: 'tools/call',
  target: 'read_note',
  decision: 'allow',
  rule: 'read',
  reason: 'allowed by rule "read"',
  latencyUs: 3,
  arguments: { id: '[redacted]' },
  sessionId: '5f0c3f4e-6b7a-4c1d-9a51-1e2f3a4b5c6d',
});

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))]!;

const dir = mkdtempSync(join(tmpdir(), 'warden-bench-audit-'));
try {
  const inlineDb = openDatabase(join(dir, 'inline.db'));
  migrateAudit(inlineDb);
  const writeInline = createBatchWriter(inlineDb);
  const workerDb = openDatabase(join(dir, 'worker.db'));
  const sink = new SqliteWorkerAuditSink(workerDb);
  const rows: string[] = [];
  rows.push('| batch size | inline: main-thread µs/batch (median, p90) | worker: main-thread µs/batch (median, p90) | inline/worker (median) |');
  rows.push('|---|---|---|---|');
  let seq = 0;
  for (const size of [1, 100, 256]) {
    const inline: number[] = [];
    const worker: number[] = [];
    for (let b = 0; b < BATCHES + 10; b++) {
      const events = Array.from({ length: size }, () => event(seq++));
      let t0 = performance.now();
      for (const e of events) void e; // same loop shape as the worker side's record calls
      writeInline(events.map(toRow));
      const ti = performance.now() - t0;
      t0 = performance.now();
      for (const e of events) sink.record(e);
      const drained = sink.flush(); // the synchronous part (rows + postMessage) is what the event loop pays
      const tw = performance.now() - t0;
      await drained;
      if (b >= 10) {
        inline.push(ti * 1000);
        worker.push(tw * 1000);
      }
    }
    rows.push(`| ${size} | ${pct(inline, 0.5).toFixed(1)}, ${pct(inline, 0.9).toFixed(1)} | ${pct(worker, 0.5).toFixed(1)}, ${pct(worker, 0.9).toFixed(1)} | ${(pct(inline, 0.5) / pct(worker, 0.5)).toFixed(2)} |`);
  }
  // Throughput: TOTAL events in batches of 256, until on disk.
  const drain: Record<string, number[]> = { inline: [], worker: [] };
  for (let round = 0; round < 3; round++) {
    const events = Array.from({ length: TOTAL }, () => event(seq++));
    let t0 = performance.now();
    for (let i = 0; i < TOTAL; i += 256) writeInline(events.slice(i, i + 256).map(toRow));
    drain.inline!.push(performance.now() - t0);
    t0 = performance.now();
    for (let i = 0; i < TOTAL; i += 256) {
      for (const e of events.slice(i, i + 256)) sink.record(e);
      void sink.flush();
    }
    await sink.flush();
    drain.worker!.push(performance.now() - t0);
  }
  await sink.close();
  inlineDb.close();
  workerDb.close();
  console.log(`audit writers, ${BATCHES} batches per size, interleaved; Node ${process.version}`);
  console.log(rows.join('\n'));
  console.log(`\n${TOTAL} events to disk in batches of 256 (median of 3, wall ms): inline ${pct(drain.inline!, 0.5).toFixed(0)}, worker ${pct(drain.worker!, 0.5).toFixed(0)} (the worker's inserts overlap the main thread's work)`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
