/** Unit tests of the endpoint's steps (src/gateway/steps/), each on its own, with a recording context. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { parseConfig } from '../../src/config/load.ts';
import type { DecisionRecord } from '../../src/audit/decision.ts';
import { GatewayError } from '../../src/gateway/errors.ts';
import type { Caller } from '../../src/kernel/caller.ts';
import type { ServerPolicy } from '../../src/policy/types.ts';
import { silentLogger } from '../../src/log.ts';
import type { EndpointContext } from '../../src/gateway/steps/context.ts';
import { checkEdge } from '../../src/gateway/steps/edge.ts';
import { authenticate } from '../../src/gateway/steps/authenticate.ts';
import { checkRequiredScopes } from '../../src/gateway/steps/scope.ts';
import { checkBatchAllowed, governingVersion, readProtocolVersion } from '../../src/gateway/steps/version.ts';
import { negotiateGet, negotiatePost } from '../../src/gateway/steps/negotiate.ts';
import { decideMessages } from '../../src/gateway/steps/policy.ts';
import { upstreamFailureMessage, reportUpstreamFailure } from '../../src/gateway/steps/upstream-failure.ts';
import { DownstreamCredentialError } from '../../src/downstream/errors.ts';
import { TINY_SERVER } from './fixtures/raw.ts';

const caller: Caller = { subject: 'alice', clientId: 'c1', issuer: 'https://as.example', audience: 'https://mcp.example.com/mcp', scopes: ['notes:read'], roles: [], claims: {}, expiresAt: 2_000_000_000, accessToken: 'opaque-token-value' };

function context(overrides: Partial<EndpointContext> & { requiredScopes?: string[] } = {}): { ctx: EndpointContext; records: DecisionRecord[] } {
  const config = parseConfig({
    publicUrl: 'https://mcp.example.com',
    authorizationServer: { external: { issuer: 'https://as.example' } },
    servers: [{ name: 'notes', path: '/mcp', upstream: { stdio: TINY_SERVER }, scopes: ['notes:read', 'notes:write'], requiredScopes: overrides.requiredScopes ?? [] }],
  });
  const records: DecisionRecord[] = [];
  const ctx = {
    config,
    server: config.servers[0]!,
    resourceMetadataUrl: 'https://mcp.example.com/.well-known/oauth-protected-resource/mcp',
    verifier: { verify: async () => caller },
    policy: undefined,
    log: silentLogger,
    record: (r: DecisionRecord) => records.push(r),
    clientAddress: () => '192.0.2.1',
    checkOrigin: (o: string | undefined) => {
      if (o !== undefined && o !== 'https://app.example') throw new GatewayError('forbidden_origin', 'Origin not allowed');
      return o;
    },
    ...overrides,
  } as unknown as EndpointContext;
  return { ctx, records };
}

const req = (method: string, headers: Record<string, string> = {}) => ({ method, headers }) as unknown as IncomingMessage;
const code = (c: string, status: number) => (e: unknown) => e instanceof GatewayError && e.code === c && e.status === status;

function fakeRes() {
  const out: { status?: number; headers?: Record<string, string> } = {};
  const res = { writeHead: (status: number, headers: Record<string, string>) => ((out.status = status), (out.headers = headers), res), end: () => res } as unknown as ServerResponse;
  return { res, out };
}

describe('endpoint steps', () => {
  it('edge, MCP transports §Security Warning: a foreign Origin is 403 and audited; an allowed one gets CORS; a preflight is answered; other methods 405 (RFC 9110 §15.5.6)', () => {
    const { ctx, records } = context();
    assert.throws(() => checkEdge(ctx, req('POST', { origin: 'https://evil.example' }), fakeRes().res), code('forbidden_origin', 403));
    assert.equal(records[0]?.reason, 'origin not allowed');
    assert.deepEqual(checkEdge(ctx, req('POST'), fakeRes().res), {});
    assert.equal(checkEdge(ctx, req('GET', { origin: 'https://app.example' }), fakeRes().res)?.['Access-Control-Allow-Origin'], 'https://app.example');
    const pre = fakeRes();
    assert.equal(checkEdge(ctx, req('OPTIONS', { origin: 'https://app.example' }), pre.res), undefined);
    assert.equal(pre.out.status, 204);
    assert.throws(() => checkEdge(ctx, req('PUT'), fakeRes().res), (e: unknown) => e instanceof GatewayError && e.status === 405 && e.allow === 'GET, POST, DELETE, OPTIONS');
  });

  it('authenticate, RFC 6750 §3.1: no token is 401 with no error code, audited under the client address; a verified token yields the caller', async () => {
    const { ctx, records } = context();
    // Refused before any verification: thrown at once, not through a promise.
    assert.throws(() => authenticate(ctx, req('POST'), '', performance.now()), code('unauthorized', 401));
    assert.deepEqual(records.at(-1), { method: 'http', decision: 'deny', reason: 'no access token', latencyUs: 0, remoteAddress: '192.0.2.1' });
    assert.throws(() => authenticate(ctx, req('POST', { authorization: 'Basic abc' }), '', performance.now()), code('invalid_request', 400));
    assert.equal(records.at(-1)?.reason, 'malformed authorization');
    assert.equal(await authenticate(ctx, req('POST', { authorization: 'Bearer abc.def' }), '', performance.now()), caller);
  });

  it('authenticate: a token the verifier knows is answered at once; what it cannot answer, or fails on, goes to verify, whose refusal is audited', async () => {
    const asked: string[] = [];
    const known = context({ verifier: { verifyNow: () => caller, verify: async () => (asked.push('verify'), caller) } } as Partial<EndpointContext>);
    const now = authenticate(known.ctx, req('POST', { authorization: 'Bearer abc.def' }), '', performance.now());
    assert.equal(now, caller, 'the caller itself, not a promise');
    assert.deepEqual(asked, []);
    const failing = context({
      verifier: {
        verifyNow: () => {
          throw new Error('key source broke');
        },
        verify: async () => {
          throw new GatewayError('invalid_token', 'the access token is invalid', { reason: 'signature' });
        },
      },
    } as Partial<EndpointContext>);
    const later = authenticate(failing.ctx, req('POST', { authorization: 'Bearer abc.def' }), '', performance.now());
    assert.ok(later instanceof Promise);
    await assert.rejects(later, code('invalid_token', 401));
    assert.equal(failing.records.at(-1)?.reason, 'invalid token: signature');
  });

  it('scope, MCP authorization §Scope Selection Strategy: a missing required scope is 403 naming the scopes held here plus every required one', () => {
    const { ctx, records } = context({ requiredScopes: ['notes:write'] });
    assert.throws(() => checkRequiredScopes(ctx, caller, performance.now()), (e: unknown) => e instanceof GatewayError && e.code === 'insufficient_scope' && e.scope?.join(' ') === 'notes:read notes:write');
    assert.equal(records[0]?.reason, 'missing required scope notes:write');
    checkRequiredScopes(context().ctx, caller, performance.now());
  });

  it('version, MCP transports §Protocol Version Header: invalid or unsupported is 400; the negotiated version governs, then the header, then 2025-03-26', () => {
    assert.equal(readProtocolVersion(req('POST')), undefined);
    assert.equal(readProtocolVersion(req('POST', { 'mcp-protocol-version': '2025-06-18' })), '2025-06-18');
    assert.throws(() => readProtocolVersion(req('POST', { 'mcp-protocol-version': '2030-01-01' })), code('unsupported_protocol_version', 400));
    assert.equal(governingVersion('2025-11-25', '2025-06-18'), '2025-11-25');
    assert.equal(governingVersion(undefined, '2025-06-18'), '2025-06-18');
    assert.equal(governingVersion(undefined, undefined), '2025-03-26');
    checkBatchAllowed('2025-03-26', true);
    checkBatchAllowed('2025-11-25', false);
    assert.throws(() => checkBatchAllowed('2025-06-18', true), code('batch_not_allowed', 400));
  });

  it('negotiate, RFC 9110 §12.5.1: POST needs JSON in and JSON or SSE out (q=0 excludes); GET needs SSE', () => {
    assert.deepEqual(negotiatePost(req('POST', { 'content-type': 'application/json', accept: 'application/json, text/event-stream' })), { acceptsSse: true });
    assert.deepEqual(negotiatePost(req('POST', { 'content-type': 'application/json', accept: 'application/json' })), { acceptsSse: false });
    assert.throws(() => negotiatePost(req('POST', { 'content-type': 'text/plain' })), code('unsupported_media_type', 415));
    assert.throws(() => negotiatePost(req('POST', { 'content-type': 'application/json', accept: 'application/json;q=0' })), code('not_acceptable', 406));
    negotiateGet(req('GET', { accept: 'text/event-stream' }));
    assert.throws(() => negotiateGet(req('GET')), code('not_acceptable', 406));
    assert.throws(() => negotiateGet(req('GET', { accept: 'text/event-stream;q=0, */*' })), code('not_acceptable', 406));
  });

  it('policy: every request and notification is decided on the principal (never the access token) and audited, denials are returned, a step-up denial is 403 insufficient_scope', () => {
    const seen: unknown[] = [];
    const policy: ServerPolicy = {
      decide: (principal, r) => {
        seen.push(principal);
        const name = (r.params as { name?: string } | undefined)?.name;
        if (name === 'write') return { effect: 'deny', rule: 'writers', reason: 'needs notes:write', target: name, stepUpScopes: ['notes:read', 'notes:write'] };
        if (name === 'admin') return { effect: 'deny', rule: null, reason: 'not an admin', target: name };
        return { effect: 'allow', rule: 'readers', reason: 'allowed', target: name ?? null };
      },
      filterList: (_c, _m, result) => result,
    };
    const { ctx, records } = context({ policy });
    const read = { jsonrpc: '2.0' as const, id: 1, method: 'tools/call', params: { name: 'read', arguments: { q: 'x' } } };
    const admin = { jsonrpc: '2.0' as const, id: 2, method: 'tools/call', params: { name: 'admin' } };
    const note = { jsonrpc: '2.0' as const, method: 'notifications/initialized' };
    const response = { jsonrpc: '2.0' as const, id: 7, result: {} };
    const denied = decideMessages(ctx, caller, [read, admin, note, response], 'sid');
    assert.deepEqual([...denied], [[admin, 'not an admin']]);
    assert.deepEqual(records.map((r) => [r.method, r.target, r.decision, r.sessionId]), [['tools/call', 'read', 'allow', 'sid'], ['tools/call', 'admin', 'deny', 'sid'], ['notifications/initialized', null, 'allow', 'sid']]);
    assert.deepEqual(records[0]?.arguments, { q: 'x' });
    assert.equal(seen.length, 3, 'responses are not decided');
    // RFC 6750 §5.3: the engine is handed the verified claims, and the bearer token is not reachable from them.
    for (const p of seen) assert.ok(!('accessToken' in (p as object)) && !JSON.stringify(p).includes(caller.accessToken));
    const write = { jsonrpc: '2.0' as const, id: 3, method: 'tools/call', params: { name: 'write' } };
    assert.throws(() => decideMessages(ctx, caller, [write], 'sid'), (e: unknown) => e instanceof GatewayError && e.code === 'insufficient_scope' && e.scope?.join(' ') === 'notes:read notes:write');
  });

  it('upstream failure: the client message names the session only; a downstream-credential message is passed on as written for the user', () => {
    assert.equal(reportUpstreamFailure(silentLogger, 'abc', new Error('connect ECONNREFUSED 10.0.3.7:8080'), 'x'), upstreamFailureMessage('abc'));
    assert.equal(upstreamFailureMessage('abc'), 'the upstream MCP server failed (session abc)');
    const safe = new DownstreamCredentialError('credential_missing', 'store your GitHub token at /account first', 'no credential for alice');
    assert.equal(reportUpstreamFailure(silentLogger, 'abc', safe, 'x'), 'store your GitHub token at /account first');
  });
});
