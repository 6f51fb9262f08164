/**
 * Audit events as JSON Lines (one JSON object per line, appended), for log shippers. Events are
 * queued and written on the same schedule as the SQLite sink (batch.ts: every 100 ms or at 256
 * events), serialized at write time, as one asynchronous write per batch, never a synchronous
 * write per event; `close` writes what is left and waits until the file has it.
 *
 * Rotation by size (`maxBytes`, default off here, 100 MiB from the configuration): before a batch
 * would take the file past `maxBytes`, `audit.jsonl` is renamed to `audit.jsonl.1` (`.1` to `.2`,
 * …, the oldest beyond `keep` removed) and a new file is started. Writes still queued on the old
 * stream land in the renamed file (same inode), so no line is lost or split across files. Log
 * shippers that follow renames (Vector, Fluent Bit, Filebeat) read on; with external logrotate,
 * set `maxBytes` 0 and use `copytruncate`, as this stream keeps its file open.
 */
import { createWriteStream, mkdirSync, openSync, renameSync, rmSync, statSync, type WriteStream } from 'node:fs';
import { dirname } from 'node:path';
import { Batch, type BatchOptions } from './batch.ts';
import type { AuditEvent, AuditSink } from './types.ts';

export interface JsonlOptions extends BatchOptions {
  /** Rotate before the file would pass this many bytes; 0 or absent never rotates. */
  maxBytes?: number;
  /** Rotated files kept (`path.1` … `path.keep`), default 5. */
  keep?: number;
}

export class JsonlAuditSink implements AuditSink {
  readonly #path: string;
  readonly #onError: (err: Error) => void;
  readonly #batch: Batch<AuditEvent>;
  readonly #maxBytes: number;
  readonly #keep: number;
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
      rmSync(`${this.#path}.${this.#keep}`, { force: true });
      for (let i = this.#keep - 1; i >= 1; i--) {
        try {
          renameSync(`${this.#path}.${i}`, `${this.#path}.${i + 1}`);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        }
      }
      renameSync(this.#path, `${this.#path}.1`);
    } catch (err) {
      this.#onError(new Error(`audit JSON Lines rotation of ${this.#path}: ${(err as Error).message}`));
    }
    this.#bytes = 0;
    this.#stream = this.#open();
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
