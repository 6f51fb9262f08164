/**
 * MCP sessions across three mcp-warden instances on one PostgreSQL schema and one Redis, behind a
 * request-level round-robin balancer with no stickiness (docs/deployment.md "Scale-out: MCP
 * sessions"): the official SDK client's requests land on every instance in turn and its session
 * follows them. An HTTP upstream's session is adopted by whichever instance a request reaches; a
 * stdio session's requests are forwarded to the instance holding the child over the
 * authenticated instance hop.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createClient } from 'redis';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { startWarden, type Warden } from '../../src/app.ts';
import { signHop } from '../../src/cluster/instance-hop.ts';
import { parseConfig } from '../../src/config/load.ts';
import type { Config } from '../../src/config/schema.ts';
import { startFixtureIssuer, type FixtureIssuer } from '../gateway/fixtures/issuer.ts';
import { startHttpUpstream, type HttpUpstreamFixture } from '../gateway/fixtures/http-upstream.ts';
import { messagesOf, openSession, post, TINY_SERVER } from '../gateway/fixtures/raw.ts';
import { messageOf, readEvents, type RawEvent } from '../gateway/fixtures/sse-reader.ts';
import { openTestPostgres, postgresUnavailable, TEST_POSTGRES_URL } from '../helpers/postgres.ts';
import { redisUnavailable, testKeyPrefix, TEST_REDIS_URL } from '../helpers/redis.ts';
import { waitFor } from '../helpers/wait-for.ts';
import { roundRobin } from '../helpers/round-robin.ts';

const SECRET = 'cluster-secret-0123456789abcdefghijklmnop';

const call = (id: number, name: string, args: Record<string, unknown> = {}, progressToken?: string) => ({
  jsonrpc: '2.0',
  id,
  method: 'tools/call',
  params: { name, arguments: args, ...(progressToken ? { _meta: { progressToken } } : {}) },
});
const progressOf = (events: RawEvent[]) => events.map(messageOf).filter((m) => m?.method === 'notifications/progress').map((m) => m.params.progress as number);
const resultsOf = (events: RawEvent[]) => events.map(messageOf).filter((m) => m && 'result' in m);

const unavailable = (await postgresUnavailable()) ?? (await redisUnavailable());

describe('three instances, one PostgreSQL, one Redis, a round-robin balancer: MCP sessions follow their requests', { skip: unavailable }, () => {
  let pg: Awaited<ReturnType<typeof openTestPostgres>>;
  let issuer: FixtureIssuer;
  let upstream: HttpUpstreamFixture;
  let lb: Awaited<ReturnType<typeof roundRobin>>;
  let front: string;
  const prefix = testKeyPrefix();
  const wardens: Warden[] = [];
  /** Instances the balancer sends to (a test narrows it to pick which instance opens a session). */
  let live: Warden[] = [];
  let alice: { http: string; stdio: string };
  /** One more instance's configuration (it joins the deployment; the balancer does not send to it). */
  let makeConfig: (port: number) => Config;
  let bob: { http: string; stdio: string };

  const at = (w: Warden, path: string) => `${w.url}${path}`;
  const sessionsOn = (path: string) => wardens.map((w) => w.gateway.endpoints.get(path)?.sessionCount ?? 0);

  before(async () => {
    pg = await openTestPostgres();
    issuer = await startFixtureIssuer();
    upstream = await startHttpUpstream();
    lb = await roundRobin(() => live.map((w) => w.port));
    front = `http://127.0.0.1:${lb.port}`;
    const config = (port: number): Config => parseConfig({
      listen: { host: '127.0.0.1', port },
      publicUrl: front,
      // Tests also reach instances directly, and a hop keeps the client's Host: any port of 127.0.0.1.
      allowedHosts: ['127.0.0.1'],
      storage: { postgres: { url: TEST_POSTGRES_URL, schema: pg.schema, maxConnections: 3 } },
      authorizationServer: { external: { issuer: issuer.issuer } },
      log: { level: 'silent' },
      cluster: { redis: { url: TEST_REDIS_URL, keyPrefix: prefix }, secret: SECRET },
      servers: [
        { name: 'remote', path: '/mcp/remote', upstream: { http: { url: upstream.url } } },
        { name: 'tiny', path: '/mcp/tiny', upstream: { stdio: TINY_SERVER }, sse: { retryMs: 50 } },
        { name: 'brief', path: '/mcp/brief', upstream: { http: { url: upstream.url } }, idleTimeoutSeconds: 1 },
      ],
    });
    makeConfig = config;
    for (let i = 0; i < 3; i++) wardens.push(await startWarden(config));
    live = [...wardens];
    const tokens = async (sub: string) => ({
      http: await issuer.mint({ sub, aud: `${front}/mcp/remote` }),
      stdio: await issuer.mint({ sub, aud: `${front}/mcp/tiny` }),
    });
    alice = await tokens('alice');
    bob = await tokens('bob');
  });

  after(async () => {
    for (const w of wardens) await w.close();
    lb?.server.close();
    await upstream?.close();
    await issuer?.close();
    await pg?.drop();
  });

  const connect = async (path: string, token: string) => {
    const client = new Client({ name: 'cluster-test', version: '1.0.0' });
    const transport = new StreamableHTTPClientTransport(new URL(`${front}${path}`), { authProvider: { token: async () => token } });
    await client.connect(transport);
    return { client, transport };
  };

  it('MCP 2025-11-25 transports §Session Management: an HTTP upstream session is served by every instance in turn; the upstream sees one session', async () => {
    const before = upstream.sessions();
    const { client, transport } = await connect('/mcp/remote', alice.http);
    const hits = new Map(lb.hits);
    for (let i = 0; i < 6; i++) {
      const { tools } = await client.listTools();
      assert.ok(tools.some((t) => t.name === 'echo'));
      const result = await client.callTool({ name: 'echo', arguments: { message: `call ${i}` } });
      assert.deepEqual(result.content, [{ type: 'text', text: `call ${i}` }]);
    }
    for (const w of wardens) assert.ok((lb.hits.get(w.port) ?? 0) - (hits.get(w.port) ?? 0) >= 3, `instance ${w.port} served the session`);
    assert.equal(upstream.sessions() - before, 1, 'one upstream session, whichever instance served');
    assert.ok(sessionsOn('/mcp/remote').every((n) => n >= 1), 'each instance holds the session (opened or adopted)');
    await transport.terminateSession();
    await client.close();
  });

  it('MCP 2025-11-25 transports §Session Management: a stdio session\'s requests from any instance reach its one child, on the instance that opened it', async () => {
    const { client, transport } = await connect('/mcp/tiny', alice.stdio);
    const pids = new Set<string>();
    for (let i = 0; i < 6; i++) {
      const { tools } = await client.listTools();
      assert.ok(tools.some((t) => t.name === 'pid'));
      const result = await client.callTool({ name: 'pid', arguments: {} });
      pids.add((result.content as { text: string }[])[0]!.text);
    }
    assert.equal(pids.size, 1, 'every call reached the same child');
    assert.deepEqual(sessionsOn('/mcp/tiny').sort(), [0, 0, 1], 'one instance holds it; the others forward');
    await transport.terminateSession();
    await client.close();
    await waitFor(() => sessionsOn('/mcp/tiny').every((n) => n === 0), 'DELETE, forwarded, ended the child');
  });

  it('instance hop: a Warden-Hop header that does not verify is refused (403) before authentication, on every instance', async () => {
    const [a, b] = wardens as [Warden, Warden];
    const sid = await openSession(at(a, '/mcp/tiny'), alice.stdio);
    const forged = [
      'v1.abc.1.AAAA',
      signHop('another-secret-0123456789abcdefghijklmnop', 'abc', { method: 'POST', target: '/mcp/tiny', sessionId: sid, authorization: `Bearer ${alice.stdio}` }),
      // Signed for another token: a captured hop header cannot carry another request.
      signHop(SECRET, 'abc', { method: 'POST', target: '/mcp/tiny', sessionId: sid, authorization: `Bearer ${bob.stdio}` }),
      signHop(SECRET, 'abc', { method: 'POST', target: '/mcp/tiny', sessionId: sid, authorization: `Bearer ${alice.stdio}` }, Date.now() - 120_000),
    ];
    for (const hop of forged) {
      for (const w of [a, b]) {
        const res = await post(at(w, '/mcp/tiny'), alice.stdio, { jsonrpc: '2.0', id: 1, method: 'tools/list' }, { 'mcp-session-id': sid, 'warden-hop': hop });
        assert.equal(res.status, 403, `${hop.slice(0, 20)}… at ${w.port}`);
        assert.match((await res.json()).error.message, /instance hop/);
      }
    }
    // The same request signed with the deployment's secret is served (the owner runs its own pipeline).
    const hop = signHop(SECRET, 'abc', { method: 'POST', target: '/mcp/tiny', sessionId: sid, authorization: `Bearer ${alice.stdio}` });
    const ok = await post(at(a, '/mcp/tiny'), alice.stdio, { jsonrpc: '2.0', id: 1, method: 'tools/list' }, { 'mcp-session-id': sid, 'warden-hop': hop, 'mcp-protocol-version': '2025-11-25' });
    assert.equal(ok.status, 200);
    assert.ok((await messagesOf(ok))[0].result.tools.length > 0);
  });

  it('MCP security best practices §Session Hijacking: a session ID with another user\'s token is 404 on every instance, for stdio and HTTP sessions', async () => {
    const [a] = wardens as [Warden];
    const stdio = await openSession(at(a, '/mcp/tiny'), alice.stdio);
    const http = await openSession(at(a, '/mcp/remote'), alice.http);
    for (const w of wardens) {
      for (const [path, sid, token] of [['/mcp/tiny', stdio, bob.stdio], ['/mcp/remote', http, bob.http]] as const) {
        const res = await post(at(w, path), token, { jsonrpc: '2.0', id: 1, method: 'tools/list' }, { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' });
        assert.equal(res.status, 404, `${path} at ${w.port}`);
      }
    }
    // Bob's attempts adopted nothing and ended nothing: Alice's sessions still work everywhere.
    for (const w of wardens) {
      const res = await post(at(w, '/mcp/remote'), alice.http, { jsonrpc: '2.0', id: 2, method: 'tools/list' }, { 'mcp-session-id': http, 'mcp-protocol-version': '2025-11-25' });
      assert.equal(res.status, 200);
    }
  });

  it('MCP 2025-11-25 transports §Resumability and Redelivery: a stream cut on one instance resumes with Last-Event-ID on another (stdio and HTTP upstreams)', async () => {
    const [a, b, c] = wardens as [Warden, Warden, Warden];
    // stdio: the stream is the owner's; a GET with its Last-Event-ID on another instance goes there.
    const stdio = await openSession(at(a, '/mcp/tiny'), alice.stdio);
    const h = { 'mcp-session-id': stdio, 'mcp-protocol-version': '2025-11-25' };
    const first = await readEvents(await post(at(b, '/mcp/tiny'), alice.stdio, call(1, 'slow', { ticks: 5, intervalMs: 60 }, 'p'), h), (events) => progressOf(events).length >= 1);
    assert.equal(first.ended, false);
    const resumed = await fetch(at(c, '/mcp/tiny'), { headers: { accept: 'text/event-stream', authorization: `Bearer ${alice.stdio}`, ...h, 'last-event-id': first.events.at(-1)!.id! } });
    assert.equal(resumed.status, 200);
    const rest = await readEvents(resumed);
    assert.deepEqual([...progressOf(first.events), ...progressOf(rest.events)], [1, 2, 3, 4, 5], 'every progress exactly once');
    assert.deepEqual(resultsOf(rest.events).map((m) => m.result.content[0].text), ['slow done']);

    // HTTP, the instance that opened the session (a) holds the stream; resumed on another (c).
    const own = await openSession(at(a, '/mcp/remote'), alice.http);
    const oh = { 'mcp-session-id': own, 'mcp-protocol-version': '2025-11-25' };
    const cut = await readEvents(await post(at(a, '/mcp/remote'), alice.http, call(3, 'count', { n: 3 }, 'r'), oh), (events) => events.length >= 1);
    const again = await readEvents(await fetch(at(c, '/mcp/remote'), { headers: { accept: 'text/event-stream', authorization: `Bearer ${alice.http}`, ...oh, 'last-event-id': cut.events[0]!.id! } }));
    assert.deepEqual(progressOf(again.events), [1, 2, 3]);
    assert.deepEqual(resultsOf(again.events).map((m) => m.result.content[0].text), ['counted 3']);

    // HTTP: the stream of a POST served by an adopting instance (b) is resumed on another (c).
    const http = await openSession(at(a, '/mcp/remote'), alice.http);
    const hh = { 'mcp-session-id': http, 'mcp-protocol-version': '2025-11-25' };
    const priming = await readEvents(await post(at(b, '/mcp/remote'), alice.http, call(2, 'count', { n: 4 }, 'q'), hh), (events) => events.length >= 1);
    assert.equal(priming.events[0]!.data, '', 'the priming event');
    const id = priming.events[0]!.id!;
    assert.match(id, /^[0-9a-z]+\.\d+-\d+-\d+$/, 'the event ID names the instance holding its replay');
    const replay = await readEvents(await fetch(at(c, '/mcp/remote'), { headers: { accept: 'text/event-stream', authorization: `Bearer ${alice.http}`, ...hh, 'last-event-id': id } }));
    assert.ok(replay.ended);
    assert.deepEqual(progressOf(replay.events), [1, 2, 3, 4]);
    assert.deepEqual(resultsOf(replay.events).map((m) => m.result.content[0].text), ['counted 4']);
  });

  it('MCP 2025-11-25 transports §Listening for Messages from the Server: the GET stream of an HTTP session, opened on any instance, is served by the instance that opened it: one upstream listener, server messages arrive', async () => {
    const [a, b, c] = wardens as [Warden, Warden, Warden];
    const sid = await openSession(at(a, '/mcp/remote'), alice.http);
    const h = { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' };
    // b adopts the session first, so its GET finds a local copy and still goes to a.
    assert.equal((await post(at(b, '/mcp/remote'), alice.http, { jsonrpc: '2.0', id: 1, method: 'ping' }, h)).status, 200);
    const gets = () => upstream.requests.filter((r) => r.method === 'GET' && r.headers['mcp-session-id'] !== undefined).length;
    const getsBefore = gets();
    const stream = await fetch(at(b, '/mcp/remote'), { headers: { accept: 'text/event-stream', authorization: `Bearer ${alice.http}`, ...h } });
    assert.equal(stream.status, 200);
    const changed = readEvents(stream, (events) => events.some((e) => messageOf(e)?.method === 'notifications/tools/list_changed'));
    await waitFor(() => gets() > getsBefore, 'the upstream GET stream');
    // A request on a third instance makes the upstream send a notification on its GET stream.
    const poke = await post(at(c, '/mcp/remote'), alice.http, call(2, 'poke'), h);
    assert.equal(poke.status, 200);
    await poke.text();
    const { events } = await changed;
    assert.equal(gets() - getsBefore, 1, 'one upstream listener for the session');
    // The events were issued by a (their IDs name the instance: its heartbeat key holds its URL, signed).
    const redis = createClient({ url: TEST_REDIS_URL });
    await redis.connect();
    try {
      const keys = await redis.keys(`${prefix}instance:*`);
      const urls = await Promise.all(keys.map(async (k) => (JSON.parse((await redis.get(k))!) as { url: string }).url));
      const idOfA = keys[urls.indexOf(a.url)]!.slice(`${prefix}instance:`.length);
      assert.ok(events.every((e) => e.id!.startsWith(`${idOfA}.`)), 'served by the instance that opened the session');
    } finally {
      redis.destroy();
    }
  });

  it('MCP 2025-11-25 transports §Session Management: DELETE on one instance ends the session on every instance and upstream', async () => {
    const [a, b, c] = wardens as [Warden, Warden, Warden];
    const before = upstream.sessions();
    const sid = await openSession(at(a, '/mcp/remote'), alice.http);
    const h = { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' };
    for (const w of [b, c]) assert.equal((await post(at(w, '/mcp/remote'), alice.http, { jsonrpc: '2.0', id: 1, method: 'tools/list' }, h)).status, 200);
    const held = sessionsOn('/mcp/remote');
    const del = await fetch(at(b, '/mcp/remote'), { method: 'DELETE', headers: { authorization: `Bearer ${alice.http}`, ...h } });
    assert.equal(del.status, 204);
    await waitFor(() => sessionsOn('/mcp/remote').every((n, i) => n === held[i]! - 1), 'every instance dropped its copy');
    assert.equal(upstream.sessions(), before, 'the upstream session was deleted');
    for (const w of wardens) {
      const res = await post(at(w, '/mcp/remote'), alice.http, { jsonrpc: '2.0', id: 2, method: 'tools/list' }, h);
      assert.equal(res.status, 404, `at ${w.port}`);
    }
  });

  it('MCP 2025-11-25 transports §Session Management: idle on one instance while active on another drops only that copy; idle everywhere ends the session upstream', async () => {
    const [a, b] = wardens as [Warden, Warden];
    const token = await issuer.mint({ aud: `${front}/mcp/brief` });
    const before = upstream.sessions();
    const sid = await openSession(at(a, '/mcp/brief'), token);
    const h = { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' };
    const count = (w: Warden) => w.gateway.endpoints.get('/mcp/brief')!.sessionCount;
    // Busy on b (its refreshes, every quarter of the idle timeout, tell the directory) until a's copy idles out.
    let id = 0;
    await waitFor(async () => {
      const res = await post(at(b, '/mcp/brief'), token, { jsonrpc: '2.0', id: ++id, method: 'ping' }, h);
      assert.equal(res.status, 200);
      await res.text();
      return count(a) === 0;
    }, 'the copy on a to idle out', { intervalMs: 100 });
    assert.equal(upstream.sessions(), before + 1, 'the upstream session lives on');
    assert.equal(count(b), 1);
    // Now idle everywhere: b ends it for good.
    await waitFor(() => upstream.sessions() === before && count(b) === 0, 'the session to end upstream');
    const res = await post(at(a, '/mcp/brief'), token, { jsonrpc: '2.0', id: ++id, method: 'ping' }, h);
    assert.equal(res.status, 404, 'and its entry is gone');
  });

  it('"no database round trip on the hot path": requests for a session held here send no command to Redis', async () => {
    const [a, b] = wardens as [Warden, Warden];
    const sids = { stdio: await openSession(at(a, '/mcp/tiny'), alice.stdio), http: await openSession(at(a, '/mcp/remote'), alice.http) };
    const monitor = createClient({ url: TEST_REDIS_URL });
    monitor.on('error', () => {});
    await monitor.connect();
    const seen: string[] = [];
    await monitor.monitor((line) => {
      if (line.includes(`${prefix}session:`)) seen.push(line);
    });
    try {
      for (let i = 0; i < 10; i++) {
        for (const [path, sid, token] of [['/mcp/tiny', sids.stdio, alice.stdio], ['/mcp/remote', sids.http, alice.http]] as const) {
          const res = await post(at(a, path), token, call(i + 1, 'echo', { message: 'hot' }), { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' });
          assert.equal(res.status, 200);
          await res.text();
        }
      }
      // MONITOR delivers in order: a command after the requests proves it heard everything before.
      const marker = `${prefix}session:marker`;
      const probe = createClient({ url: TEST_REDIS_URL });
      await probe.connect();
      await probe.get(marker);
      probe.destroy();
      await waitFor(() => seen.some((l) => l.includes(marker)), 'the marker command');
      assert.deepEqual(seen.filter((l) => !l.includes(marker)), [], 'no session directory command for local sessions');
      // The counter works: the same request on another instance looks the session up once.
      const res = await post(at(b, '/mcp/tiny'), alice.stdio, call(99, 'echo', { message: 'away' }), { 'mcp-session-id': sids.stdio, 'mcp-protocol-version': '2025-11-25' });
      assert.equal(res.status, 200);
      await res.text();
      await waitFor(() => seen.some((l) => l.includes(`session:${sids.stdio}`)), 'the lookup from the other instance');
    } finally {
      monitor.destroy();
    }
  });

  it('MCP lifecycle §Shutdown: an instance that stops while a call it forwarded over the hop is in flight drains it: the call is answered, then it closes', async () => {
    const [owner] = wardens as [Warden];
    // A fourth instance of the deployment, outside the balancer: the one that forwards, and stops.
    const forwarder = await startWarden(makeConfig);
    try {
      const sid = await openSession(at(owner, '/mcp/tiny'), alice.stdio);
      const h = { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' };
      // The child answers after 1.5 s; the request reaches the forwarder, which holds no session.
      const answer = post(at(forwarder, '/mcp/tiny'), alice.stdio, call(7, 'slow', { ticks: 1, intervalMs: 1_500 }), h);
      await waitFor(() => forwarder.gateway.pendingRequests() === 1, 'the forwarded call to be counted in flight', { timeoutMs: 10_000, intervalMs: 5 });
      assert.equal(forwarder.gateway.endpoints.get('/mcp/tiny')!.sessionCount, 0, 'the forwarder holds no session: only the hop is in flight');
      const closing = forwarder.close({ drainMs: 10_000 });
      const res = await answer;
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('connection'), 'close', 'the forwarded answer closes the client\'s connection to the stopping instance');
      assert.deepEqual((await messagesOf(res)).map((m) => m.result?.content?.[0]?.text), ['slow done']);
      await closing;
      assert.equal(forwarder.gateway.pendingRequests(), 0);
      const end = await fetch(at(owner, '/mcp/tiny'), { method: 'DELETE', headers: { authorization: `Bearer ${alice.stdio}`, ...h } });
      assert.equal(end.status, 204);
    } finally {
      await forwarder.close();
    }
  });

  it('MCP lifecycle §Shutdown: a stopping instance still serves an HTTP-upstream session held elsewhere, closing the connection after its answer; its close leaves the session to the others', async () => {
    const [owner] = wardens as [Warden];
    // A fourth instance of the deployment, outside the balancer: it holds no copy of the session.
    const stopping = await startWarden(makeConfig);
    let closed = false;
    try {
      const sid = await openSession(at(owner, '/mcp/remote'), alice.http);
      const h = { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' };
      const sessions = upstream.sessions();
      // What close({ drainMs }) does first (src/app.ts): from now on the instance is stopping.
      stopping.gateway.stop();
      const res = await post(at(stopping, '/mcp/remote'), alice.http, call(8, 'echo', { message: 'while stopping' }), h);
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('connection'), 'close', 'the answer is the last on the connection to the stopping instance');
      assert.deepEqual((await messagesOf(res)).map((m) => m.result?.content?.[0]?.text), ['while stopping']);
      assert.equal(stopping.gateway.endpoints.get('/mcp/remote')!.sessionCount, 1, 'served by a copy adopted here');
      closed = true;
      await stopping.close();
      assert.equal(stopping.gateway.endpoints.get('/mcp/remote')!.sessionCount, 0, 'the copy is detached at close');
      // Detached, not ended: the same upstream session goes on at the instance that opened it.
      const after = await post(at(owner, '/mcp/remote'), alice.http, call(9, 'echo', { message: 'after the stop' }), h);
      assert.equal(after.status, 200);
      assert.deepEqual((await messagesOf(after)).map((m) => m.result?.content?.[0]?.text), ['after the stop']);
      assert.equal(upstream.sessions(), sessions, 'the same upstream session served them');
      const end = await fetch(at(owner, '/mcp/remote'), { method: 'DELETE', headers: { authorization: `Bearer ${alice.http}`, ...h } });
      assert.equal(end.status, 204);
    } finally {
      if (!closed) await stopping.close();
    }
  });

  it('an instance that goes away: its stdio sessions end (404, and a new initialize works) while HTTP-upstream sessions go on at the survivors', async () => {
    const [a] = wardens as [Warden];
    // Both sessions open on `a`: the balancer sends everything there for the initialize.
    live = [a];
    const stdio = await connect('/mcp/tiny', alice.stdio);
    const http = await connect('/mcp/remote', alice.http);
    live = [...wardens];
    await stdio.client.listTools();
    await http.client.callTool({ name: 'echo', arguments: { message: 'before' } });

    live = wardens.filter((w) => w !== a);
    await a.close();
    // stdio: the child died with its instance; the client is told the session is gone (404).
    await assert.rejects(stdio.client.callTool({ name: 'pid', arguments: {} }), /404|[Ss]ession/);
    await stdio.client.close().catch(() => {});
    const again = await connect('/mcp/tiny', alice.stdio);
    const { tools } = await again.client.listTools();
    assert.ok(tools.some((t) => t.name === 'echo'), 'a new initialize works on the survivors');
    // HTTP: the same session, adopted by the survivors, without a new initialize.
    for (let i = 0; i < 4; i++) {
      const result = await http.client.callTool({ name: 'echo', arguments: { message: `after ${i}` } });
      assert.deepEqual(result.content, [{ type: 'text', text: `after ${i}` }]);
    }
    await again.transport.terminateSession();
    await again.client.close();
    await http.transport.terminateSession();
    await http.client.close();
  });
});
