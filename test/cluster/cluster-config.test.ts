/**
 * `cluster.redis` in the configuration: parsed at the edge, every failure naming the key.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, parseConfig } from '../../src/config/load.ts';

const base = (cluster: unknown) => ({
  publicUrl: 'https://mcp.example.com',
  servers: [{ name: 'notes', path: '/mcp', upstream: { http: { url: 'http://127.0.0.1:9/mcp' } } }],
  ...(cluster === undefined ? {} : { cluster }),
});

describe('cluster.redis configuration', () => {
  it('absent: no cluster (a single instance)', () => {
    assert.equal(parseConfig(base(undefined)).cluster, undefined);
  });
  it('a redis:// or rediss:// URL, with the default key prefix mcp-warden:', () => {
    assert.deepEqual(parseConfig(base({ redis: { url: 'redis://127.0.0.1:6379' } })).cluster, { redis: { url: 'redis://127.0.0.1:6379', keyPrefix: 'mcp-warden:' } });
    assert.equal(parseConfig(base({ redis: { url: 'rediss://cache.internal:6380', keyPrefix: 'prod:' } })).cluster?.redis.keyPrefix, 'prod:');
  });
  it('another scheme, a bad prefix or an unknown key is refused with an error naming the key', () => {
    const cases: Array<[unknown, RegExp]> = [
      [{ redis: { url: 'http://127.0.0.1:6379' } }, /cluster\.redis\.url/],
      [{ redis: { url: 'redis://x', keyPrefix: 'has space' } }, /cluster\.redis\.keyPrefix/],
      [{ redis: { url: 'redis://x', db: 2 } }, /cluster\.redis/],
      [{ redis: {} }, /cluster\.redis\.url/],
    ];
    for (const [cluster, key] of cases) {
      assert.throws(() => parseConfig(base(cluster)), (e: unknown) => e instanceof ConfigError && key.test(e.message), JSON.stringify(cluster));
    }
  });
});
