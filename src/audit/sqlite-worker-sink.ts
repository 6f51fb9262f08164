/**
 * Audit events written to SQLite by a worker thread, so the insert transactions run off the
 * event loop. The request path is unchanged: `record` pushes to the same batch (batch.ts, 100 ms
 * or 256 events); a batch becomes rows here and is posted to the writer thread
 * (sqlite-writer.worker.mjs), which owns a second connection to the same database file (WAL).
 *
 * - `flush()` posts the queue and resolves once the thread has answered for every batch posted
 *   so far, so an in-process reader (tests, `startWarden().flushAudit()`) sees them.
 * - A failed write is reported through `onError` (the rows are dropped, as the inline sink does).
 * - If the thread dies, that is reported through `onError` and the batches it had not answered
 *   for, and all later ones, are written on this thread instead: the process and the events live on.
 * - The thread is `unref()`ed while idle and ref'd while batches are in flight, so it never keeps
 *   the process alive but does finish what it was handed; `close()` drains it and waits for its exit.
 * - The retention prune (retention.ts) runs on the thread too, chunk by chunk, batches in between.
 */
import { Worker } from 'node:worker_threads';
import type { SqliteDatabase } from '../storage/sqlite/database.ts';
import { Batch, type BatchOptions } from './batch.ts';
import { pruneAuditEventsInChunks, PRUNE_CHUNK_SQL, type PruneResult } from './retention.ts';
import { createRowWriter, INSERT_SQL, migrateAudit, toRow, type AuditRow } from './sqlite-sink.ts';
import type { AuditEvent, AuditSink } from './types.ts';

const WORKER_URL = new URL('./sqlite-writer.worker.mjs', import.meta.url);

type Reply =
  | { type: 'written'; seq: number }
  | { type: 'failed'; seq: number; message: string }
  | { type: 'pruned'; seq: number; removed: number; chunks: number }
  | { type: 'prune-failed'; seq: number; message: string };

interface PendingPrune {
  beforeMs: number;
  chunk: number;
  resolve(result: PruneResult): void;
  reject(err: Error): void;
}

export interface SqliteWorkerOptions extends BatchOptions {
  /** How long the writer waits for a lock held by another connection (default 5000 ms). */
  busyTimeoutMs?: number;
}

export class SqliteWorkerAuditSink implements AuditSink {
  readonly #db: SqliteDatabase;
  readonly #onError: (err: Error) => void;
  readonly #batch: Batch<AuditEvent>;
  readonly #worker: Worker;
  /** Batches posted and not yet answered for, by sequence number. */
  readonly #inFlight = new Map<number, AuditRow[]>();
  /** Prunes asked of the thread and not yet answered. */
  readonly #prunes = new Map<number, PendingPrune>();
  /** flush() callers, each waiting for the writes up to its `seq` to be answered. */
  #waiters: { seq: number; resolve: () => void }[] = [];
  #seq = 0;
  #dead = false;
  #closing = false;
  #exited: Promise<void>;
  #inline: ((rows: readonly AuditRow[]) => void) | undefined;

  /** `db` is the main thread's connection: used for the migration and, should the thread die, for writing. */
  constructor(db: SqliteDatabase, onError: (err: Error) => void = () => {}, options: SqliteWorkerOptions = {}) {
    if (db.memory) throw new Error('the audit writer thread needs a database file, not :memory:');
    migrateAudit(db);
    this.#db = db;
    this.#onError = onError;
    this.#worker = new Worker(WORKER_URL, {
      workerData: { path: db.name, sql: INSERT_SQL, pruneSql: PRUNE_CHUNK_SQL, busyTimeoutMs: options.busyTimeoutMs ?? 5000 },
      // The worker is plain JavaScript: no TypeScript loader (and no test-runner flags) needed.
      execArgv: [],
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
        for (const rows of orphans) this.#writeInline(rows);
        // Prunes it never answered run here (the pruner yields between chunks).
        const prunes = [...this.#prunes.values()];
        this.#prunes.clear();
        for (const p of prunes) pruneAuditEventsInChunks(this.#db, p.beforeMs, { chunk: p.chunk }).then(p.resolve, p.reject);
        this.#settle();
        resolve();
      });
    });
    this.#batch = new Batch((events) => this.#post(events.map(toRow)), options);
  }

  /** The writer thread (diagnostics and tests). */
  get worker(): Worker {
    return this.#worker;
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

  #post(rows: AuditRow[]): void {
    if (this.#dead) {
      this.#writeInline(rows);
      return;
    }
    const seq = ++this.#seq;
    this.#inFlight.set(seq, rows);
    this.#updateRef();
    this.#worker.postMessage({ type: 'write', seq, rows });
  }

  #answered(reply: Reply): void {
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

  #writeInline(rows: readonly AuditRow[]): void {
    try {
      this.#inline ??= createRowWriter(this.#db);
      this.#inline(rows);
    } catch (err) {
      this.#onError(new Error(`could not write ${rows.length} audit event(s) to SQLite: ${(err as Error).message}`));
    }
  }
}
