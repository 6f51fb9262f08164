/**
 * Audit events as JSON Lines (one JSON object per line, appended), for log shippers. Events are
 * queued and written on the same schedule as the SQLite sink (batch.ts: every 100 ms or at 256
 * events), serialized at write time, as one asynchronous write per batch, never a synchronous
 * write per event; `close` writes what is left and waits until the file has it.
 *
 * Rotation by size (`maxBytes`, off unless configured): before a batch would take the file past
 * `maxBytes`, `audit.jsonl` is renamed to `audit.jsonl.<UTC time>` (`audit.jsonl.2026-11-26T15-21-09.123Z`;
 * should that time already have a file, `-N` appended, N above any already used for it, so names
 * sort by age) and a new file is started. Writes still queued on
 * the old stream land in the renamed file (same inode), so no line is lost or split across files.
 * Log shippers that follow renames (Vector, Fluent Bit, Filebeat) read on.
 *
 * What rotation deletes: only files named `audit.jsonl.<UTC time>`, the oldest beyond `keep`.
 * Nothing already stored is lost without the operator asking: the rename never replaces an existing
 * file (link + unlink, which fails on EEXIST, instead of rename, which overwrites), and the numbered
 * (`audit.jsonl.1`), compressed (`.gz`) or dated (`-20261126`) archives of logrotate, or any other
 * file, are never renamed or removed. With external logrotate, leave `maxBytes` 0 and use
 * `copytruncate`, as this stream keeps its file open.
 */
import { createWriteStream, linkSync, mkdirSync, openSync, readdirSync, rmSync, statSync, unlinkSync, type WriteStream } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { Batch, type BatchOptions } from './batch.ts';
import type { AuditEvent, AuditSink } from './types.ts';

export interface JsonlOptions extends BatchOptions {
  /** Rotate before the file would pass this many bytes; 0 or absent never rotates. */
  maxBytes?: number;
  /** Rotated files kept (`path.<UTC time>`, the newest `keep`), default 5. */
  keep?: number;
  /** Clock for the rotated files' names (tests). */
  now?: () => number;
}

/** The suffix of a rotated file: the UTC time of the rotation, `:` made `-` so it is a portable name, then `-N` on a clash. */
const ROTATED = /^\.(\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d\.\d{3}Z)(?:-(\d+))?$/;

/**
 * The files rotation made for `path` (and only those: names `path.<UTC time>[-N]`), oldest first.
 * Everything else beside it, logrotate's `path.1` or `path.1.gz` included, is not listed.
 */
export function listRotatedFiles(path: string): string[] {
  const found = rotatedEntries(path);
  found.sort((a, b) => (a.stamp < b.stamp ? -1 : a.stamp > b.stamp ? 1 : a.n - b.n));
  return found.map((f) => join(dirname(path), f.name));
}

/** The names `path.<UTC time>[-N]` beside `path`, parsed (no suffix: N = 0), in directory order. */
function rotatedEntries(path: string): { name: string; stamp: string; n: number }[] {
  const base = basename(path);
  const found: { name: string; stamp: string; n: number }[] = [];
  for (const name of readdirSync(dirname(path))) {
    if (!name.startsWith(`${base}.`)) continue;
    const m = ROTATED.exec(name.slice(base.length));
    if (m) found.push({ name, stamp: m[1]!, n: Number(m[2] ?? 0) });
  }
  return found;
}

export class JsonlAuditSink implements AuditSink {
  readonly #path: string;
  readonly #onError: (err: Error) => void;
  readonly #batch: Batch<AuditEvent>;
  readonly #maxBytes: number;
  readonly #keep: number;
  readonly #now: () => number;
  #stream: WriteStream;
  #bytes = 0;
  #failed = false;
  #closed: Promise<void> | undefined;
  /** Streams ended by rotation and not yet closed: `close` waits for them too. */
  #retiring = new Set<Promise<void>>();

  constructor(path: string, onError: (err: Error) => void = () => {}, options: JsonlOptions = {}) {
    mkdirSync(dirname(path), { recursive: true });
    this.#path = path;
    this.#onError = onError;
    this.#maxBytes = options.maxBytes ?? 0;
    this.#keep = options.keep ?? 5;
    this.#now = options.now ?? Date.now;
    try {
      this.#bytes = statSync(path).size;
    } catch {
      this.#bytes = 0;
    }
    this.#stream = this.#open();
    this.#batch = new Batch((events) => {
      if (this.#failed) return;
      let chunk = '';
      for (const e of events) chunk += `${JSON.stringify(e)}\n`;
      const size = Buffer.byteLength(chunk);
      if (this.#maxBytes > 0 && this.#bytes > 0 && this.#bytes + size > this.#maxBytes) this.#rotate();
      if (this.#failed) return;
      this.#stream.write(chunk);
      this.#bytes += size;
    }, options);
  }

  #open(): WriteStream {
    // Opened synchronously: a rotation right after must rename the file this stream writes to,
    // not race an open still in flight (which would then create a second file under the old name).
    let stream: WriteStream;
    try {
      stream = createWriteStream('', { fd: openSync(this.#path, 'a', 0o600) });
    } catch (err) {
      this.#failed = true;
      this.#onError(new Error(`audit JSON Lines file ${this.#path}: ${(err as Error).message}`));
      stream = createWriteStream('/dev/null', { flags: 'a' });
      stream.destroy();
      return stream;
    }
    stream.on('error', (err) => {
      if (!this.#failed) this.#onError(new Error(`audit JSON Lines file ${this.#path}: ${err.message}`));
      this.#failed = true;
    });
    return stream;
  }

  #rotate(): void {
    const old = this.#stream;
    const retired = new Promise<void>((resolve) => {
      if (old.destroyed) return resolve();
      old.once('close', () => resolve());
    });
    this.#retiring.add(retired);
    void retired.then(() => this.#retiring.delete(retired));
    old.end();
    try {
      this.#renameAside();
      const rotated = listRotatedFiles(this.#path);
      for (const file of rotated.slice(0, Math.max(0, rotated.length - this.#keep))) rmSync(file, { force: true });
    } catch (err) {
      this.#onError(new Error(`audit JSON Lines rotation of ${this.#path}: ${(err as Error).message}`));
    }
    this.#bytes = 0;
    this.#stream = this.#open();
  }

  /**
   * Moves the live file to `path.<UTC time>[-N]`, never onto an existing file (linkSync fails with
   * EEXIST where renameSync would replace it). N starts above the highest N already used for that
   * time, not at the first free one: pruning may have deleted a lower N, and reusing it would give
   * the newest file a name that sorts as the oldest, which the next pruning then deletes.
   */
  #renameAside(): void {
    const stamp = new Date(this.#now()).toISOString().replaceAll(':', '-');
    const taken = rotatedEntries(this.#path).filter((f) => f.stamp === stamp).map((f) => f.n);
    const first = taken.length > 0 ? Math.max(...taken) + 1 : 0;
    for (let n = first; ; n++) {
      const target = `${this.#path}.${stamp}${n === 0 ? '' : `-${n}`}`;
      try {
        linkSync(this.#path, target);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EEXIST' && n < first + 1000) continue;
        throw err;
      }
      unlinkSync(this.#path);
      return;
    }
  }

  record(event: AuditEvent): void {
    if (this.#failed || this.#closed) return;
    this.#batch.push(event);
  }

  /** Hands every queued event to the file stream now (the write itself is asynchronous). */
  flush(): void {
    this.#batch.flush();
  }

  close(): Promise<void> {
    this.flush();
    this.#closed ??= new Promise<void>((resolve) => {
      const stream = this.#stream;
      if (stream.destroyed) return resolve();
      stream.once('close', () => resolve());
      stream.end();
    }).then(() => Promise.all(this.#retiring).then(() => undefined));
    return this.#closed;
  }
}
