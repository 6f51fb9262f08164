/**
 * `cluster.redis` in the configuration: parsed at the edge, every failure naming the key.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, parseConfig } from '../../src/config/load.ts';
import { silentLogger } from '../../src/log.ts';

const SECRET = 'cluster-secret-0123456789abcdefghijklmnop';

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
    assert.deepEqual(parseConfig(base({ redis: { url: 'redis://127.0.0.1:6379' }, secret: SECRET })).cluster, { redis: { url: 'redis://127.0.0.1:6379', keyPrefix: 'mcp-warden:' }, secret: SECRET });
    assert.equal(parseConfig(base({ redis: { url: 'rediss://cache.internal:6380', keyPrefix: 'prod:' }, secret: SECRET })).cluster?.redis.keyPrefix, 'prod:');
  });
  it('cluster.redis without cluster.secret is refused, naming cluster.secret: the directory\'s MACs are keyed from it', () => {
    assert.throws(() => parseConfig(base({ redis: { url: 'redis://127.0.0.1:6379' } })), (e: unknown) => e instanceof ConfigError && /cluster\.secret/.test(e.message) && /required with cluster\.redis/.test(e.message));
  });
  it('cluster.secret (the instance hop\'s key) and cluster.instanceUrl (where peers reach this instance); the default instance URL is the listening address', async () => {
    const { instanceUrlOf } = await import('../../src/cluster/index.ts');
    const secret = 'x'.repeat(32);
    const config = parseConfig(base({ redis: { url: 'redis://x' }, secret, instanceUrl: 'http://10.0.0.5:8080' }));
    assert.equal(config.cluster?.secret, secret);
    assert.equal(instanceUrlOf(config, 8080), 'http://10.0.0.5:8080');
    // Kept as its WHATWG origin, the form a peer reads it in.
    assert.equal(parseConfig(base({ redis: { url: 'redis://x' }, secret, instanceUrl: 'http://Node-A.internal:8080' })).cluster?.instanceUrl, 'http://node-a.internal:8080');
    assert.equal(instanceUrlOf(parseConfig({ ...base({ redis: { url: 'redis://x' }, secret }), listen: { host: '0.0.0.0', port: 0 } }), 4321), 'http://127.0.0.1:4321');
    assert.equal(instanceUrlOf(parseConfig({ ...base({ redis: { url: 'redis://x' }, secret }), listen: { host: '::1', port: 0 } }), 4321), 'http://[::1]:4321');
  });
  it('a default instance URL peers could not send a hop to (an IPv6 zone in listen.host) stops the start, naming cluster.instanceUrl', async () => {
    const { openCluster } = await import('../../src/cluster/index.ts');
    const config = parseConfig({ ...base({ redis: { url: 'redis://127.0.0.1:1' }, secret: 'x'.repeat(32) }), listen: { host: 'fe80::1%eth0', port: 0 } });
    let opened: Awaited<ReturnType<typeof openCluster>>;
    try {
      assert.throws(() => { opened = openCluster(config, silentLogger, 4321); }, (e: unknown) => e instanceof ConfigError && /cluster\.instanceUrl/.test(e.message) && /http:\/\/\[fe80::1%eth0\]:4321/.test(e.message));
    } finally {
      await opened?.close();
    }
  });
  it('another scheme, a bad prefix or an unknown key is refused with an error naming the key', () => {
    const cases: Array<[unknown, RegExp]> = [
      [{ redis: { url: 'http://127.0.0.1:6379' } }, /cluster\.redis\.url/],
      [{ redis: { url: 'redis://x', keyPrefix: 'has space' } }, /cluster\.redis\.keyPrefix/],
      [{ redis: { url: 'redis://x', db: 2 } }, /cluster\.redis/],
      [{ redis: {} }, /cluster\.redis\.url/],
      [{ redis: { url: 'redis://x' }, secret: 'too short' }, /cluster\.secret/],
      [{ redis: { url: 'redis://x' }, instanceUrl: 'http://10.0.0.5:8080/mcp' }, /cluster\.instanceUrl/],
      [{ redis: { url: 'redis://x' }, instanceUrl: '10.0.0.5:8080' }, /cluster\.instanceUrl/],
      [{ redis: { url: 'redis://x' }, instanceUrl: 'http://a b' }, /cluster\.instanceUrl/],
      // What a peer refuses to send a hop to (src/cluster/instance-url.ts) is refused here too.
      [{ redis: { url: 'redis://x' }, instanceUrl: 'http://user:pw@10.0.0.5:8080' }, /cluster\.instanceUrl/],
      [{ redis: { url: 'redis://x' }, instanceUrl: 'http://10.0.0.5:8080?x' }, /cluster\.instanceUrl/],
      [{ redis: { url: 'redis://x' }, instanceUrl: 'ftp://10.0.0.5' }, /cluster\.instanceUrl/],
    ];
    for (const [cluster, key] of cases) {
      assert.throws(() => parseConfig(base(cluster)), (e: unknown) => e instanceof ConfigError && key.test(e.message), JSON.stringify(cluster));
    }
    // Every problem at once: a refused instance URL does not hide the missing secret.
    assert.throws(() => parseConfig(base({ redis: { url: 'redis://x' }, instanceUrl: 'http://user@10.0.0.5:8080' })), (e: unknown) => e instanceof ConfigError && /cluster\.instanceUrl/.test(e.message) && /cluster\.secret/.test(e.message));
  });
});
