/**
 * Audit events as JSON Lines (one JSON object per line, appended), for log shippers. Events are
 * queued and written on the same schedule as the SQLite sink (batch.ts: every 100 ms or at 256
 * events), serialized at write time, as one asynchronous write per batch, never a synchronous
 * write per event; `close` writes what is left and waits until the file has it.
 */
import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import { dirname } from 'node:path';
import { Batch, type BatchOptions } from './batch.ts';
import type { AuditEvent, AuditSink } from './types.ts';

export class JsonlAuditSink implements AuditSink {
  readonly #stream: WriteStream;
  readonly #onError: (err: Error) => void;
  readonly #batch: Batch<AuditEvent>;
  #failed = false;
  #closed: Promise<void> | undefined;

  constructor(path: string, onError: (err: Error) => void = () => {}, options: BatchOptions = {}) {
    mkdirSync(dirname(path), { recursive: true });
    this.#onError = onError;
    this.#stream = createWriteStream(path, { flags: 'a', mode: 0o600 });
    this.#stream.on('error', (err) => {
      if (!this.#failed) this.#onError(new Error(`audit JSON Lines file ${path}: ${err.message}`));
      this.#failed = true;
    });
    this.#batch = new Batch((events) => {
      if (this.#failed) return;
      let chunk = '';
      for (const e of events) chunk += `${JSON.stringify(e)}\n`;
      this.#stream.write(chunk);
    }, options);
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
      if (this.#stream.destroyed) return resolve();
      this.#stream.once('close', () => resolve());
      this.#stream.end();
    });
    return this.#closed;
  }
}
