import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { initializeMessage } from './fixtures/raw.ts';
import { parseConfig } from '../../src/config/load.ts';
import type { DownstreamCredentials } from '../../src/downstream/types.ts';
import { silentLogger } from '../../src/log.ts';
import { createHttpUpstream } from '../../src/gateway/upstreams/http.ts';
import type { Caller } from '../../src/kernel/caller.ts';
import { startHttpUpstream } from './fixtures/http-upstream.ts';
import { waitFor } from '../helpers/wait-for.ts';

describe('HTTP upstream requests carry downstream credentials asked for at that moment (docs/downstream.md)', () => {
  it('docs/downstream.md: the first POST of an HTTP session carries the credentials just obtained at connect; later POSTs ask again', async () => {
    const fixture = await startHttpUpstream();
    const config = parseConfig({ publicUrl: 'http://127.0.0.1:9', authorizationServer: { external: { issuer: 'http://127.0.0.1:9' } }, servers: [{ name: 'h', path: '/mcp', upstream: { http: { url: fixture.url } }, downstream: {} }] });
    const server = config.servers[0]!;
    let issued = 0;
    const counting: DownstreamCredentials = { envFor: async () => ({}), headersFor: async () => ({ 'x-credential': String(++issued) }) };
    const upstream = createHttpUpstream({ server, http: { url: fixture.url, headers: {} }, logger: silentLogger, downstream: counting });
    const caller: Caller = { subject: 'alice', clientId: 'c', issuer: 'http://127.0.0.1:9', audience: 'http://127.0.0.1:9/mcp', scopes: [], roles: [], claims: {}, expiresAt: 0, accessToken: 'x' };
    try {
      const connection = await upstream.connect({ sessionId: 's', caller, events: { message() {}, closed() {} } });
      await connection.send([initializeMessage() as never], '2025-11-25', caller);
      await connection.send([{ jsonrpc: '2.0', method: 'notifications/initialized' }], '2025-11-25', caller);
      const posts = fixture.requests.filter((r) => r.method === 'POST').map((r) => r.headers['x-credential']);
      assert.deepEqual(posts, ['1', '2']);
      assert.equal(issued, 2, 'connect and the first POST asked once between them');
      await connection.close();
    } finally {
      await upstream.close();
      await fixture.close();
    }
  });

  it('docs/downstream.md: an HTTP upstream\'s GET stream and DELETE carry credentials asked for at that moment, not those of connect', async () => {
    const fixture = await startHttpUpstream();
    const config = parseConfig({ publicUrl: 'http://127.0.0.1:9', authorizationServer: { external: { issuer: 'http://127.0.0.1:9' } }, servers: [{ name: 'h', path: '/mcp', upstream: { http: { url: fixture.url } }, downstream: {} }] });
    const server = config.servers[0]!;
    let issued = 0;
    // Each call hands out a new credential, as an exchange near expiry would.
    const counting: DownstreamCredentials = { envFor: async () => ({}), headersFor: async () => ({ 'x-credential': String(++issued) }) };
    const upstream = createHttpUpstream({ server, http: { url: fixture.url, headers: {} }, logger: silentLogger, downstream: counting });
    const caller: Caller = { subject: 'alice', clientId: 'c', issuer: 'http://127.0.0.1:9', audience: 'http://127.0.0.1:9/mcp', scopes: [], roles: [], claims: {}, expiresAt: 0, accessToken: 'x' };
    try {
      const connection = await upstream.connect({ sessionId: 's', caller, events: { message() {}, closed() {} } });
      await connection.send([initializeMessage() as never], '2025-11-25', caller);
      await connection.send([{ jsonrpc: '2.0', method: 'notifications/initialized' }], '2025-11-25', caller);
      const atConnect = '1';
      connection.openServerStream('2025-11-25');
      await waitFor(() => fixture.requests.some((r) => r.method === 'GET'), 'the upstream GET stream to open');
      await connection.close();
      const get = fixture.requests.find((r) => r.method === 'GET');
      const del = fixture.requests.find((r) => r.method === 'DELETE');
      assert.ok(get && del, 'the upstream saw a GET and a DELETE');
      assert.notEqual(get.headers['x-credential'], atConnect);
      assert.notEqual(del.headers['x-credential'], atConnect);
      assert.ok(Number(del.headers['x-credential']) > Number(get.headers['x-credential']));
    } finally {
      await upstream.close();
      await fixture.close();
    }
  });
});
