import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../../src/config/load.ts';
import type { DownstreamCredentials } from '../../src/downstream/types.ts';
import type { JsonRpcMessage } from '../../src/gateway/jsonrpc.ts';
import { createStdioPool } from '../../src/gateway/upstreams/stdio-pool.ts';
import type { Caller } from '../../src/kernel/caller.ts';
import { silentLogger } from '../../src/log.ts';
import { initializeMessage, TINY_SERVER } from './fixtures/raw.ts';

const caller = (subject: string): Caller => ({ subject, clientId: 'c', issuer: 'http://127.0.0.1:9', audience: 'http://127.0.0.1:9/mcp', scopes: [], roles: [], claims: {}, expiresAt: 0, accessToken: 'x' });

/** A session on the pool: connects, initializes, and collects what reaches it. */
async function open(pool: ReturnType<typeof createStdioPool>, sessionId: string, who: Caller) {
  const received: JsonRpcMessage[] = [];
  let closedWith: string | undefined;
  const connection = await pool.connect({ sessionId, caller: who, events: { message: (m) => void received.push(m), closed: (r) => void (closedWith = r) } });
  await connection.send([initializeMessage('2025-11-25', 'init') as never], '2025-11-25', who);
  await connection.send([{ jsonrpc: '2.0', method: 'notifications/initialized' }], '2025-11-25', who);
  return { connection, received, closed: () => closedWith };
}

describe('stdio shared per user: downstream credentials in the child environment', () => {
  it('docs/downstream.md (expiry during a long stdio session): a new session never joins a child whose credentials have expired; it gets a new child with fresh ones', async () => {
    let clock = 1_000_000_000_000;
    let issued = 0;
    const downstream: DownstreamCredentials = {
      envFor: async () => ({ NOTES_API_TOKEN: `credential-${++issued}` }),
      headersFor: async () => ({}),
      // Each credential works for 60 s from when it was handed out.
      credentialsExpireAt: () => Math.floor(clock / 1000) + 60,
    };
    const config = parseConfig({ listen: { port: 0 }, publicUrl: 'http://127.0.0.1:9', storage: { sqlite: { path: ':memory:' } }, authorizationServer: { external: { issuer: 'http://127.0.0.1:9' } }, servers: [{ name: 'tiny', path: '/mcp', upstream: { stdio: { ...TINY_SERVER, share: 'per-user' } } }] });
    const server = config.servers[0]!;
    const stdio = (server.upstream as { stdio: NonNullable<Extract<typeof server.upstream, { stdio: unknown }>['stdio']> }).stdio;
    const pool = createStdioPool({ server, stdio, logger: silentLogger, downstream, env: process.env, now: () => clock });
    try {
      const a = await open(pool, 'a', caller('alice'));
      const b = await open(pool, 'b', caller('alice'));
      assert.equal(pool.stats().children.length, 1, 'within the credential lifetime the sessions share one child');
      clock += 61_000;
      const c = await open(pool, 'c', caller('alice'));
      const children = pool.stats().children;
      assert.equal(children.length, 2, 'the expired child serves its own sessions until they end, never a new one');
      assert.deepEqual(children.map((x) => x.sessions).sort(), [1, 2]);
      assert.equal(issued, 2, 'the new child got a freshly issued credential');
      for (const s of [a, b, c]) await s.connection.close();
    } finally {
      await pool.close();
    }
  });

  it('MCP basic §Requests: an answer reaches its session under the id that session chose, though two sessions chose the same id', async () => {
    const config = parseConfig({ listen: { port: 0 }, publicUrl: 'http://127.0.0.1:9', storage: { sqlite: { path: ':memory:' } }, authorizationServer: { external: { issuer: 'http://127.0.0.1:9' } }, servers: [{ name: 'tiny', path: '/mcp', upstream: { stdio: { ...TINY_SERVER, share: 'per-user' } } }] });
    const server = config.servers[0]!;
    const stdio = (server.upstream as { stdio: NonNullable<Extract<typeof server.upstream, { stdio: unknown }>['stdio']> }).stdio;
    const pool = createStdioPool({ server, stdio, logger: silentLogger, downstream: { envFor: async () => ({}), headersFor: async () => ({}) }, env: process.env });
    try {
      const a = await open(pool, 'a', caller('alice'));
      const b = await open(pool, 'b', caller('alice'));
      await a.connection.send([{ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'echo', arguments: { message: 'from a' } } }], '2025-11-25', caller('alice'));
      await b.connection.send([{ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'echo', arguments: { message: 'from b' } } }], '2025-11-25', caller('alice'));
      const answer = async (s: typeof a) => {
        for (let i = 0; i < 500 && !s.received.some((m) => 'id' in m && m.id === 7); i++) await new Promise((r) => setTimeout(r, 10));
        return JSON.stringify(s.received.find((m) => 'id' in m && m.id === 7));
      };
      assert.match(await answer(a), /from a/);
      assert.doesNotMatch(await answer(a), /from b/);
      assert.match(await answer(b), /from b/);
      // Both initialize answers came back under each session's own id.
      assert.ok(a.received.some((m) => 'id' in m && m.id === 'init' && 'result' in m));
      assert.ok(b.received.some((m) => 'id' in m && m.id === 'init' && 'result' in m));
      for (const s of [a, b]) await s.connection.close();
    } finally {
      await pool.close();
    }
  });
});
