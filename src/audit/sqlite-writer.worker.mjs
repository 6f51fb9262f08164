// The audit writer thread (sqlite-worker-sink.ts): its own better-sqlite3 connection on the
// gateway's database file (WAL: the main thread's readers and this writer do not block each
// other), inserting the rows it is sent, one transaction per batch, and answering each batch
// with `written` or `failed` so the main thread knows what reached the disk.
// Plain JavaScript on purpose: a worker does not inherit the TypeScript loader the main thread
// was started with (bin/mcp-warden.js registers tsx in-process), so this file needs none.
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';

const { path, sql, busyTimeoutMs } = workerData;
const db = new Database(path, { timeout: busyTimeoutMs });
db.pragma('synchronous = NORMAL');
const insert = db.prepare(sql);
const writeRows = db.transaction((rows) => {
  for (const row of rows) insert.run(row);
});

parentPort.on('message', (message) => {
  if (message.type === 'write') {
    try {
      writeRows(message.rows);
      parentPort.postMessage({ type: 'written', seq: message.seq });
    } catch (err) {
      parentPort.postMessage({ type: 'failed', seq: message.seq, message: err instanceof Error ? err.message : String(err) });
    }
  } else if (message.type === 'close') {
    db.close();
    parentPort.close();
  }
});
