/**
 * /livez and /readyz (src/http/health.ts): what a load balancer or a kubelet probes. Readiness
 * follows the database (a real PostgreSQL reached through a proxy the test cuts), reports Redis
 * without depending on it, waits for an external issuer's keys to be fetched once at start, and
 * both answer whatever Host the prober sends.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startWarden, type Warden } from '../../src/app.ts';
import { buildDemoConfig } from '../../src/config/demo.ts';
import { parseConfig } from '../../src/config/load.ts';
import { handleHealth } from '../../src/http/health.ts';
import { openTestPostgres, postgresUnavailable, TEST_POSTGRES_URL } from '../helpers/postgres.ts';
import { redisUnavailable, testKeyPrefix, TEST_REDIS_URL } from '../helpers/redis.ts';
import { cuttableProxy } from '../helpers/tcp-proxy.ts';
import { waitFor } from '../helpers/wait-for.ts';
import { startFixtureIssuer } from '../gateway/fixtures/issuer.ts';
import { initializeMessage, post, TINY_SERVER } from '../gateway/fixtures/raw.ts';
import { startTestWarden } from '../gateway/fixtures/warden.ts';

const env = { PATH: process.env.PATH, WARDEN_DEMO_PASSWORD: 'correct horse battery staple', PORT: '0' };

/** GET `path` with an explicit Host header (as a kubelet probing the pod address sends it). */
function probe(port: number, path: string, host = `127.0.0.1:${port}`, method = 'GET'): Promise<{ status: number; body: Record<string, unknown>; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method, headers: { host }, agent: false }, (res) => {
      let text = '';
      res.on('data', (d) => { text += d; });
      const json = /json/.test(res.headers['content-type'] ?? '');
      res.on('end', () => resolve({ status: res.statusCode!, body: json ? JSON.parse(text) as Record<string, unknown> : {}, headers: res.headers }));
    });
    req.on('error', reject);
    req.end();
  });
}

function configFor(port: number, storage: object, extra: object = {}) {
  const demo = buildDemoConfig(env);
  return parseConfig({
    ...JSON.parse(JSON.stringify({ ...demo, servers: undefined })),
    listen: { host: '127.0.0.1', port },
    publicUrl: `http://127.0.0.1:${port}`,
    storage,
    ...extra,
    servers: demo.servers,
  });
}

describe('health checks on a single SQLite instance', () => {
  let dir: string;
  let warden: Warden;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'warden-health-'));
    warden = await startWarden((port) => configFor(port, { sqlite: { path: join(dir, 'w.db') } }), { env, announce: () => {} });
  });
  after(async () => {
    await warden?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('RFC 9110 §15.3.1: /livez and /readyz answer 200 with no-store, naming only states', async () => {
    const live = await probe(warden.port, '/livez');
    assert.equal(live.status, 200);
    assert.deepEqual(live.body, { status: 'alive' });
    assert.equal(live.headers['cache-control'], 'no-store');
    const ready = await probe(warden.port, '/readyz');
    assert.equal(ready.status, 200);
    assert.deepEqual(ready.body, { status: 'ready', storage: 'ok', redis: 'not configured' });
  });

  it('MCP security best practices (DNS rebinding): the Host allow-list still guards everything else, but not the probes', async () => {
    const podAddress = '10.244.1.17:8080';
    assert.equal((await probe(warden.port, '/readyz', podAddress)).status, 200, 'a kubelet probing the pod address is answered');
    assert.equal((await probe(warden.port, '/livez', podAddress)).status, 200);
    assert.equal((await probe(warden.port, '/.well-known/oauth-protected-resource/mcp', podAddress)).status, 421, 'other paths still refuse an unknown Host');
  });

  it('RFC 9110 §15.5.6: a probe with another method gets 405 and Allow', async () => {
    const r = await probe(warden.port, '/readyz', undefined, 'POST');
    assert.equal(r.status, 405);
    assert.equal(r.headers.allow, 'GET, HEAD');
  });

  it('RFC 9110 §15.6.4: while starting up or stopping, /readyz is 503 and /livez is 200', async () => {
    const states = ['starting', 'stopping'] as const;
    for (const state of states) {
      const server = createServer((req, res) => handleHealth(req, res, new URL(req.url!, 'http://x').pathname, state));
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const { port } = server.address() as AddressInfo;
      try {
        const ready = await probe(port, '/readyz');
        assert.equal(ready.status, 503);
        assert.deepEqual(ready.body, { status: state });
        assert.equal((await probe(port, '/livez')).status, 200);
      } finally {
        server.close();
      }
    }
  });
});

const unavailable = (await postgresUnavailable()) ?? (await redisUnavailable());

describe('health checks with PostgreSQL and Redis', { skip: unavailable }, () => {
  let pg: Awaited<ReturnType<typeof openTestPostgres>>;
  let pgProxy: Awaited<ReturnType<typeof cuttableProxy>>;
  let redisProxy: Awaited<ReturnType<typeof cuttableProxy>>;
  let warden: Warden;
  before(async () => {
    pg = await openTestPostgres();
    pgProxy = await cuttableProxy(TEST_POSTGRES_URL);
    redisProxy = await cuttableProxy(TEST_REDIS_URL);
    warden = await startWarden((port) => configFor(port,
      { postgres: { url: pgProxy.url, schema: pg.schema, maxConnections: 2 } },
      { cluster: { redis: { url: redisProxy.url, keyPrefix: testKeyPrefix() }, secret: 'cluster-secret-0123456789abcdefghijklmnop' } }), { env, announce: () => {} });
  });
  after(async () => {
    await warden?.close();
    await pgProxy?.close();
    await redisProxy?.close();
    await pg?.drop();
  });

  it('Redis down: still ready (every instance shares Redis; failing readiness would empty the balancer), and says so', async () => {
    await waitFor(async () => (await probe(warden.port, '/readyz')).body.redis === 'ok', 'Redis to connect');
    redisProxy.cut();
    try {
      await waitFor(async () => (await probe(warden.port, '/readyz')).body.redis === 'unavailable', 'readiness to report Redis down');
      const r = await probe(warden.port, '/readyz');
      assert.equal(r.status, 200);
      assert.equal(r.body.storage, 'ok');
    } finally {
      redisProxy.restore();
    }
    await waitFor(async () => (await probe(warden.port, '/readyz')).body.redis === 'ok', 'readiness to report Redis back', { timeoutMs: 15_000, intervalMs: 100 });
  });

  it('PostgreSQL down: /readyz is 503 (storage unavailable) while /livez stays 200, and ready again when it is back, without a restart', async () => {
    pgProxy.cut();
    try {
      await waitFor(async () => (await probe(warden.port, '/readyz')).status === 503, 'readiness to fail with the database unreachable', { timeoutMs: 15_000, intervalMs: 100 });
      const r = await probe(warden.port, '/readyz');
      assert.equal(r.body.storage, 'unavailable');
      assert.equal((await probe(warden.port, '/livez')).status, 200, 'alive: restarting would not bring the database back');
    } finally {
      pgProxy.restore();
    }
    await waitFor(async () => (await probe(warden.port, '/readyz')).status === 200, 'readiness once the database answers again', { timeoutMs: 15_000, intervalMs: 100 });
  });
});

describe('health checks with an external issuer (RFC 8414 metadata and JWKS fetched at start)', () => {
  const servers = [{ name: 'tiny', path: '/mcp', upstream: { stdio: TINY_SERVER }, scopes: ['mcp:read'] }];

  it('not ready until the first fetch of its metadata and keys has ended; then ready, and the first request fetches nothing', async () => {
    // Answering after 1 s each, as an IdP some way off: the fetch at start takes ~2 s.
    const issuer = await startFixtureIssuer({ delayMs: 1000 });
    const t = await startTestWarden({ servers, issuer });
    try {
      const early = await probe(t.warden.port, '/readyz');
      assert.equal(early.status, 503);
      assert.deepEqual(early.body, { status: 'starting', storage: 'ok', redis: 'not configured', issuer: 'loading' });
      await waitFor(async () => (await probe(t.warden.port, '/readyz')).status === 200, 'ready once the keys are in', { intervalMs: 50 });
      assert.equal((await probe(t.warden.port, '/readyz')).body.issuer, 'ok');
      assert.equal(issuer.jwksCalls, 1);
      const res = await post(t.endpoint, await issuer.mint({ aud: t.endpoint, scope: 'mcp:read' }), initializeMessage());
      assert.equal(res.status, 200);
      assert.equal(issuer.jwksCalls, 1, 'no fetch on the request\'s path');
    } finally {
      await t.close();
      await issuer.close();
    }
  });

  it('an issuer that cannot be reached at start does not keep the instance out of the balancer: ready, issuer unavailable', async () => {
    const issuer = await startFixtureIssuer();
    await issuer.close();
    const t = await startTestWarden({ servers, issuer });
    try {
      await waitFor(async () => (await probe(t.warden.port, '/readyz')).status === 200, 'ready once the fetch has failed', { intervalMs: 50 });
      assert.deepEqual((await probe(t.warden.port, '/readyz')).body, { status: 'ready', storage: 'ok', redis: 'not configured', issuer: 'unavailable' });
    } finally {
      await t.close();
    }
  });
});
