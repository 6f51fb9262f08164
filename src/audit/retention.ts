/**
 * Audit retention: events older than `audit.retention` are deleted from SQLite at start and then
 * periodically. Deletion goes in bounded chunks (whole batches oldest first over the batches' time
 * index, then the batch straddling the cut rewritten: sqlite-batches.ts), each its own short
 * transaction, and the periodic pruner yields to the event loop between chunks, so removing a
 * million old events never holds the database or the process for more than one chunk at a time.
 */
import type { SqliteDatabase } from '../storage/sqlite/database.ts';
import { migrateAudit } from './sqlite-sink.ts';
import { createPruneChunk, createPruneCount } from './sqlite-batches.ts';

/** Events deleted per transaction by `mcp-warden audit prune` (its own process). */
export const PRUNE_CHUNK = 5000;
/**
 * Events deleted per transaction by the running gateway, which yields between chunks: whole
 * batches until 1 000 events (four batches of 256 on a busy gateway, up to 1 000 batches of one
 * on a quiet one), so requests wait at most one short transaction.
 */
export const GATEWAY_PRUNE_CHUNK = 1000;
/** How often the running gateway prunes (after the prune at start). */
export const PRUNE_INTERVAL_MS = 60 * 60 * 1000;

export interface PruneOptions {
  /** Rows per transaction (default 5000). */
  chunk?: number;
  /** Count what would be removed, remove nothing. */
  dryRun?: boolean;
}

export interface PruneResult {
  /** Events removed (or, with `dryRun`, that would be). */
  removed: number;
  /** Transactions used (0 for a dry run). */
  chunks: number;
}

function statements(db: SqliteDatabase) {
  migrateAudit(db);
  return { count: createPruneCount(db), chunk: createPruneChunk(db) };
}

/** Deletes every event strictly older than `beforeMs` (an event at exactly `beforeMs` is kept), chunk by chunk. */
export function pruneAuditEvents(db: SqliteDatabase, beforeMs: number, options: PruneOptions = {}): PruneResult {
  const s = statements(db);
  if (options.dryRun) return { removed: s.count(beforeMs), chunks: 0 };
  const size = options.chunk ?? PRUNE_CHUNK;
  let removed = 0;
  let chunks = 0;
  for (;;) {
    const changes = s.chunk(beforeMs, size);
    if (changes === 0) break;
    removed += changes;
    chunks++;
    if (changes < size) break;
  }
  return { removed, chunks };
}

/** As `pruneAuditEvents`, yielding to the event loop between chunks (for the running gateway). */
export async function pruneAuditEventsInChunks(db: SqliteDatabase, beforeMs: number, options: PruneOptions & { isStopped?: () => boolean } = {}): Promise<PruneResult> {
  const s = statements(db);
  const size = options.chunk ?? PRUNE_CHUNK;
  let removed = 0;
  let chunks = 0;
  while (!options.isStopped?.()) {
    const changes = s.chunk(beforeMs, size);
    removed += changes;
    if (changes > 0) chunks++;
    if (changes < size) break;
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  return { removed, chunks };
}

export interface RetentionOptions {
  /** Keep events this many milliseconds; 0 keeps them forever (no pruner runs). */
  retentionMs: number;
  intervalMs?: number;
  chunk?: number;
  now?: () => number;
  onPruned?: (result: PruneResult) => void;
  onError?: (err: Error) => void;
  /**
   * Runs one prune somewhere else (the audit writer thread); default: on `db` here, yielding
   * between chunks. `cancel` asks a running one to stop after its current chunk.
   */
  prune?: { run(beforeMs: number, chunk: number): Promise<PruneResult>; cancel(): void };
}

export interface RetentionPruner {
  /** The prune in progress (or the last one), for tests and shutdown. */
  readonly idle: Promise<void>;
  stop(): Promise<void>;
}

/**
 * Prunes at once and then every `intervalMs` (default 1 h) on an `unref()`ed timer, so it never
 * keeps the process alive, in chunks of `chunk` (default 1 000) rows with a turn of the event loop
 * between them. Failures go to `onError`; the pruner keeps running.
 */
/** `db` may be omitted only when `options.prune` says where pruning runs. */
export function startRetention(db: SqliteDatabase | undefined, options: RetentionOptions): RetentionPruner {
  if (!db && !options.prune) throw new Error('audit retention needs a SQLite database or a prune function');
  const now = options.now ?? Date.now;
  let stopped = options.retentionMs <= 0;
  let idle: Promise<void> = Promise.resolve();
  const runOnce = () => {
    idle = idle.then(async () => {
      if (stopped) return;
      try {
        const before = now() - options.retentionMs;
        const chunk = options.chunk ?? GATEWAY_PRUNE_CHUNK;
        const result = options.prune ? await options.prune.run(before, chunk) : await pruneAuditEventsInChunks(db!, before, { chunk, isStopped: () => stopped });
        if (result.removed > 0) options.onPruned?.(result);
      } catch (err) {
        options.onError?.(new Error(`audit retention prune failed: ${(err as Error).message}`));
      }
    });
  };
  let timer: NodeJS.Timeout | undefined;
  if (!stopped) {
    runOnce();
    timer = setInterval(runOnce, options.intervalMs ?? PRUNE_INTERVAL_MS);
    timer.unref();
  }
  return {
    get idle() {
      return idle;
    },
    async stop() {
      stopped = true;
      if (timer) clearInterval(timer);
      options.prune?.cancel();
      await idle;
    },
  };
}
