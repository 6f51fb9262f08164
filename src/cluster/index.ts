/**
 * What the instances of one deployment share through Redis (config `cluster.redis`,
 * docs/deployment.md "Scale-out"). So far: the revocation fan-out, the
 * dynamic client registration limit, the sign-in backoff, the account page's sessions and key-rotation notices.
 */
import type { Config } from '../config/schema.ts';
import type { RevocationBus } from '../authorization-server/revocation.ts';
import type { Logger } from '../log.ts';
import { openRedisConnection, type RedisConnection } from './redis-connection.ts';
import { createRedisRevocationBus } from './revocation-bus.ts';
import { createRedisRateLimiter, type SharedRateLimiter } from './rate-limiter.ts';
import type { RateLimiter, SharedBackoffFactory } from '../authorization-server/rate-limit.ts';
import { createRedisBackoff } from './backoff.ts';
import { createRedisAccountSessions } from './account-sessions.ts';
import { createRedisKeyNotices, type KeyNotices } from './key-notices.ts';
import type { AccountSessions, SharedSessionOptions } from '../account/sessions.ts';

export interface Cluster {
  connection: RedisConnection;
  revocationBus: RevocationBus;
  /** A fixed-window limit counted across every instance; `local` answers while Redis cannot. */
  rateLimiter(name: string, limit: { max: number; windowMs: number }, local: RateLimiter): SharedRateLimiter;
  /** The sign-in backoff kept in Redis; `local` answers while Redis cannot. */
  backoff: SharedBackoffFactory;
  /** The account page's signed-in sessions, in Redis (503 while Redis cannot answer). */
  accountSessions(options: SharedSessionOptions): AccountSessions;
  /** Signing-key changes announced to every instance, which reload their keys from the Store. */
  keyNotices: KeyNotices;
  close(): Promise<void>;
}

/** The shared parts when `cluster.redis` is configured; undefined for a single instance. Never waits for Redis. */
export function openCluster(config: Config, logger: Logger): Cluster | undefined {
  const redis = config.cluster?.redis;
  if (!redis) return undefined;
  const connection = openRedisConnection({ url: redis.url, keyPrefix: redis.keyPrefix, logger });
  return {
    connection,
    revocationBus: createRedisRevocationBus(connection, logger),
    rateLimiter: (name, limit, local) => createRedisRateLimiter(connection, { name, ...limit, local, logger }),
    backoff: (name, options, local, now) => createRedisBackoff(connection, { name, options, local, now, logger }),
    accountSessions: (options) => createRedisAccountSessions(connection, { ...options, logger }),
    keyNotices: createRedisKeyNotices(connection, logger),
    close: () => connection.close(),
  };
}
