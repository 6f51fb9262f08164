/**
 * The sign-in backoff (src/authorization-server/rate-limit.ts createBackoff) kept in Redis, so a
 * password guesser who spreads attempts over every instance behind a load balancer meets one
 * backoff, not one per instance (RFC 6749 §10.10; OWASP: slow guessing, no lockout).
 *
 * One hash per key: `f` failures, `l` the last failure (ms), expiring `2 × maxMs` after the last
 * failure (the local backoff forgets a quiet key then too). The subject (an account name, an
 * address) is hashed into the key. When Redis is down or slow the instance's own backoff answers,
 * with one warning per outage.
 */
import { createHash } from 'node:crypto';
import { backoffWaitMs, type Backoff, type BackoffOptions, type SharedBackoff } from '../authorization-server/rate-limit.ts';
import { describeError, type Logger } from '../log.ts';
import type { RedisConnection } from './redis-connection.ts';

/** The longest a sign-in waits for Redis before the local backoff answers. */
const TIMEOUT_MS = 250;

// KEYS[1]: the hash; ARGV[1]: now (ms); ARGV[2]: expiry (ms). Counts one failure atomically.
const FAIL = `
redis.call('HINCRBY', KEYS[1], 'f', 1)
redis.call('HSET', KEYS[1], 'l', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1`;

export interface RedisBackoffOptions {
  /** Names the backoff in keys and logs (e.g. `sign-in-account`). */
  name: string;
  options: BackoffOptions;
  local: Backoff;
  now: () => number;
  logger: Logger;
}

/** @see https://www.rfc-editor.org/rfc/rfc6749#section-10.10 */
export function createRedisBackoff(connection: RedisConnection, { name, options, local, now, logger }: RedisBackoffOptions): SharedBackoff {
  const log = logger.child({ component: 'redis-backoff', backoff: name });
  let fallingBack = false;
  const keyOf = (key: string) => connection.key(`backoff:${name}:${createHash('sha256').update(key).digest('base64url').slice(0, 22)}`);

  /** Runs `shared` on Redis, or `fallback` while Redis cannot answer. */
  async function withRedis<T>(shared: () => Promise<T>, fallback: () => T): Promise<T> {
    try {
      const value = await connection.command(shared, TIMEOUT_MS);
      if (fallingBack) {
        fallingBack = false;
        log.info({ event: 'backoff_shared_again' }, `the ${name} backoff is shared across instances again`);
      }
      return value;
    } catch (err) {
      return useLocal(fallback, describeError(err).message);
    }
  }
  function useLocal<T>(fallback: () => T, reason: string): T {
    if (!fallingBack) {
      fallingBack = true;
      log.warn({ event: 'backoff_local_fallback', reason }, `Redis unavailable: the ${name} backoff is counted per instance until it is back`);
    }
    return fallback();
  }

  return {
    retryAfter: (key) => withRedis(async () => {
      const [f, l] = await connection.client.hmGet(keyOf(key), ['f', 'l']);
      const failures = Number(f ?? 0);
      const last = Number(l ?? 0);
      const t = now();
      if (!failures || t - last > 2 * options.maxMs) return 0;
      const remaining = last + backoffWaitMs(failures, options) - t;
      return remaining > 0 ? Math.ceil(remaining / 1000) : 0;
    }, () => local.retryAfter(key)),
    fail: (key) => withRedis(async () => {
      await connection.client.eval(FAIL, { keys: [keyOf(key)], arguments: [String(now()), String(2 * options.maxMs)] });
    }, () => local.fail(key)),
    reset: (key) => withRedis(async () => {
      await connection.client.del(keyOf(key));
    }, () => local.reset(key)),
  };
}
