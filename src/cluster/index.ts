/**
 * What the instances of one deployment share through Redis (config `cluster.redis`,
 * docs/deployment.md "Scale-out"): the revocation fan-out, the dynamic client registration limit,
 * the sign-in backoff, the MCP session directory with the instance hop, the account page's
 * sessions and key-rotation notices.
 */
import type { Config } from '../config/schema.ts';
import type { RevocationBus } from '../authorization-server/revocation.ts';
import type { Logger } from '../log.ts';
import { openRedisConnection, type RedisConnection } from './redis-connection.ts';
import { createRedisRevocationBus } from './revocation-bus.ts';
import { createRedisRateLimiter, type SharedRateLimiter } from './rate-limiter.ts';
import type { RateLimiter, SharedBackoffFactory } from '../authorization-server/rate-limit.ts';
import { createRedisBackoff } from './backoff.ts';
import { createSessionDirectory } from './session-directory.ts';
import { parseInstanceUrl } from './instance-url.ts';
import { ConfigError } from '../config/errors.ts';
import { createEndpointSessionSharing } from './session-routing.ts';
import type { SessionSharingFactory } from '../gateway/steps/context.ts';
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
  /** MCP sessions shared by the instances, per endpoint (src/cluster/session-routing.ts). */
  sessions: SessionSharingFactory;
  /** The account page's signed-in sessions, in Redis (503 while Redis cannot answer). */
  accountSessions(options: SharedSessionOptions): AccountSessions;
  /** Signing-key changes announced to every instance, which reload their keys from the Store. */
  keyNotices: KeyNotices;
  close(): Promise<void>;
}

/**
 * Where the other instances reach this one: `cluster.instanceUrl`, else the listening address and
 * port (a wildcard address read as loopback: right for instances on one host only).
 */
export function instanceUrlOf(config: Config, port: number): string {
  const configured = config.cluster?.instanceUrl;
  if (configured) return configured;
  const host = config.listen.host;
  const h = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '[::1]' : host.includes(':') ? `[${host}]` : host;
  return `http://${h}:${port}`;
}

/** The shared parts when `cluster.redis` is configured; undefined for a single instance. Never waits for Redis. */
export function openCluster(config: Config, logger: Logger, port: number = config.listen.port): Cluster | undefined {
  const redis = config.cluster?.redis;
  if (!redis) return undefined;
  // The configuration refuses `cluster.redis` without it (src/config/schema.ts); optional there only for its message.
  const secret = config.cluster!.secret;
  if (secret === undefined) throw new ConfigError('cluster.secret: required with cluster.redis');
  const instanceUrl = instanceUrlOf(config, port);
  // A default built from listen.host that peers refuse to send a hop to (an IPv6 zone, as in
  // fe80::1%eth0) is said at start, not found later as sessions no other instance can reach.
  if (parseInstanceUrl(instanceUrl) === undefined) {
    throw new ConfigError(`cluster.instanceUrl: the default ${instanceUrl} (from listen.host) is not an address the other instances can send a request to; set cluster.instanceUrl, e.g. http://10.0.0.5:8080`);
  }
  const connection = openRedisConnection({ url: redis.url, keyPrefix: redis.keyPrefix, logger });
  const directory = createSessionDirectory(connection, { instanceUrl, logger, secret });
  return {
    connection,
    revocationBus: createRedisRevocationBus(connection, logger),
    rateLimiter: (name, limit, local) => createRedisRateLimiter(connection, { name, ...limit, local, logger }),
    backoff: (name, options, local, now) => createRedisBackoff(connection, { name, options, local, now, logger }),
    accountSessions: (options) => createRedisAccountSessions(connection, { ...options, logger }),
    keyNotices: createRedisKeyNotices(connection, logger),
    sessions: (endpoint) => createEndpointSessionSharing({ ...endpoint, directory, secret }),
    async close() {
      await directory.close();
      await connection.close();
    },
  };
}
