/**
 * Adopting another instance's HTTP-upstream session (src/cluster/session-routing.ts) while this
 * instance stops, and two requests adopting one session: the upstream connection of the copy can
 * take a while (its downstream credentials may need an RFC 8693 exchange), and the endpoint can
 * close meanwhile. An adoption that ends after the endpoint closed is detached at once and its
 * request answered 503 `shutting_down`; none starts after; and one session has one copy, never a
 * second one nothing will ever end. A directory and an upstream of our own, so the moment of each
 * step is the test's.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createEndpointSessionSharing } from '../../src/cluster/session-routing.ts';
import type { DirectoryEntry, SessionDirectory } from '../../src/cluster/session-directory.ts';
import { parseConfig } from '../../src/config/load.ts';
import { GatewayError } from '../../src/gateway/errors.ts';
import { SessionRegistry } from '../../src/gateway/session-registry.ts';
import type { Session } from '../../src/gateway/session.ts';
import type { EndpointContext } from '../../src/gateway/steps/context.ts';
import type { Upstream, UpstreamConnection } from '../../src/gateway/upstreams/types.ts';
import type { Caller } from '../../src/kernel/caller.ts';
import { silentLogger } from '../../src/log.ts';

const config = parseConfig({
  publicUrl: 'https://mcp.example.com',
  authorizationServer: { external: { issuer: 'https://as.example' } },
  servers: [{ name: 'remote', path: '/mcp', upstream: { http: { url: 'http://127.0.0.1:9/mcp' } } }],
});
const server = config.servers[0]!;
const caller: Caller = { subject: 'alice', clientId: 'c1', issuer: 'https://as.example', audience: 'https://mcp.example.com/mcp', scopes: [], roles: [], claims: {}, expiresAt: 2_000_000_000, accessToken: 'x' };

function setUp() {
  const id = randomUUID();
  const entry: DirectoryEntry = {
    instance: 'owner', url: 'http://127.0.0.1:9', kind: 'http', upstreamSessionId: 'upstream-1', protocolVersion: '2025-11-25',
    binding: { subject: caller.subject, clientId: caller.clientId, audience: caller.audience, serverPath: server.path }, touchedAt: Date.now(), touchedBy: 'owner',
  };
  const removed: string[] = [];
  /** Lookups answered when the test says (each in the order asked), or at once when `held` is false. */
  const lookups: (() => void)[] = [];
  let held = false;
  const directory: SessionDirectory = {
    instanceId: 'self',
    instanceUrl: 'http://127.0.0.1:8',
    register: async () => {},
    lookup: (asked) => {
      const answer = asked === id ? entry : undefined;
      if (!held) return Promise.resolve(answer);
      return new Promise((resolve) => lookups.push(() => resolve(answer)));
    },
    remove: async (gone) => void removed.push(gone),
    instanceUrlOf: async () => undefined, // the owner is gone: the session is adopted here
    onEnded: () => () => {},
    onRecovered: () => () => {},
    close: async () => {},
  };
  const sharing = createEndpointSessionSharing({ directory, secret: 'cluster-secret-0123456789abcdefghijklmnop', kind: 'http', idleMs: 60_000, log: silentLogger });
  /** Each copy's upstream connection: made when the test says. */
  const connects: ((err?: Error) => void)[] = [];
  const closes: { keepSession?: boolean | undefined }[] = [];
  const connection: UpstreamConnection = { send: async () => {}, openServerStream: () => {}, close: async (o) => void closes.push({ keepSession: o?.keepSession }) };
  const upstream: Upstream = {
    connect: () => new Promise((resolve, reject) => { connects.push((err) => (err ? reject(err) : resolve(connection))); }),
    close: async () => {},
  };
  const sessions = new SessionRegistry<Session>({ serverPath: server.path, maxSessionsPerCaller: 10, maxSessionsPerUser: 10 });
  const ctx = { config, server, log: silentLogger, sessions, callers: new WeakMap(), upstream, stopping: false, sharing } as unknown as EndpointContext;
  const req = () => ({ method: 'POST', url: '/mcp', headers: { 'mcp-session-id': id } }) as unknown as IncomingMessage;
  const res = () => ({ destroyed: false, writableFinished: false, socket: { destroyed: false } }) as unknown as ServerResponse;
  const route = () => sharing.route(ctx, req(), res(), caller, '2025-11-25', undefined);
  const hold = () => { held = true; };
  return { id, sharing, ctx, route, closes, removed, connects, lookups, hold };
}

const shuttingDown = (err: unknown) => err instanceof GatewayError && err.code === 'shutting_down' && err.status === 503 && err.retryAfterSeconds === 1;
/** `p`, or a rejection after 2 s: a request left waiting fails its test instead of hanging it. */
const within = <T>(p: Promise<T>): Promise<T> => Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error('still waiting after 2 s')), 2_000))]);
const turns = async (n = 10) => {
  for (let i = 0; i < n; i++) await new Promise((resolve) => setImmediate(resolve));
};

describe('adopting a session of another instance (MCP 2025-11-25 transports §Session Management; lifecycle §Shutdown)', () => {
  it('an adoption that ends after the endpoint closed is detached and its request answered 503 shutting_down', async () => {
    const { id, sharing, ctx, route, closes, removed, connects } = setUp();
    const routed = route();
    routed.catch(() => {});
    await turns();
    assert.equal(connects.length, 1, 'the copy\'s upstream connection is being made');
    // What the instance's close does: stopping, then the endpoint's sessions closed.
    ctx.stopping = true;
    await sharing.closeAll(ctx);
    connects[0]!();
    await assert.rejects(within(routed), shuttingDown);
    assert.equal(ctx.sessions.get(id), undefined, 'no copy left in the endpoint');
    assert.deepEqual(closes, [{ keepSession: true }], 'the copy\'s upstream connection is closed, the upstream session kept for the other instances');
    assert.deepEqual(removed, [], 'the session stays in the directory: it lives on elsewhere');
  });

  it('an adoption whose upstream connection fails because the endpoint closed meanwhile is answered 503 shutting_down, not 502', async () => {
    const { id, sharing, ctx, route, connects } = setUp();
    const routed = route();
    routed.catch(() => {});
    await turns();
    ctx.stopping = true;
    await sharing.closeAll(ctx);
    // As a token exchange does once the instance's storage has closed.
    connects[0]!(new Error('the database is closed'));
    await assert.rejects(within(routed), shuttingDown);
    assert.equal(ctx.sessions.get(id), undefined);
  });

  it('after the endpoint closed, no adoption starts: 503 shutting_down, no upstream connection', async () => {
    const { sharing, ctx, route, connects } = setUp();
    ctx.stopping = true;
    await sharing.closeAll(ctx);
    await assert.rejects(within(route()), shuttingDown);
    assert.equal(connects.length, 0);
  });

  it('an adoption that ends before the endpoint closes serves its request, and closeAll detaches the copy', async () => {
    const { id, sharing, ctx, route, closes, connects } = setUp();
    const routed = route();
    await turns();
    connects[0]!();
    assert.equal(await routed, false, 'the local pipeline serves the request with the adopted copy');
    assert.ok(ctx.sessions.get(id)?.adopted);
    await sharing.closeAll(ctx);
    assert.equal(ctx.sessions.get(id), undefined);
    assert.deepEqual(closes, [{ keepSession: true }]);
  });

  it('a request whose lookup answers after another adopted the session uses that copy: one copy, one upstream connection', async () => {
    const { id, sharing, ctx, route, closes, connects, lookups, hold } = setUp();
    hold();
    const first = route();
    const second = route();
    await turns();
    assert.equal(lookups.length, 2, 'both requests look the session up');
    lookups[0]!();
    await turns();
    connects[0]!();
    assert.equal(await first, false);
    const copy = ctx.sessions.get(id);
    assert.ok(copy?.adopted);
    lookups[1]!();
    assert.equal(await within(second), false);
    assert.equal(connects.length, 1, 'no second adoption');
    assert.equal(ctx.sessions.get(id), copy, 'the first copy serves both');
    await sharing.closeAll(ctx);
    assert.deepEqual(closes, [{ keepSession: true }], 'the one copy is detached; none is left open');
  });
});
