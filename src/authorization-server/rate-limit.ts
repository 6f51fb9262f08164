/**
 * Per-key limits, bounded in size, in memory, per process: fixed-window counters (dynamic client
 * registration per address) and exponential backoff (failed sign-ins per account and per
 * address). With `cluster.redis` the same limits are kept in Redis for every instance
 * (src/cluster/rate-limiter.ts, src/cluster/backoff.ts) and these answer only while Redis cannot.
 */
import { LRUCache } from 'lru-cache';

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
  // Bounded, least recently used out: a flood of new keys evicts old ones, never every window at once.
  const windows = new LRUCache<string, { start: number; count: number }>({ max: MAX_KEYS });
  const current = (key: string, t: number) => {
    const w = windows.get(key);
    return w && t - w.start < windowMs ? w : undefined;
  };
  return {
    hit(key) {
      const t = now();
      let w = current(key, t);
      if (!w) {
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

export interface Backoff {
  /** Seconds `key` must wait before its next attempt (0: it may try now). */
  retryAfter(key: string): number;
  /** Counts one failure for `key`. */
  fail(key: string): void;
  /** Forgets `key` (an account that signed in). */
  reset(key: string): void;
}

export interface BackoffOptions { freeFailures: number; baseMs: number; maxMs: number }

/** The wait after `failures` failures: none for the free ones, then `baseMs` doubling up to `maxMs`. */
export function backoffWaitMs(failures: number, { freeFailures, baseMs, maxMs }: BackoffOptions): number {
  return failures < freeFailures ? 0 : Math.min(maxMs, baseMs * 2 ** Math.min(30, failures - freeFailures));
}

/** A Backoff whose state may live elsewhere (Redis: one state for every instance), so it answers with promises. */
export interface SharedBackoff {
  retryAfter(key: string): Promise<number>;
  fail(key: string): Promise<void>;
  reset(key: string): Promise<void>;
}

/**
 * Builds the SharedBackoff named `name` (src/cluster/backoff.ts); `local` is this instance's own
 * Backoff, for when the shared state cannot answer.
 */
export type SharedBackoffFactory = (name: string, options: BackoffOptions, local: Backoff, now: () => number) => SharedBackoff;

/** The instance's own Backoff as a SharedBackoff: a single instance, no cluster configured. */
export function unsharedBackoff(local: Backoff): SharedBackoff {
  return {
    retryAfter: async (key) => local.retryAfter(key),
    fail: async (key) => local.fail(key),
    reset: async (key) => local.reset(key),
  };
}

/**
 * Exponential backoff per key (RFC 6749 §10.10 / OWASP: slow password guessing without a lockout):
 * the first `freeFailures` failures cost nothing; after that each one doubles the wait before the
 * next attempt, from `baseMs` up to `maxMs`, counted from the last failure. Attempts refused
 * during a wait are not failures, so nobody can push the wait beyond `maxMs`, and whoever tries
 * after it (the account's owner with the right password) gets in. A key quiet for twice `maxMs`
 * is forgotten.
 */
export function createBackoff(options: BackoffOptions, now: () => number = Date.now): Backoff {
  const { maxMs } = options;
  // Bounded, least recently used out: the quietest keys are forgotten first.
  const keys = new LRUCache<string, { failures: number; last: number }>({ max: MAX_KEYS });
  const live = (key: string, t: number) => {
    const k = keys.get(key);
    if (k && t - k.last > 2 * maxMs) { keys.delete(key); return undefined; }
    return k;
  };
  const waitMs = (failures: number) => backoffWaitMs(failures, options);
  return {
    retryAfter(key) {
      const t = now();
      const k = live(key, t);
      if (!k) return 0;
      const remaining = k.last + waitMs(k.failures) - t;
      return remaining > 0 ? Math.ceil(remaining / 1000) : 0;
    },
    fail(key) {
      const t = now();
      const k = live(key, t);
      if (k) {
        k.failures += 1;
        k.last = t;
        keys.set(key, k);
        return;
      }
      keys.set(key, { failures: 1, last: t });
    },
    reset(key) {
      keys.delete(key);
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
