/**
 * Adopting another instance's HTTP-upstream session (src/cluster/session-routing.ts) while this
 * instance stops: the upstream connection of the copy can take a while (its downstream
 * credentials may need an RFC 8693 exchange), and the endpoint can close meanwhile. The drain
 * waits for an adoption in flight; one that ends after the endpoint closed is detached at once and
 * its request answered 503 `shutting_down`, never left as a copy nothing will ever end.
 * A directory and an upstream of our own, so the moment of each step is the test's.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createEndpointSessionSharing } from '../../src/cluster/session-routing.ts';
import type { DirectoryEntry, SessionDirectory } from '../../src/cluster/session-directory.ts';
import { parseConfig } from '../../src/config/load.ts';
import { GatewayError } from '../../src/gateway/errors.ts';
import { createServerEndpoint } from '../../src/gateway/server-endpoint.ts';
import { createTokenVerifier } from '../../src/gateway/token-verifier.ts';
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
  const directory: SessionDirectory = {
    instanceId: 'self',
    instanceUrl: 'http://127.0.0.1:8',
    register: async () => {},
    lookup: async (asked) => (asked === id ? entry : undefined),
    remove: async (gone) => void removed.push(gone),
    instanceUrlOf: async () => undefined, // the owner is gone: the session is adopted here
    onEnded: () => () => {},
    onRecovered: () => () => {},
    close: async () => {},
  };
  const sharing = createEndpointSessionSharing({ directory, secret: 'cluster-secret-0123456789abcdefghijklmnop', kind: 'http', idleMs: 60_000, log: silentLogger });
  /** The copy's upstream connection: made when the test says. */
  let connected!: () => void;
  const closes: { keepSession?: boolean | undefined }[] = [];
  const connection: UpstreamConnection = { send: async () => {}, openServerStream: () => {}, close: async (o) => void closes.push({ keepSession: o?.keepSession }) };
  const upstream: Upstream = {
    connect: () => new Promise((resolve) => { connected = () => resolve(connection); }),
    close: async () => {},
  };
  const sessions = new SessionRegistry<Session>({ serverPath: server.path, maxSessionsPerCaller: 10, maxSessionsPerUser: 10 });
  const ctx = { config, server, log: silentLogger, sessions, callers: new WeakMap(), upstream, stopping: false, sharing } as unknown as EndpointContext;
  const req = { method: 'POST', url: '/mcp', headers: { 'mcp-session-id': id } } as unknown as IncomingMessage;
  const res = { destroyed: false, writableFinished: false, socket: { destroyed: false } } as unknown as ServerResponse;
  return { id, sharing, ctx, req, res, closes, removed, connect: () => connected() };
}

describe('adopting a session of another instance while this one stops (MCP lifecycle §Shutdown)', () => {
  it('an adoption in flight is counted for the drain; one that ends after the endpoint closed is detached and answered 503 shutting_down', async () => {
    const { id, sharing, ctx, req, res, closes, removed, connect } = setUp();
    const routed = sharing.route(ctx, req, res, caller, '2025-11-25', undefined);
    routed.catch(() => {});
    // The lookup, then the owner found gone: the adoption starts.
    for (let i = 0; i < 10 && sharing.adoptionsInFlight === 0; i++) await new Promise((resolve) => setImmediate(resolve));
    assert.equal(sharing.adoptionsInFlight, 1, 'the drain sees the adoption in flight');
    await sharing.closeAll(ctx);
    connect();
    await assert.rejects(routed, (err: unknown) => err instanceof GatewayError && err.code === 'shutting_down' && err.status === 503 && err.retryAfterSeconds === 1);
    assert.equal(ctx.sessions.get(id), undefined, 'no copy left in the endpoint');
    assert.deepEqual(closes, [{ keepSession: true }], 'the copy\'s upstream connection is closed, the upstream session kept for the other instances');
    assert.deepEqual(removed, [], 'the session stays in the directory: it lives on elsewhere');
    assert.equal(sharing.adoptionsInFlight, 0);
  });

  it('an adoption that ends before the endpoint closes serves its request, and closeAll detaches the copy', async () => {
    const { id, sharing, ctx, req, res, closes, connect } = setUp();
    const routed = sharing.route(ctx, req, res, caller, '2025-11-25', undefined);
    for (let i = 0; i < 10 && sharing.adoptionsInFlight === 0; i++) await new Promise((resolve) => setImmediate(resolve));
    connect();
    assert.equal(await routed, false, 'the local pipeline serves the request with the adopted copy');
    assert.ok(ctx.sessions.get(id)?.adopted);
    await sharing.closeAll(ctx);
    assert.equal(ctx.sessions.get(id), undefined);
    assert.deepEqual(closes, [{ keepSession: true }]);
  });

  it('the endpoint counts adoptions in flight among the requests a drain waits for', async () => {
    const upstream: Upstream = { connect: async () => { throw new Error('not used'); }, close: async () => {} };
    const endpoint = createServerEndpoint({
      config, server, verifier: createTokenVerifier({ config }), policy: undefined, logger: silentLogger, upstream,
      audit: { record() {}, close: async () => {} }, downstream: { envFor: async () => ({}), headersFor: async () => ({}) }, checkOrigin: () => undefined,
      sessionSharing: () => ({
        instanceId: 'self', verifyHop: () => undefined, route: async () => false, wrap: (u) => u, opened: async () => {}, touched: () => {}, closeAll: async () => {},
        hopsInFlight: 1, adoptionsInFlight: 2,
      }),
    });
    try {
      assert.equal(endpoint.pendingRequests, 3, 'one hop and two adoptions in flight');
    } finally {
      await endpoint.close();
    }
  });
});
