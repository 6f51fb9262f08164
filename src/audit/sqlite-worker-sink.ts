/**
 * Audit events written to SQLite by a worker thread, so the insert transactions run off the
 * event loop. The request path is unchanged: `record` pushes to the same batch (batch.ts, 100 ms
 * or 256 events); a batch is posted to the writer thread (sqlite-writer.worker.ts) as one message
 * holding the batch encoded (batch-encoding.ts: each distinct text once, the events as numbers in
 * a transferred buffer), and the thread turns it into rows (row.ts) and stores them as one batch
 * (sqlite-batches.ts) on a second connection to the same database file (WAL). The main thread pays one array push per event and
 * one encoding and postMessage per batch (docs/benchmarks.md: the structured clone of the events
 * cost ~1.5 µs an event, rows or JSON ~0.9).
 *
 * - `flush()` posts the queue and resolves once the thread has answered for every batch posted
 *   so far, so an in-process reader (tests, `startWarden().flushAudit()`) sees them.
 * - A failed write is reported through `onError` (the rows are dropped, as the inline sink does).
 * - If the thread dies, that is reported through `onError` and the batches it had not answered
 *   for, and all later ones, are written on this thread instead: the process and the events live on.
 * - The thread is `unref()`ed while idle and ref'd while batches are in flight, so it never keeps
 *   the process alive but does finish what it was handed; `close()` drains it and waits for its exit.
 * - The retention prune (retention.ts) runs on the thread too, chunk by chunk, batches in between.
 * - What is in flight is bounded (`maxInFlightEvents`, default 10 000 rows): a thread that hangs
 *   without dying (another connection holding the write lock, each batch then waiting out the busy
 *   timeout; a stalled disk) would otherwise hold every later batch in memory. Past the bound a
 *   batch is written on this thread if the database takes it at once (busy timeout 0 for that
 *   write, so a held lock never blocks the event loop) and dropped otherwise; drops are counted and
 *   reported through `onError` (at once, then at most every 10 s, and a summary when the thread has
 *   caught up or the sink closes), never silently.
 */
import type { Worker } from 'node:worker_threads';
import type { SqliteDatabase } from '../storage/sqlite/database.ts';
import { ChurnMap } from '../kernel/churn-map.ts';
import { Batch, type BatchOptions } from './batch.ts';
import { pruneAuditEventsInChunks, type PruneResult } from './retention.ts';
import { migrateAudit } from './sqlite-sink.ts';
import { createBatchWriter } from './sqlite-batches.ts';
import { toRow, type AuditRow } from './row.ts';
import { encodeBatch } from './batch-encoding.ts';
import type { AuditEvent, AuditSink } from './types.ts';
import { startModuleWorker } from './module-worker.ts';
import type { WriterConnectionSettings, WriterData, WriterReply as Reply } from './sqlite-writer.worker.ts';

interface PendingPrune {
  beforeMs: number;
  chunk: number;
  resolve(result: PruneResult): void;
  reject(err: Error): void;
}

export interface SqliteWorkerOptions extends BatchOptions {
  /** How long the writer waits for a lock held by another connection (default 5000 ms). */
  busyTimeoutMs?: number;
  /** Rows posted to the thread and not yet answered for, at most (default `MAX_IN_FLIGHT_EVENTS`). */
  maxInFlightEvents?: number;
}

/**
 * Default bound on rows in flight to the writer thread: ~40 batches of 256, a few MB, and about
 * 2 s of writes at our measured sustained rate, so a healthy thread never reaches it.
 */
export const MAX_IN_FLIGHT_EVENTS = 10_000;
/** While the thread is behind, drops are reported at most this often (the first one at once). */
const DROP_REPORT_INTERVAL_MS = 10_000;

export class SqliteWorkerAuditSink implements AuditSink {
  readonly #db: SqliteDatabase;
  readonly #onError: (err: Error) => void;
  readonly #batch: Batch<AuditEvent>;
  readonly #worker: Worker;
  /** Batches posted and not yet answered for, by sequence number. */
  readonly #inFlight = new ChurnMap<number, AuditEvent[]>();
  /** Rows in `#inFlight`, kept at most `#maxInFlightEvents` (see the header). */
  #inFlightEvents = 0;
  readonly #maxInFlightEvents: number;
  /** While the thread is behind: rows written here instead, rows dropped (and not yet reported), when last reported. */
  #behind: { written: number; dropped: number; unreported: number; reportedAt: number } | undefined;
  /** Prunes asked of the thread and not yet answered. */
  readonly #prunes = new Map<number, PendingPrune>();
  /** flush() callers, each waiting for the writes up to its `seq` to be answered. */
  #waiters: { seq: number; resolve: () => void }[] = [];
  #seq = 0;
  #dead = false;
  #closing = false;
  #exited: Promise<void>;
  #inline: ((rows: readonly AuditRow[]) => void) | undefined;
  #writerConnection: WriterConnectionSettings | undefined;

  /** `db` is the main thread's connection: used for the migration and, should the thread die, for writing. */
  constructor(db: SqliteDatabase, onError: (err: Error) => void = () => {}, options: SqliteWorkerOptions = {}) {
    if (db.memory) throw new Error('the audit writer thread needs a database file, not :memory:');
    migrateAudit(db);
    this.#db = db;
    this.#onError = onError;
    this.#maxInFlightEvents = options.maxInFlightEvents ?? MAX_IN_FLIGHT_EVENTS;
    const workerData: WriterData = { path: db.name, busyTimeoutMs: options.busyTimeoutMs ?? 5000 };
    this.#worker = startModuleWorker('sqlite-writer.worker', import.meta.url, {
      workerData,
      stdout: false,
      stderr: false,
    });
    this.#worker.unref();
    this.#worker.on('message', (reply: Reply) => this.#answered(reply));
    this.#worker.on('error', (err) => {
      this.#onError(new Error(`audit writer thread failed: ${err.message}`));
    });
    this.#exited = new Promise((resolve) => {
      this.#worker.once('exit', (code) => {
        this.#dead = true;
        if (!this.#closing) this.#onError(new Error(`audit writer thread exited (code ${code}); writing audit events on the main thread from now on`));
        // What the thread never answered for is written here, in order.
        const orphans = [...this.#inFlight.values()];
        this.#inFlight.clear();
        this.#inFlightEvents = 0;
        for (const rows of orphans) this.#writeInline(rows);
        // Prunes it never answered run here (the pruner yields between chunks).
        const prunes = [...this.#prunes.values()];
        this.#prunes.clear();
        for (const p of prunes) pruneAuditEventsInChunks(this.#db, p.beforeMs, { chunk: p.chunk }).then(p.resolve, p.reject);
        this.#settle();
        resolve();
      });
    });
    this.#batch = new Batch((events) => this.#post(events), options);
  }

  /** The writer thread (diagnostics and tests). */
  get worker(): Worker {
    return this.#worker;
  }

  /**
   * How the thread's connection was opened, as SQLite reports it (diagnostics and tests); undefined
   * until the thread has opened it (its first message, before any batch is answered).
   */
  get writerConnection(): WriterConnectionSettings | undefined {
    return this.#writerConnection;
  }

  /** Rows posted to the thread and not yet answered for (diagnostics and tests). */
  get inFlightEvents(): number {
    return this.#inFlightEvents;
  }

  record(event: AuditEvent): void {
    this.#batch.push(event);
  }

  /** Posts the queue and resolves when every batch posted so far is on disk (or reported as failed). */
  flush(): Promise<void> {
    this.#batch.flush();
    if (this.#inFlight.size === 0) return Promise.resolve();
    const seq = this.#seq;
    return new Promise((resolve) => this.#waiters.push({ seq, resolve }));
  }

  /** Drains the queue and the thread, then ends the thread. */
  async close(): Promise<void> {
    await this.flush();
    this.#caughtUp();
    if (!this.#closing && !this.#dead) {
      this.#closing = true;
      this.#worker.ref();
      this.#worker.postMessage({ type: 'close' });
    }
    this.#closing = true;
    await this.#exited;
  }

  /**
   * Deletes events strictly older than `beforeMs` on the writer thread, `chunk` rows per
   * transaction, writing batches between chunks (retention.ts); on this thread if it is gone.
   */
  prune(beforeMs: number, chunk: number): Promise<PruneResult> {
    if (this.#dead) return pruneAuditEventsInChunks(this.#db, beforeMs, { chunk });
    if (this.#closing) return Promise.resolve({ removed: 0, chunks: 0 });
    const seq = ++this.#seq;
    return new Promise((resolve, reject) => {
      this.#prunes.set(seq, { beforeMs, chunk, resolve, reject });
      this.#updateRef();
      this.#worker.postMessage({ type: 'prune', seq, beforeMs, chunk });
    });
  }

  /** Asks a running prune to stop after its current chunk (shutdown). */
  cancelPrune(): void {
    if (!this.#dead && this.#prunes.size > 0) this.#worker.postMessage({ type: 'cancel-prune' });
  }

  #post(events: AuditEvent[]): void {
    if (this.#dead) {
      this.#writeInline(events);
      return;
    }
    // A batch is always posted when nothing is in flight, so one larger than the bound still goes.
    if (this.#inFlightEvents > 0 && this.#inFlightEvents + events.length > this.#maxInFlightEvents) {
      this.#overflow(events);
      return;
    }
    const seq = ++this.#seq;
    this.#inFlight.set(seq, events);
    this.#inFlightEvents += events.length;
    this.#updateRef();
    const { strings, values } = encodeBatch(events);
    this.#worker.postMessage({ type: 'write', seq, strings, values }, [values.buffer as ArrayBuffer]);
  }

  /**
   * The thread is behind by the whole bound: write here if SQLite takes the rows without waiting
   * (busy timeout 0 for this one write, restored before returning, so a lock held elsewhere costs
   * no event-loop time), else drop them and report the count.
   */
  #overflow(events: readonly AuditEvent[]): void {
    const rows = events.map(toRow);
    const now = Date.now();
    const behind = (this.#behind ??= { written: 0, dropped: 0, unreported: 0, reportedAt: 0 });
    let busyTimeout: number | undefined;
    try {
      busyTimeout = this.#db.pragma('busy_timeout', { simple: true }) as number;
      this.#db.pragma('busy_timeout = 0');
      this.#inline ??= createBatchWriter(this.#db);
      this.#inline(rows);
      behind.written += rows.length;
    } catch (err) {
      behind.dropped += rows.length;
      behind.unreported += rows.length;
      if (behind.reportedAt === 0 || now - behind.reportedAt >= DROP_REPORT_INTERVAL_MS) {
        this.#onError(new Error(`dropped ${behind.unreported} audit event(s): the writer thread has ${this.#inFlightEvents} in flight (limit ${this.#maxInFlightEvents}) and this thread could not write them without waiting: ${(err as Error).message}`));
        behind.unreported = 0;
        behind.reportedAt = now;
      }
    } finally {
      if (busyTimeout !== undefined) this.#db.pragma(`busy_timeout = ${busyTimeout}`);
    }
  }

  /** Ends a period of being behind: reports the drops not yet reported and the totals. */
  #caughtUp(): void {
    const behind = this.#behind;
    if (!behind) return;
    this.#behind = undefined;
    if (behind.dropped === 0) return;
    this.#onError(new Error(`audit writer thread caught up: dropped ${behind.unreported} more audit event(s) since the last report (while it was behind: ${behind.dropped} dropped, ${behind.written} written on the main thread)`));
  }

  #answered(reply: Reply): void {
    if (reply.type === 'opened') {
      this.#writerConnection = reply.settings;
      return;
    }
    if (reply.type === 'pruned' || reply.type === 'prune-failed') {
      const pending = this.#prunes.get(reply.seq);
      this.#prunes.delete(reply.seq);
      if (reply.type === 'pruned') pending?.resolve({ removed: reply.removed, chunks: reply.chunks });
      else pending?.reject(new Error(reply.message));
      this.#updateRef();
      return;
    }
    const rows = this.#inFlight.get(reply.seq);
    this.#inFlight.delete(reply.seq);
    this.#inFlightEvents -= rows?.length ?? 0;
    // Caught up once half the bound is free again (not at the first free slot, so a thread just
    // keeping pace at the bound does not flap between behind and caught up on every batch).
    if (this.#behind && this.#inFlightEvents <= this.#maxInFlightEvents / 2) this.#caughtUp();
    if (reply.type === 'failed') this.#onError(new Error(`could not write ${rows?.length ?? 0} audit event(s) to SQLite: ${reply.message}`));
    this.#updateRef();
    this.#settle();
  }

  /** Ref'd while it has work in flight (so that work finishes), unref'd when idle. */
  #updateRef(): void {
    if (this.#dead) return;
    if (this.#closing || this.#inFlight.size > 0 || this.#prunes.size > 0) this.#worker.ref();
    else this.#worker.unref();
  }

  /** Resolves the flush() calls whose writes are all answered (batches later than theirs do not hold them up). */
  #settle(): void {
    const oldest: number | undefined = this.#inFlight.keys().next().value;
    const done = this.#waiters.filter((w) => oldest === undefined || w.seq < oldest);
    if (done.length === 0) return;
    this.#waiters = this.#waiters.filter((w) => !done.includes(w));
    for (const w of done) w.resolve();
  }

  #writeInline(events: readonly AuditEvent[]): void {
    try {
      this.#inline ??= createBatchWriter(this.#db);
      this.#inline(events.map(toRow));
    } catch (err) {
      this.#onError(new Error(`could not write ${events.length} audit event(s) to SQLite: ${(err as Error).message}`));
    }
  }
}
