/**
 * What the instances of one deployment share through Redis (config `cluster.redis`,
 * docs/deployment.md "Scale-out"). So far: the revocation fan-out.
 */
import type { Config } from '../config/schema.ts';
import type { RevocationBus } from '../authorization-server/revocation.ts';
import type { Logger } from '../log.ts';
import { openRedisConnection, type RedisConnection } from './redis-connection.ts';
import { createRedisRevocationBus } from './revocation-bus.ts';

export interface Cluster {
  connection: RedisConnection;
  revocationBus: RevocationBus;
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
    close: () => connection.close(),
  };
}
