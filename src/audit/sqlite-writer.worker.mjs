// The audit writer thread (sqlite-worker-sink.ts): its own better-sqlite3 connection on the
// gateway's database file (WAL: the main thread's readers and this writer do not block each
// other), inserting the rows it is sent, one transaction per batch, and answering each batch
// with `written` or `failed` so the main thread knows what reached the disk. It also runs the
// retention prune (retention.ts) chunk by chunk, taking new batches between chunks.
// Plain JavaScript on purpose: a worker does not inherit the TypeScript loader the main thread
// was started with (bin/mcp-warden.js registers tsx in-process), so this file needs none.
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';

const { path, sql, pruneSql, busyTimeoutMs } = workerData;
const db = new Database(path, { timeout: busyTimeoutMs });
db.pragma('synchronous = NORMAL');
const insert = db.prepare(sql);
const pruneChunk = db.prepare(pruneSql);
const writeRows = db.transaction((rows) => {
  for (const row of rows) insert.run(row);
});
const errorMessage = (err) => (err instanceof Error ? err.message : String(err));

let pruning = Promise.resolve();
let cancelled = false;
let closing = false;

async function prune(seq, beforeMs, chunk) {
  let removed = 0;
  let chunks = 0;
  try {
    while (!cancelled && !closing) {
      const { changes } = pruneChunk.run(beforeMs, chunk);
      removed += changes;
      if (changes > 0) chunks++;
      if (changes < chunk) break;
      // Batches posted meanwhile are written between chunks.
      await new Promise((resolve) => setImmediate(resolve));
    }
    parentPort.postMessage({ type: 'pruned', seq, removed, chunks });
  } catch (err) {
    parentPort.postMessage({ type: 'prune-failed', seq, message: errorMessage(err) });
  }
}

parentPort.on('message', (message) => {
  if (message.type === 'write') {
    try {
      writeRows(message.rows);
      parentPort.postMessage({ type: 'written', seq: message.seq });
    } catch (err) {
      parentPort.postMessage({ type: 'failed', seq: message.seq, message: errorMessage(err) });
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
      parentPort.close();
    });
  }
});
