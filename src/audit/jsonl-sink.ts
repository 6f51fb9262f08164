/**
 * Audit events as JSON Lines (one JSON object per line, appended), for log shippers. Lines are
 * collected and written once per turn of the event loop; `close` writes what is left and waits
 * until the file has it.
 */
import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import { dirname } from 'node:path';
import type { AuditEvent, AuditSink } from './types.ts';

export class JsonlAuditSink implements AuditSink {
  readonly #stream: WriteStream;
  readonly #onError: (err: Error) => void;
  #lines: string[] = [];
  #scheduled: NodeJS.Immediate | undefined;
  #failed = false;
  #closed: Promise<void> | undefined;

  constructor(path: string, onError: (err: Error) => void = () => {}) {
    mkdirSync(dirname(path), { recursive: true });
    this.#onError = onError;
    this.#stream = createWriteStream(path, { flags: 'a', mode: 0o600 });
    this.#stream.on('error', (err) => {
      if (!this.#failed) this.#onError(new Error(`audit JSON Lines file ${path}: ${err.message}`));
      this.#failed = true;
    });
  }

  record(event: AuditEvent): void {
    if (this.#failed || this.#closed) return;
    this.#lines.push(`${JSON.stringify(event)}\n`);
    this.#scheduled ??= setImmediate(() => this.flush());
  }

  flush(): void {
    if (this.#scheduled) clearImmediate(this.#scheduled);
    this.#scheduled = undefined;
    if (!this.#lines.length || this.#failed) return;
    const chunk = this.#lines.join('');
    this.#lines = [];
    this.#stream.write(chunk);
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
