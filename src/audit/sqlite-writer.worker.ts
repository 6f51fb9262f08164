// The audit writer thread (sqlite-worker-sink.ts): its own better-sqlite3 connection on the
// gateway's database file (WAL: the main thread's readers and this writer do not block each
// other), turning each batch of events it is sent (batch-encoding.ts) into rows and storing them
// as one batch row (sqlite-batches.ts) in one transaction per batch, and answering each batch
// with `written` or `failed` so the main thread knows what reached the disk. Its first message,
// `opened`, says how its connection was opened. It also runs the
// retention prune (retention.ts) chunk by chunk, taking new batches between chunks.
// Started through module-worker.ts, which runs it compiled (dist/) or from source (tsx).
import { parentPort, workerData } from 'node:worker_threads';
import { sqliteDriver } from '../storage/sqlite/driver.ts';
import { decodeBatch } from './batch-encoding.ts';
import { createBatchWriter, createPruneChunk, openWriterConnection } from './sqlite-batches.ts';

/** What the main thread hands the thread at start (the database is migrated by then). */
export interface WriterData {
  path: string;
  busyTimeoutMs: number;
}

/** Main thread → writer thread. */
export type WriterRequest =
  /** A batch of events as batch-encoding.ts encodes it (`values`' buffer is transferred). */
  | { type: 'write'; seq: number; strings: string[]; values: Float64Array }
  | { type: 'prune'; seq: number; beforeMs: number; chunk: number }
  | { type: 'cancel-prune' }
  | { type: 'close' };

/** How the thread's connection was opened (`openWriterConnection`), read back from SQLite. */
export interface WriterConnectionSettings {
  /** `PRAGMA cache_size`: pages when positive, KiB when negative. */
  cacheSize: number;
  /** `PRAGMA synchronous`: 0 OFF, 1 NORMAL, 2 FULL, 3 EXTRA. */
  synchronous: number;
  /** `PRAGMA busy_timeout`, ms. */
  busyTimeoutMs: number;
  /** `PRAGMA journal_mode`. */
  journalMode: string;
}

/** Writer thread → main thread: `opened` once, first; then one answer per `write` and per `prune`. */
export type WriterReply =
  | { type: 'opened'; settings: WriterConnectionSettings }
  | { type: 'written'; seq: number }
  | { type: 'failed'; seq: number; message: string }
  | { type: 'pruned'; seq: number; removed: number; chunks: number }
  | { type: 'prune-failed'; seq: number; message: string };

if (!parentPort) throw new Error('sqlite-writer.worker runs as a worker thread (sqlite-worker-sink.ts starts it)');
const port = parentPort;
const { path, busyTimeoutMs } = workerData as WriterData;
const db = openWriterConnection(sqliteDriver(), path, busyTimeoutMs);
const writeRows = createBatchWriter(db);
const pruneChunk = createPruneChunk(db);
const errorMessage = (err: unknown): string => (err instanceof Error ? err.message : String(err));
const reply = (message: WriterReply): void => port.postMessage(message);
const pragma = (name: string): unknown => db.pragma(name, { simple: true });
reply({ type: 'opened', settings: { cacheSize: pragma('cache_size') as number, synchronous: pragma('synchronous') as number, busyTimeoutMs: pragma('busy_timeout') as number, journalMode: pragma('journal_mode') as string } });

let pruning = Promise.resolve();
let cancelled = false;
let closing = false;

async function prune(seq: number, beforeMs: number, chunk: number): Promise<void> {
  let removed = 0;
  let chunks = 0;
  try {
    while (!cancelled && !closing) {
      const changes = pruneChunk(beforeMs, chunk);
      removed += changes;
      if (changes > 0) chunks++;
      if (changes < chunk) break;
      // Batches posted meanwhile are written between chunks.
      await new Promise((resolve) => setImmediate(resolve));
    }
    reply({ type: 'pruned', seq, removed, chunks });
  } catch (err) {
    reply({ type: 'prune-failed', seq, message: errorMessage(err) });
  }
}

port.on('message', (message: WriterRequest) => {
  if (message.type === 'write') {
    try {
      writeRows(decodeBatch(message));
      reply({ type: 'written', seq: message.seq });
    } catch (err) {
      reply({ type: 'failed', seq: message.seq, message: errorMessage(err) });
    }
  } else if (message.type === 'prune') {
    cancelled = false;
    pruning = pruning.then(() => prune(message.seq, message.beforeMs, message.chunk));
  } else if (message.type === 'cancel-prune') {
    cancelled = true;
  } else if (message.type === 'close') {
    closing = true;
    void pruning.then(() => {
      db.close();
      port.close();
    });
  }
});
