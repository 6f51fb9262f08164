/**
 * Requests without a valid token cost the gateway a 401 and the audit trail a row each: a flood
 * of them would grow the store at the attacker's pace. They are folded here, per (server, reason,
 * remote address) over a window: the first of a window is recorded at once, exactly as before;
 * the others only increment a counter, written as one event with `count` when the window ends
 * (or on flush/close). So a flood of N bad-token requests costs at most two rows per key and
 * window, and the counts still add up to N. Authenticated decisions pass through untouched, one
 * event each.
 */
import type { AuditEvent, AuditSink } from './types.ts';

/** Distinct (server, reason, address) windows tracked at once; beyond, addresses fold into "*". */
export const MAX_WINDOWS = 10_000;

/** A denial made before any caller was known: no token, a malformed header, a token that did not verify. */
export function isUnauthenticatedDenial(e: AuditEvent): boolean {
  return e.decision === 'deny' && e.method === 'http' && e.subject === '' && e.clientId === '';
}

interface Window {
  startMs: number;
  /** The first occurrence folded in this window (the summary's template and time). */
  first: AuditEvent | undefined;
  folded: number;
  latencySum: number;
}

export interface UnauthenticatedFoldOptions {
  windowMs: number;
  maxWindows?: number;
  now?: () => number;
}

/** Wraps a sink: unauthenticated denials are folded, everything else goes straight through. */
export class UnauthenticatedFold implements AuditSink {
  readonly #next: AuditSink & { flush?(): unknown };
  readonly #windowMs: number;
  readonly #maxWindows: number;
  readonly #now: () => number;
  readonly #windows = new Map<string, Window>();
  #timer: NodeJS.Timeout | undefined;

  constructor(next: AuditSink & { flush?(): unknown }, options: UnauthenticatedFoldOptions) {
    this.#next = next;
    this.#windowMs = options.windowMs;
    this.#maxWindows = options.maxWindows ?? MAX_WINDOWS;
    this.#now = options.now ?? Date.now;
  }

  /** Windows currently open (for tests and metrics). */
  get openWindows(): number {
    return this.#windows.size;
  }

  record(event: AuditEvent): void {
    if (this.#windowMs <= 0 || !isUnauthenticatedDenial(event)) {
      this.#next.record(event);
      return;
    }
    const now = this.#now();
    let key = `${event.server}\0${event.reason}\0${event.remoteAddress ?? ''}`;
    let window = this.#windows.get(key);
    if (window && now - window.startMs >= this.#windowMs) {
      this.#emit(window);
      this.#windows.delete(key);
      window = undefined;
    }
    if (!window && this.#windows.size >= this.#maxWindows) {
      // Many addresses at once: fold them together so memory stays bounded.
      key = `${event.server}\0${event.reason}\0*`;
      event = { ...event, remoteAddress: '*' };
      window = this.#windows.get(key);
    }
    if (!window) {
      this.#windows.set(key, { startMs: now, first: undefined, folded: 0, latencySum: 0 });
      this.#schedule();
      this.#next.record(event);
      return;
    }
    window.first ??= event;
    window.folded++;
    window.latencySum += event.latencyUs;
  }

  /** Writes the counts folded so far (windows stay open), then flushes the next sink. */
  flush(): unknown {
    for (const window of this.#windows.values()) this.#emit(window);
    return this.#next.flush?.();
  }

  async close(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    for (const window of this.#windows.values()) this.#emit(window);
    this.#windows.clear();
    await this.#next.close();
  }

  #emit(window: Window): void {
    if (!window.first || window.folded === 0) return;
    this.#next.record({ ...window.first, count: window.folded, latencyUs: Math.round(window.latencySum / window.folded) });
    window.first = undefined;
    window.folded = 0;
    window.latencySum = 0;
  }

  /** One unref'd sweep timer while any window is open: ends windows no request has touched since. */
  #schedule(): void {
    if (this.#timer) return;
    this.#timer = setInterval(() => {
      const now = this.#now();
      for (const [key, window] of this.#windows) {
        if (now - window.startMs < this.#windowMs) continue;
        this.#emit(window);
        this.#windows.delete(key);
      }
      if (this.#windows.size === 0) {
        clearInterval(this.#timer);
        this.#timer = undefined;
      }
    }, Math.max(10, Math.ceil(this.#windowMs / 2)));
    this.#timer.unref();
  }
}
