/**
 * Signed-in sessions of the account page (src/account/sessions.ts) kept in Redis, so a user
 * signed in through one instance is signed in on every instance behind the load balancer, and a
 * sign-out on any instance ends the session on all of them (OWASP Session Management: the server
 * invalidates the session at sign-out, not only the browser's cookie).
 *
 * One hash per session: `s` the subject, `c` created (ms), `l` last seen (ms), `f` a flash
 * message, `m` an HMAC-SHA256 over the key, subject and creation time under a key derived from a
 * secret kept in PostgreSQL (src/account/page-keys.ts): write access to Redis alone cannot mint
 * a session for someone (a record without a valid `m` is no session, and is logged). The key is `account-session:` + SHA-256 of the session id: Redis (its dumps, its
 * MONITOR output) never holds a value a browser could present as a cookie. The key's expiry is
 * the session's remaining life, min(idle timeout, absolute lifetime left), renewed at each
 * request, so Redis itself forgets an idle or expired session; the script also checks the
 * absolute lifetime, so a clock that disagrees with Redis' cannot extend a session.
 *
 * Redis down or slow: the account page answers 503 "try again in a minute" rather than falling
 * back to this instance's memory. A local fallback would let a session signed out elsewhere live
 * on here, and sign-out must end the session everywhere. One warning per outage, one info line
 * when Redis answers again; nothing to restart.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { AccountError } from '../account/errors.ts';
import { newSessionId, type AccountSession, type AccountSessions, type SharedSessionOptions } from '../account/sessions.ts';
import { describeError, type Logger } from '../log.ts';
import type { RedisConnection } from './redis-connection.ts';

/** The longest an account page request waits for Redis before it answers 503. */
const TIMEOUT_MS = 1000;

// KEYS[1]: the session; ARGV: now, idleMs, maxMs. Returns {subject, created, mac} and renews the
// expiry, or nil (deleting it when past its absolute lifetime) when the session is unknown,
// malformed or past its absolute lifetime.
const TOUCH = `
local v = redis.call('HMGET', KEYS[1], 's', 'c', 'm')
if not v[1] or not v[2] or not v[3] then return nil end
-- A creation time that is not a number was not written by an instance: no session (a Lua error
-- here would reach the caller as "Redis unavailable", 503).
local created = tonumber(v[2])
if not created then return nil end
local now = tonumber(ARGV[1])
local ttl = math.min(tonumber(ARGV[2]), created + tonumber(ARGV[3]) - now)
if ttl <= 0 then redis.call('DEL', KEYS[1]) return nil end
redis.call('HSET', KEYS[1], 'l', ARGV[1])
redis.call('PEXPIRE', KEYS[1], math.floor(ttl))
return {v[1], v[2], v[3]}`;

// KEYS[1]: the session; ARGV[1]: the message. Only a live session keeps one.
const SET_FLASH = `
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HSET', KEYS[1], 'f', ARGV[1]) end
return 1`;

// KEYS[1]: the session. The message, removed in the same step (shown once).
const TAKE_FLASH = `
local f = redis.call('HGET', KEYS[1], 'f')
if f then redis.call('HDEL', KEYS[1], 'f') end
return f`;

/** The Redis key of a session id: its SHA-256, never the id itself. */
export function accountSessionKey(connection: Pick<RedisConnection, 'key'>, id: string): string {
  return connection.key(`account-session:${createHash('sha256').update(id).digest('base64url')}`);
}

/** @see https://cheatsheetseries.owasp.org/cheatsheets/Session_Management_Cheat_Sheet.html */
export function createRedisAccountSessions(connection: RedisConnection, { idleMs, maxMs, now, recordKey, logger }: SharedSessionOptions & { logger: Logger }): AccountSessions {
  const log = logger.child({ component: 'redis-account-sessions' });
  // Bound to the key (so a record cannot be copied to another id), the subject and the creation time.
  const macOf = (key: string, subject: string, created: string) => createHmac('sha256', recordKey).update(`${key}\u0000${subject}\u0000${created}`).digest('base64url');
  let unavailable = false;

  /** Runs `command` on Redis within TIMEOUT_MS, or throws the 503 the account page renders. */
  async function withRedis<T>(command: () => Promise<T>): Promise<T> {
    try {
      const value = await connection.command(command, TIMEOUT_MS);
      if (unavailable) {
        unavailable = false;
        log.info({ event: 'account_sessions_available' }, 'account page sessions are reachable in Redis again');
      }
      return value;
    } catch (err) {
      const reason = describeError(err).message;
      if (!unavailable) {
        unavailable = true;
        log.warn({ event: 'account_sessions_unavailable', reason }, 'Redis unavailable: the account page answers 503 until it is back (its sessions live there)');
      }
      // No log reason: the outage was logged once above, not once per request.
      throw new AccountError(503, 'The account page is unavailable', 'Your session cannot be checked right now. Try again in a minute.');
    }
  }

  return {
    async get(id) {
      if (id === undefined) return undefined;
      const t = now();
      const key = accountSessionKey(connection, id);
      const found = await withRedis(() => connection.client.eval(TOUCH, { keys: [key], arguments: [String(t), String(idleMs), String(maxMs)] }));
      if (!Array.isArray(found) || found.length !== 3) return undefined;
      const [subject, created, mac] = found.map(String) as [string, string, string];
      const expected = Buffer.from(macOf(key, subject, created));
      if (expected.length !== Buffer.byteLength(mac) || !timingSafeEqual(expected, Buffer.from(mac))) {
        log.warn({ event: 'account_session_forged' }, 'a session record in Redis does not carry a valid MAC (written by something other than an instance); refused');
        return undefined;
      }
      return { id, subject, createdAt: Number(created), lastSeenAt: t } satisfies AccountSession;
    },
    async create({ subject }) {
      const t = now();
      const session: AccountSession = { id: newSessionId(), subject, createdAt: t, lastSeenAt: t };
      const key = accountSessionKey(connection, session.id);
      await withRedis(() => connection.client.multi()
        .hSet(key, { s: subject, c: String(t), l: String(t), m: macOf(key, subject, String(t)) })
        .pExpire(key, Math.min(idleMs, maxMs))
        .exec());
      return session;
    },
    async destroy(id) {
      await withRedis(() => connection.client.del(accountSessionKey(connection, id)));
    },
    async setFlash(id, message) {
      await withRedis(() => connection.client.eval(SET_FLASH, { keys: [accountSessionKey(connection, id)], arguments: [message] }));
    },
    async takeFlash(id) {
      const f = await withRedis(() => connection.client.eval(TAKE_FLASH, { keys: [accountSessionKey(connection, id)] }));
      return typeof f === 'string' ? f : undefined;
    },
  };
}
