/**
 * The write schedule shared by the audit sinks: events are queued and written together every
 * `intervalMs` (default 100 ms) or as soon as `maxQueue` (default 256) are waiting, whichever
 * comes first, so a request costs one array push and the disk sees one write per batch, not one
 * per request. The timer is `unref()`ed: a pending batch never keeps the process alive; owners
 * call `flush()` on close (and before reading the trail back in-process).
 */

/** How long an event may wait in memory before it is written. */
export const FLUSH_INTERVAL_MS = 100;
/** A queue this long is written at once, without waiting for the timer. */
export const MAX_QUEUE = 256;

export interface BatchOptions {
  intervalMs?: number;
  maxQueue?: number;
}

export class Batch<T> {
  readonly #write: (items: T[]) => void;
  readonly #intervalMs: number;
  readonly #maxQueue: number;
  #queue: T[] = [];
  #timer: NodeJS.Timeout | undefined;

  /** `write` gets each batch once, in order; it must not throw (sinks report their own failures). */
  constructor(write: (items: T[]) => void, options: BatchOptions = {}) {
    this.#write = write;
    this.#intervalMs = options.intervalMs ?? FLUSH_INTERVAL_MS;
    this.#maxQueue = options.maxQueue ?? MAX_QUEUE;
  }

  get size(): number {
    return this.#queue.length;
  }

  push(item: T): void {
    this.#queue.push(item);
    if (this.#queue.length >= this.#maxQueue) this.flush();
    else if (!this.#timer) {
      this.#timer = setTimeout(() => this.flush(), this.#intervalMs);
      this.#timer.unref();
    }
  }

  /** Writes every queued item now. */
  flush(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (!this.#queue.length) return;
    const items = this.#queue;
    this.#queue = [];
    this.#write(items);
  }
}
