/**
 * What a Redis writer cannot do with the MCP session directory (docs/deployment.md "What needs
 * Redis"): whoever can write keys under the deployment's prefix (an ACL user limited to it) can
 * end sessions, but cannot send a client's bearer to a URL of its choosing, nor hand a session to
 * another caller. And a client going away mid-request does not end a stdio session held by
 * another instance. Two in-process instances on one PostgreSQL schema and one Redis.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, request as httpRequest, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { createClient } from 'redis';
import { startWarden, type Warden } from '../../src/app.ts';
import { parseConfig } from '../../src/config/load.ts';
import type { Config } from '../../src/config/schema.ts';
import { startFixtureIssuer, type FixtureIssuer } from '../gateway/fixtures/issuer.ts';
import { startHttpUpstream, type HttpUpstreamFixture } from '../gateway/fixtures/http-upstream.ts';
import { messagesOf, openSession, post, TINY_SERVER } from '../gateway/fixtures/raw.ts';
import { openTestPostgres, postgresUnavailable, TEST_POSTGRES_URL } from '../helpers/postgres.ts';
import { redisUnavailable, testKeyPrefix, TEST_REDIS_URL } from '../helpers/redis.ts';
import { waitFor } from '../helpers/wait-for.ts';

const SECRET = 'cluster-secret-0123456789abcdefghijklmnop';
const unavailable = (await postgresUnavailable()) ?? (await redisUnavailable());

describe('a Redis writer and the MCP session directory (two instances, one Redis)', { skip: unavailable }, () => {
  let pg: Awaited<ReturnType<typeof openTestPostgres>>;
  let issuer: FixtureIssuer;
  let upstream: HttpUpstreamFixture;
  let redis: ReturnType<typeof createClient>;
  /** The URL a forged `instance:` entry points at: it records what it receives. */
  let evil: Server;
  let evilUrl: string;
  const received: IncomingHttpHeaders[] = [];
  const prefix = testKeyPrefix();
  const wardens: Warden[] = [];
  let alice: { http: string; stdio: string };
  let bob: { http: string; stdio: string };

  before(async () => {
    pg = await openTestPostgres();
    issuer = await startFixtureIssuer();
    upstream = await startHttpUpstream();
    redis = createClient({ url: TEST_REDIS_URL });
    await redis.connect();
    evil = createServer((req, res) => {
      received.push(req.headers);
      req.resume();
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"jsonrpc":"2.0","id":1,"result":{}}');
    });
    await new Promise<void>((resolve) => evil.listen(0, '127.0.0.1', resolve));
    evilUrl = `http://127.0.0.1:${(evil.address() as AddressInfo).port}`;
    const config = (port: number): Config => parseConfig({
      listen: { host: '127.0.0.1', port },
      publicUrl: 'http://127.0.0.1',
      allowedHosts: ['127.0.0.1'],
      storage: { postgres: { url: TEST_POSTGRES_URL, schema: pg.schema, maxConnections: 3 } },
      authorizationServer: { external: { issuer: issuer.issuer } },
      log: { level: 'silent' },
      cluster: { redis: { url: TEST_REDIS_URL, keyPrefix: prefix }, secret: SECRET },
      servers: [
        { name: 'remote', path: '/mcp/remote', upstream: { http: { url: upstream.url } } },
        { name: 'tiny', path: '/mcp/tiny', upstream: { stdio: TINY_SERVER } },
      ],
    });
    for (let i = 0; i < 2; i++) wardens.push(await startWarden(config));
    const tokens = async (sub: string) => ({
      http: await issuer.mint({ sub, aud: 'http://127.0.0.1/mcp/remote' }),
      stdio: await issuer.mint({ sub, aud: 'http://127.0.0.1/mcp/tiny' }),
    });
    alice = await tokens('alice');
    bob = await tokens('bob');
  });

  after(async () => {
    for (const w of wardens) await w.close();
    await redis?.quit();
    evil?.close();
    await upstream?.close();
    await issuer?.close();
    await pg?.drop();
  });

  const sessionsOn = (path: string) => wardens.map((w) => w.gateway.endpoints.get(path)?.sessionCount ?? 0);
  const headers = (sid: string) => ({ 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' });
  const call = (id: number, name: string, args: Record<string, unknown> = {}) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args } });

  /** The Redis key naming the instance that listens at `w`'s port. */
  async function instanceKeyOf(w: Warden): Promise<string> {
    for (const key of await redis.keys(`${prefix}instance:*`)) {
      const value = await redis.get(key);
      if (value?.includes(`:${w.port}`)) return key;
    }
    throw new Error(`no instance key for port ${w.port}`);
  }

  it('MCP 2025-11-25 authorization §Token Handling: an instance URL written to Redis by anything but an instance receives no request and no bearer; the client gets 404', async () => {
    const [a, b] = wardens as [Warden, Warden];
    const key = await instanceKeyOf(a);
    const genuine = (await redis.get(key))!;
    for (const forged of [evilUrl, JSON.stringify({ url: evilUrl, mac: 'AAAA' }), 'http://a b']) {
      const sid = await openSession(`${a.url}/mcp/tiny`, alice.stdio);
      // Right before the request: the owner's heartbeat rewrites its key every 2 s.
      await redis.set(key, forged, { PX: 6000 });
      const res = await post(`${b.url}/mcp/tiny`, alice.stdio, call(1, 'echo', { message: 'x' }), headers(sid));
      await res.text();
      assert.equal(res.status, 404, `${forged}: owner unknown, as for a dead one`);
    }
    assert.deepEqual(received.map((h) => h.authorization !== undefined), [], 'the forged URL received nothing');
    // What the owner's next heartbeat would write: the later tests hop to it.
    await redis.set(key, genuine, { PX: 6000 });
  });

  it('MCP security best practices §Session Hijacking: a session entry written to Redis by anything but an instance is no session, on every instance', async () => {
    const [a, b] = wardens as [Warden, Warden];
    // Alice's session on A, with its upstream session ID in the directory.
    const sid = await openSession(`${a.url}/mcp/remote`, alice.http);
    const entry = JSON.parse((await redis.get(`${prefix}session:${sid}`))!) as Record<string, unknown>;
    assert.ok(entry.upstreamSessionId, 'the entry carries the upstream session');
    // A forged entry binding alice's upstream session to bob.
    const forgedId = randomUUID();
    const forged = { ...entry, binding: { ...(entry.binding as object), subject: 'bob' } };
    await redis.set(`${prefix}session:${forgedId}`, JSON.stringify(forged), { PX: 60_000 });
    for (const w of [a, b]) {
      const res = await post(`${w.url}/mcp/remote`, bob.http, call(1, 'echo', { message: 'x' }), headers(forgedId));
      await res.text();
      assert.equal(res.status, 404, `instance ${w.port}: a forged entry is no session`);
    }
    // Alice's own session still works from B (its entry was written by an instance).
    const ok = await post(`${b.url}/mcp/remote`, alice.http, call(2, 'echo', { message: 'still here' }), headers(sid));
    assert.equal(ok.status, 200);
    assert.equal((await messagesOf(ok))[0]?.result?.content?.[0]?.text, 'still here');
  });

  it('MCP 2025-11-25 transports §Session Management: a client going away during a forwarded request does not end the stdio session it named', async () => {
    const [a, b] = wardens as [Warden, Warden];
    const sid = await openSession(`${a.url}/mcp/tiny`, alice.stdio);
    const held = sessionsOn('/mcp/tiny')[0]!;
    let hops = 0;
    const seen = (req: { headers: IncomingHttpHeaders }) => { if (req.headers['warden-hop']) hops++; };
    a.server.on('request', seen);
    const hopsSeen = () => hops;
    // The body arrives slowly and the client leaves before it ends: the owner has not answered yet.
    const slow = httpRequest(`${b.url}/mcp/tiny`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: `Bearer ${alice.stdio}`, ...headers(sid) },
    });
    slow.on('error', () => {});
    const body = JSON.stringify(call(1, 'echo', { message: 'never sent whole' }));
    slow.write(body.slice(0, 10));
    await waitFor(() => hopsSeen() > 0, 'B forwarded the request to A');
    slow.destroy();
    // Long enough for the abort to reach both instances and whatever they do about it.
    await new Promise((r) => setTimeout(r, 500));
    assert.ok(await redis.get(`${prefix}session:${sid}`), 'the directory entry is still there');
    const next = await post(`${b.url}/mcp/tiny`, alice.stdio, call(2, 'echo', { message: 'after abort' }), headers(sid));
    assert.equal(next.status, 200, 'the next request on the session is served');
    assert.equal((await messagesOf(next))[0]?.result?.content?.[0]?.text, 'after abort');
    assert.equal(sessionsOn('/mcp/tiny')[0], held, 'A still holds the child');
    a.server.off('request', seen);
  });
});
