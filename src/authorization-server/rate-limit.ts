/**
 * Fixed-window counters per key (client address, username), bounded in size: for dynamic client
 * registration and failed sign-ins. In memory, per process.
 */

export interface RateLimiter {
  /** Counts one event for `key`; false once more than `max` fell in the current window. */
  hit(key: string): boolean;
  /** Seconds until `key` is under the limit again (0: it is now). Counts nothing. */
  retryAfter(key: string): number;
  /** Forgets `key` (e.g. a user who signed in). */
  reset(key: string): void;
}

const MAX_KEYS = 10_000;

export function createRateLimiter({ max, windowMs }: { max: number; windowMs: number }, now: () => number = Date.now): RateLimiter {
  const windows = new Map<string, { start: number; count: number }>();
  const current = (key: string, t: number) => {
    const w = windows.get(key);
    return w && t - w.start < windowMs ? w : undefined;
  };
  return {
    hit(key) {
      const t = now();
      let w = current(key, t);
      if (!w) {
        if (windows.size >= MAX_KEYS) {
          // Drop expired windows first; only if all are live, start afresh (bounded memory).
          for (const [k, v] of windows) if (t - v.start >= windowMs) windows.delete(k);
          if (windows.size >= MAX_KEYS) windows.clear();
        }
        w = { start: t, count: 0 };
        windows.set(key, w);
      }
      w.count += 1;
      return w.count <= max;
    },
    retryAfter(key) {
      const t = now();
      const w = current(key, t);
      return w && w.count >= max ? Math.max(1, Math.ceil((w.start + windowMs - t) / 1000)) : 0;
    },
    reset(key) {
      windows.delete(key);
    },
  };
}

/**
 * At most `limit` tasks at once, at most `maxQueued` waiting; `run` resolves to `undefined`
 * without running the task when the queue is full (the caller answers "busy").
 */
export function createSemaphore(limit: number, maxQueued: number) {
  let active = 0;
  const waiting: Array<() => void> = [];
  return {
    async run<T>(task: () => Promise<T>): Promise<{ value: T } | undefined> {
      if (active >= limit) {
        if (waiting.length >= maxQueued) return undefined;
        await new Promise<void>((resolve) => waiting.push(resolve));
      } else {
        active += 1;
      }
      try {
        return { value: await task() };
      } finally {
        const next = waiting.shift();
        if (next) next(); // the slot passes to the next waiter
        else active -= 1;
      }
    },
  };
}
