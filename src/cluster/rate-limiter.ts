/**
 * Fixed-window rate limits counted in Redis, so every instance of a deployment counts against one
 * budget (an address that spreads its registrations over N instances behind a load balancer gets
 * the configured limit, not N times it).
 *
 * One key per (limit, subject): INCR, with the window's expiry set on the first hit, in one script,
 * so concurrent hits from any instance are counted exactly once and a key never outlives its
 * window. The window starts at the first hit and the key's expiry ends it, as the local limiter's
 * window does (src/authorization-server/rate-limit.ts); its remaining time is the key's PTTL.
 * Windows aligned to the clock instead split a burst that happens to straddle a boundary into two
 * counts. (Any fixed window, this one too, still lets a client that times its hits get up to twice
 * the limit around the end of a window; a sliding window would not, at a sorted set per subject.)
 * The subject (an address, an account name) is hashed into the key: Redis holds no personal data
 * and keys stay short.
 *
 * When Redis is down, or does not answer within `TIMEOUT_MS` (or has left an earlier command
 * unanswered: redis-connection.ts `command`), the instance's own limiter answers
 * (the limit then holds per instance, as with one instance), with one warning per outage.
 */
import { createHash } from 'node:crypto';
import type { RateLimiter } from '../authorization-server/rate-limit.ts';
import { describeError, type Logger } from '../log.ts';
import type { RedisConnection } from './redis-connection.ts';

/** The longest a request waits for Redis before the local limiter answers. */
const TIMEOUT_MS = 250;

// KEYS[1]: the counter; ARGV[1]: the window in ms. Returns the count in the current window.
// The first hit sets the expiry and later hits (refused ones too) leave it, so the window is
// windowMs from the first hit. PTTL < 0 also repairs a counter left without expiry, so no key is
// kept forever.
const INCR_WITH_EXPIRY = `
local n = redis.call('INCR', KEYS[1])
if n == 1 or redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n`;

/** A limiter whose answer may come from Redis. */
export interface SharedRateLimiter {
  /** Counts one event for `key`; false once more than `max` fell in the current window. */
  hit(key: string): Promise<boolean>;
}

export interface SharedRateLimiterOptions {
  /** Names the limit in keys and logs (e.g. `registration`). */
  name: string;
  max: number;
  windowMs: number;
  /** Answers while Redis cannot. */
  local: RateLimiter;
  logger: Logger;
}

/**
 * @see https://www.rfc-editor.org/rfc/rfc6585#section-4 (429 Too Many Requests)
 * @see https://redis.io/docs/latest/commands/incr/ (the rate-limiter pattern)
 */
export function createRedisRateLimiter(connection: RedisConnection, { name, max, windowMs, local, logger }: SharedRateLimiterOptions): SharedRateLimiter {
  const log = logger.child({ component: 'redis-rate-limit', limit: name });
  let fallingBack = false;
  const fallback = (key: string, reason: string): boolean => {
    if (!fallingBack) {
      fallingBack = true;
      log.warn({ event: 'rate_limit_local_fallback', reason }, `Redis unavailable: the ${name} limit is counted per instance until it is back`);
    }
    return local.hit(key);
  };
  return {
    async hit(key) {
      const digest = createHash('sha256').update(key).digest('base64url').slice(0, 22);
      const redisKey = connection.key(`rate:${name}:${digest}`);
      try {
        const count = await connection.command(() => connection.client.eval(INCR_WITH_EXPIRY, { keys: [redisKey], arguments: [String(windowMs)] }), TIMEOUT_MS);
        if (fallingBack) {
          fallingBack = false;
          log.info({ event: 'rate_limit_shared_again' }, `the ${name} limit is counted across instances again`);
        }
        return Number(count) <= max;
      } catch (err) {
        return fallback(key, describeError(err).message);
      }
    },
  };
}
