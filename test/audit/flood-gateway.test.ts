import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestWarden, type TestWarden } from '../gateway/fixtures/warden.ts';
import { openSession, post, TINY_SERVER } from '../gateway/fixtures/raw.ts';
import { openDatabase } from '../../src/storage/sqlite/database.ts';
import { queryAuditEvents } from '../../src/audit/query.ts';

const FLOOD = 200;

describe('gateway: a flood of unauthenticated requests is audited in O(1) rows', () => {
  let t: TestWarden;
  before(async () => {
    t = await startTestWarden({
      servers: [{ name: 'tiny', path: '/mcp', upstream: { stdio: TINY_SERVER }, scopes: ['mcp:read'], policy: { default: 'allow', rules: [] } }],
    });
  });
  after(() => t.close());

  const events = () => {
    const db = openDatabase(t.warden.config.storage.sqlite.path);
    try {
      return queryAuditEvents(db, { limit: 10_000 });
    } finally {
      db.close();
    }
  };

  it('RFC 6750 §3.1: N invalid-token 401s store the first at once plus one counted event; counts add up to N', async () => {
    const url = t.endpoint;
    const ping = { jsonrpc: '2.0', id: 1, method: 'ping' };
    const first = await post(url, 'not-a-valid-token', ping);
    assert.equal(first.status, 401);
    await first.text();
    await t.warden.flushAudit();
    const afterFirst = events().filter((e) => e.reason.startsWith('invalid token'));
    assert.equal(afterFirst.length, 1, 'the first bad-token request is recorded at once');
    assert.equal(afterFirst[0]!.remoteAddress, '127.0.0.1');

    for (let i = 0; i < FLOOD - 1; i += 20) {
      await Promise.all(Array.from({ length: Math.min(20, FLOOD - 1 - i) }, async () => {
        const res = await post(url, `bad-${i}`, ping);
        assert.equal(res.status, 401);
        await res.text();
      }));
    }
    for (let i = 0; i < 30; i++) {
      const res = await post(url, undefined, ping);
      assert.equal(res.status, 401);
      await res.text();
    }
    await t.warden.flushAudit();
    const invalid = events().filter((e) => e.reason.startsWith('invalid token'));
    assert.ok(invalid.length <= 2, `O(1) rows for the flood, got ${invalid.length}`);
    assert.equal(invalid.reduce((n, e) => n + (e.count ?? 1), 0), FLOOD, 'every request counted');
    assert.ok(invalid.every((e) => e.decision === 'deny' && e.subject === '' && e.method === 'http'));
    const missing = events().filter((e) => e.reason === 'no access token');
    assert.equal(missing.length, 2, 'a different reason is its own key: first plus count');
    assert.equal(missing.reduce((n, e) => n + (e.count ?? 1), 0), 30);
  });

  it('authenticated decisions are still one event each', async () => {
    const url = t.endpoint;
    const token = await t.issuer.mint({ aud: url, scope: 'mcp:read', sub: 'counted-one-by-one' });
    const sid = await openSession(url, token);
    for (let id = 1; id <= 10; id++) await (await post(url, token, { jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'echo', arguments: { message: 'x' } } }, { 'mcp-session-id': sid })).text();
    await t.warden.flushAudit();
    const calls = events().filter((e) => e.subject === 'counted-one-by-one' && e.method === 'tools/call');
    assert.equal(calls.length, 10);
    assert.ok(calls.every((e) => e.count === undefined && e.remoteAddress === undefined));
  });
});

describe('gateway: unauthenticated denials are audited under the client address through trusted proxies (RFC 7239)', () => {
  let t: TestWarden;
  before(async () => {
    t = await startTestWarden({
      servers: [{ name: 'tiny', path: '/mcp', upstream: { stdio: TINY_SERVER }, scopes: ['mcp:read'] }],
      config: { trustProxy: { hops: 1 } },
    });
  });
  after(() => t.close());

  it('X-Forwarded-For from a trusted hop names the client; each client is its own fold key', async () => {
    for (const client of ['198.51.100.9', '198.51.100.9', '203.0.113.4']) {
      const res = await post(t.endpoint, undefined, { jsonrpc: '2.0', id: 1, method: 'ping' }, { 'x-forwarded-for': client });
      assert.equal(res.status, 401);
      await res.text();
    }
    await t.warden.flushAudit();
    const db = openDatabase(t.warden.config.storage.sqlite.path);
    try {
      const events = queryAuditEvents(db, { limit: 100 }).filter((e) => e.reason === 'no access token');
      const byAddress = (a: string) => events.filter((e) => e.remoteAddress === a).reduce((n, e) => n + (e.count ?? 1), 0);
      assert.equal(byAddress('198.51.100.9'), 2);
      assert.equal(byAddress('203.0.113.4'), 1);
    } finally {
      db.close();
    }
  });
});
