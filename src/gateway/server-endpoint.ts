/**
 * The Streamable HTTP endpoint of one protected MCP server (MCP 2025-11-25 basic/transports),
 * with the resource server's checks in the order the reference recommends (§4.8):
 * Origin → bearer token → required scopes → protocol version → session → policy → forward.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AuditEvent, AuditSink } from '../audit/types.ts';
import { redactArguments } from '../audit/redact.ts';
import { auditTime } from '../audit/time.ts';
import { createClientAddressResolver } from '../http/client-address.ts';
import { DownstreamCredentialError } from '../downstream/errors.ts';
import { endAtCredentialExpiry } from '../downstream/session-expiry.ts';
import type { DownstreamCredentials } from '../downstream/types.ts';
import type { Config, ServerConfig } from '../config/schema.ts';
import type { Logger } from '../log.ts';
import type { ServerPolicy } from '../policy/types.ts';
import { accepts, isJsonContentType } from './accept.ts';
import { parseBearerToken } from './bearer.ts';
import type { Caller } from '../kernel/caller.ts';
import { GatewayError, sendGatewayError } from './errors.ts';
import { Exchange, type ResponseTransform } from './exchange.ts';
import { parseLastEventId } from './event-id.ts';
import { errorResponse, idKey, isNotification, isRequest, parseJsonRpcBody, type JsonRpcMessage, type JsonRpcRequest, type JsonRpcResponse } from './jsonrpc.ts';
import { canonicalResourceUri, protectedResourceMetadataUrl } from '../kernel/resource-uri.ts';
import { allowsBatches, DEFAULT_PROTOCOL_VERSION, isSupportedProtocolVersion, parseProtocolVersionHeader, type ProtocolVersion } from './protocol-version.ts';
import { readBody } from './read-body.ts';
import { requestLimitsOf, tooManyPending } from './pending-requests.ts';
import { isBoundTo, primesStreams, Session } from './session.ts';
import { startSseResponse } from './sse.ts';
import type { TokenVerifier } from './token-verifier.ts';
import { UpstreamError, type Upstream } from './upstreams/types.ts';

/** Interval of SSE keep-alive comments on open GET streams. */
const KEEPALIVE_MS = 25_000;

/** JSON-RPC error code for a request the policy refuses (issue 4). */
export const FORBIDDEN_CODE = -32003;

export interface ServerEndpointOptions {
  config: Config;
  server: ServerConfig;
  verifier: TokenVerifier;
  upstream: Upstream;
  policy: ServerPolicy | undefined;
  audit: AuditSink;
  downstream: DownstreamCredentials;
  logger: Logger;
  /** Returns the allowed Origin (for CORS) or undefined; throws forbidden_origin. */
  checkOrigin: (origin: string | undefined) => string | undefined;
}

export interface ServerEndpoint {
  readonly server: ServerConfig;
  readonly resource: string;
  readonly resourceMetadataUrl: string;
  handle(req: IncomingMessage, res: ServerResponse, query: string): Promise<void>;
  /** Sessions alive now. */
  readonly sessionCount: number;
  close(): Promise<void>;
}

const ALLOW = 'GET, POST, DELETE, OPTIONS';
const CORS_REQUEST_HEADERS = 'Authorization, Content-Type, Accept, Mcp-Session-Id, MCP-Protocol-Version, Last-Event-ID';
const CORS_EXPOSED_HEADERS = 'Mcp-Session-Id, WWW-Authenticate, MCP-Protocol-Version';

export function createServerEndpoint(options: ServerEndpointOptions): ServerEndpoint {
  const { config, server, verifier, upstream, policy, audit } = options;
  const resource = canonicalResourceUri(config, server);
  const resourceMetadataUrl = protectedResourceMetadataUrl(config, server);
  const sessions = new Map<string, Session>();
  /** The latest verified caller of each session: downstream headers are asked for with it. */
  const callers = new WeakMap<Session, Caller>();
  const callerOf = (session: Session): Caller => callers.get(session)!;
  /** The initialize timer of each session, cleared by the initialize response. */
  const initialized = new WeakMap<Session, NodeJS.Timeout>();
  const log = options.logger.child({ server: server.name });
  // The address unauthenticated denials are audited (and folded) under: through trusted proxies only.
  const clientAddress = createClientAddressResolver(config.trustProxy);
  const idleMs = server.idleTimeoutSeconds * 1000;
  // One timer for all GET streams of this endpoint, not one per session.
  const keepAlive = setInterval(() => {
    for (const s of sessions.values()) s.keepAlive();
  }, KEEPALIVE_MS);
  keepAlive.unref();
  // One sweep for the endpoint: long-waiting JSON answers of 2025-11-25 clients become resumable streams.
  const streamAfterMs = server.sse.streamAfterMs;
  const streamSweep = streamAfterMs > 0 ? setInterval(() => {
    const before = Date.now() - streamAfterMs;
    for (const s of sessions.values()) s.streamWaiting(before);
  }, Math.max(100, Math.min(1000, Math.floor(streamAfterMs / 2)))) : undefined;
  streamSweep?.unref();

  const transform: (caller: Caller) => ResponseTransform = (caller) => (method, response) => {
    if (!policy) return response;
    return { ...response, result: policy.filterList(caller, method, response.result) };
  };

  /** A request without a valid token: audited (and folded) under the client's address, resolved through trusted proxies only. */
  function denyUnauthenticated(req: IncomingMessage, reason: string, latencyUs: number): void {
    record(undefined, 'http', null, 'deny', null, reason, latencyUs, null, undefined, clientAddress(req));
  }

  function record(caller: Caller | undefined, method: string, target: string | null, decision: 'allow' | 'deny', rule: string | null, reason: string, latencyUs: number, sessionId: string | null, args?: unknown, remoteAddress?: string): void {
    const event: AuditEvent = {
      time: auditTime(),
      subject: caller?.subject ?? '',
      clientId: caller?.clientId ?? '',
      roles: caller?.roles ?? [],
      server: server.name,
      method,
      target,
      decision,
      rule,
      reason,
      latencyUs,
      sessionId,
    };
    if (args !== undefined) event.arguments = redactArguments(args, config.audit.includeArguments);
    // Unauthenticated denials are folded per remote address (src/audit/unauthenticated.ts).
    if (remoteAddress !== undefined) event.remoteAddress = remoteAddress;
    try {
      audit.record(event);
    } catch (err) {
      log.error({ err: (err as Error).message }, 'audit sink failed');
    }
  }

  function corsHeaders(origin: string | undefined): Record<string, string> {
    return origin ? { 'Access-Control-Allow-Origin': origin, 'Access-Control-Expose-Headers': CORS_EXPOSED_HEADERS, Vary: 'Origin' } : {};
  }

  function fail(res: ServerResponse, err: unknown, cors: Record<string, string>): void {
    const e = err instanceof GatewayError ? err : new GatewayError('internal_error', 'internal error', { reason: err instanceof Error ? err.message : String(err) });
    if (e.status >= 500) log.error({ code: e.code, reason: e.reason }, 'request failed');
    else log.debug({ code: e.code, reason: e.reason }, 'request refused');
    // Closing after a 413 stops a client still streaming a body we will not read.
    if (e.code === 'payload_too_large') res.setHeader('Connection', 'close');
    sendGatewayError(res, e, { resourceMetadata: resourceMetadataUrl, challengeScope: server.requiredScopes.length ? server.requiredScopes : server.scopes, headers: cors });
  }

  /** 401/403 before any message is read: authenticate and check the server's required scopes. */
  async function authenticate(req: IncomingMessage, query: string): Promise<Caller> {
    const started = performance.now();
    let token: string | undefined;
    try {
      token = parseBearerToken(req, query);
    } catch (err) {
      denyUnauthenticated(req, 'malformed authorization', 0);
      throw err;
    }
    if (token === undefined) {
      denyUnauthenticated(req, 'no access token', 0);
      throw new GatewayError('unauthorized', 'an access token is required', { reason: 'no token' });
    }
    let caller: Caller;
    try {
      caller = await verifier.verify(token, server);
    } catch (err) {
      const reason = err instanceof GatewayError ? err.reason : 'verification failed';
      denyUnauthenticated(req, `invalid token: ${reason}`, Math.round((performance.now() - started) * 1000));
      throw err;
    }
    const missing = server.requiredScopes.filter((s) => !caller.scopes.includes(s));
    if (missing.length) {
      record(caller, 'http', null, 'deny', null, `missing required scope ${missing.join(' ')}`, Math.round((performance.now() - started) * 1000), null);
      // RS-14 "recommended" strategy: the scopes the caller holds here plus every required one.
      const needed = [...new Set([...caller.scopes.filter((s) => server.scopes.includes(s)), ...server.requiredScopes])];
      throw new GatewayError('insufficient_scope', `this server requires the scope ${missing.join(' ')}`, { scope: needed });
    }
    return caller;
  }

  function sessionFor(req: IncomingMessage, caller: Caller): Session {
    const id = req.headers['mcp-session-id'];
    if (typeof id !== 'string' || id.length === 0) throw new GatewayError('session_required', 'Bad Request: Mcp-Session-Id header is required');
    const session = sessions.get(id);
    if (!session || session.ended) throw new GatewayError('session_not_found', 'Session not found');
    if (!isBoundTo(session.binding, caller, server.path)) {
      record(caller, 'http', null, 'deny', null, 'session bound to another caller', 0, null);
      log.warn({ subject: caller.subject, clientId: caller.clientId }, 'session ID presented by another caller');
      throw new GatewayError('session_not_found', 'Session not found');
    }
    return session;
  }

  /** Policy decision for one client message; null when allowed, the denial otherwise. */
  function decide(caller: Caller, message: JsonRpcRequest | { method: string; params?: unknown }, sessionId: string | null): { reason: string; stepUpScopes?: string[] } | null {
    if (!policy) return null;
    const started = performance.now();
    const decision = policy.decide(caller, { server: server.name, method: message.method, params: message.params });
    const latencyUs = Math.round((performance.now() - started) * 1000);
    const args = message.method === 'tools/call' || message.method === 'prompts/get' ? (message.params as { arguments?: unknown } | undefined)?.arguments : undefined;
    record(caller, message.method, decision.target ?? null, decision.effect, decision.rule, decision.reason, latencyUs, sessionId, args);
    if (decision.effect === 'allow') return null;
    return { reason: decision.reason, stepUpScopes: decision.stepUpScopes };
  }

  async function handlePost(req: IncomingMessage, res: ServerResponse, caller: Caller, headerVersion: ProtocolVersion | undefined, cors: Record<string, string>): Promise<void> {
    if (!isJsonContentType(req.headers['content-type'])) throw new GatewayError('unsupported_media_type', 'Unsupported Media Type: Content-Type must be application/json');
    const accept = req.headers.accept;
    const acceptsSse = accepts(accept, 'text/event-stream');
    if (!acceptsSse && !accepts(accept, 'application/json')) {
      throw new GatewayError('not_acceptable', 'Not Acceptable: Accept must list application/json and text/event-stream');
    }
    const { messages, batch, refused, bytes } = parseJsonRpcBody(await readBody(req, config.maxBodyBytes), { maxDepth: config.maxJsonDepth });
    // message-schema: requests the upstream would drop unanswered are answered here, without a session.
    if (messages.length === 0) return new Exchange(res, acceptsSse, batch, cors, transform(caller)).answerAllLocally(refused);
    const initialize = messages.find((m) => isRequest(m) && m.method === 'initialize') as JsonRpcRequest | undefined;

    let session: Session;
    const denied = new Map<JsonRpcMessage, string>();
    if (initialize) {
      if (batch) throw new GatewayError('invalid_message', 'Invalid Request: initialize must not be part of a batch');
      // The policy decides before any upstream work: a denied caller spawns no child, gets no
      // token exchange and evicts none of its sessions.
      const denial = decide(caller, initialize, null);
      if (denial?.stepUpScopes?.length) throw new GatewayError('insufficient_scope', denial.reason, { scope: denial.stepUpScopes });
      if (denial) {
        const exchange = new Exchange(res, acceptsSse, false, cors, transform(caller));
        exchange.answerLocally(errorResponse(initialize.id, FORBIDDEN_CODE, `Forbidden: ${denial.reason}`));
        return;
      }
      session = await openSession(caller, initialize);
    } else {
      session = sessionFor(req, caller);
      // MCP transports §Protocol Version Header: after initialization the header names the negotiated version.
      if (headerVersion !== undefined && session.protocolVersion !== undefined && headerVersion !== session.protocolVersion) {
        throw new GatewayError('unsupported_protocol_version', `Bad Request: MCP-Protocol-Version ${headerVersion} differs from this session's negotiated version ${session.protocolVersion}`);
      }
    }
    session.touch();
    if (!initialize) callers.set(session, caller);
    const version = headerVersion ?? session.protocolVersion ?? DEFAULT_PROTOCOL_VERSION;
    if (batch && !allowsBatches(version)) throw new GatewayError('batch_not_allowed', `Invalid Request: JSON-RPC batches are not accepted for protocol version ${version}`);

    // Decide every message before anything is forwarded, so one step-up answer covers the POST.
    for (const m of messages) {
      if (m === initialize || (!isRequest(m) && !isNotification(m))) continue;
      const denial = decide(caller, m, session.id);
      if (!denial) continue;
      if (denial.stepUpScopes?.length) throw new GatewayError('insufficient_scope', denial.reason, { scope: denial.stepUpScopes });
      denied.set(m, denial.reason);
    }

    const forward: JsonRpcMessage[] = [];
    const requests: JsonRpcRequest[] = [];
    // MCP basic §Requests: an id MUST NOT be reused within a session. A request whose id is still
    // pending, or repeated in this batch, is refused: its answer could otherwise reach the other
    // request's stream (and skip that one's list filter).
    const ids = new Set<string>();
    const reused: JsonRpcRequest[] = [];
    // pending-requests: past the session's caps a request is refused (bytes: its share of the body).
    const admission = session.admission(Math.ceil(bytes / messages.length));
    const overCap: JsonRpcResponse[] = [];
    for (const m of messages) {
      if (denied.has(m)) continue;
      if (isRequest(m)) {
        const key = idKey(m.id);
        if (ids.has(key) || session.isPending(m.id)) {
          reused.push(m);
          continue;
        }
        const over = admission.refuse(m.id);
        if (over) {
          overCap.push(over);
          continue;
        }
        ids.add(key);
        requests.push(m);
      }
      forward.push(m);
    }
    const deniedRequests = [...denied.keys()].filter(isRequest);
    // pending-requests: a POST refused whole for the session's caps is 429 (RFC 6585 §4) with Retry-After.
    if (overCap.length && requests.length === 0 && deniedRequests.length === 0 && reused.length === 0 && refused.length === 0) throw tooManyPending(res, session, overCap);

    if (requests.length === 0 && deniedRequests.length === 0 && reused.length === 0 && overCap.length === 0 && refused.length === 0) {
      // Only notifications and responses: accepted → 202 with no body (T-9).
      if (forward.length) {
        try {
          await sendUpstream(session, forward, version);
        } catch (err) {
          // T-20: a session whose upstream is gone is unknown from now on; otherwise the upstream failed.
          if (session.ended) throw new GatewayError('session_not_found', 'Session not found');
          throw new GatewayError('upstream_unavailable', 'the upstream MCP server refused the message', { reason: err instanceof Error ? err.message : String(err) });
        }
      }
      res.writeHead(202, cors).end();
      return;
    }

    const headers = initialize ? { ...cors, 'Mcp-Session-Id': session.id } : cors;
    const exchange = new Exchange(res, acceptsSse, batch, headers, transform(caller), session, primesStreams(version));
    for (const r of requests) {
      session.track(r.id, r.method, r.params, exchange, Math.ceil(bytes / messages.length));
      exchange.expect();
    }
    // answerAllLocally: every local answer counted at once, so a batch of only these gets them all.
    exchange.answerAllLocally([
      ...deniedRequests.map((r) => errorResponse(r.id, FORBIDDEN_CODE, `Forbidden: ${denied.get(r)}`)),
      ...reused.map((r) => errorResponse(r.id, -32600, 'Invalid Request: this id is already in use in this session')),
      ...refused,
      ...overCap,
    ]);
    if (forward.length === 0) return;
    try {
      await sendUpstream(session, forward, version);
    } catch (err) {
      // An HTTP upstream asks for downstream credentials per request: their message is client-safe.
      const message = err instanceof UpstreamError || err instanceof DownstreamCredentialError ? err.message : 'upstream error';
      log.warn({ sessionId: session.id, reason: message }, 'upstream refused a message');
      for (const r of requests) {
        session.forget(r.id);
        exchange.deliverResponse(errorResponse(r.id, -32603, message), undefined);
      }
      if (initialize) void session.end('initialize failed upstream');
    }
  }

  async function sendUpstream(session: Session, messages: JsonRpcMessage[], version: string): Promise<void> {
    if (!session.upstream) throw new UpstreamError('no upstream');
    await session.upstream.send(messages, version, callerOf(session));
  }

  async function openSession(caller: Caller, initialize: JsonRpcRequest): Promise<Session> {
    const session = new Session(
      { subject: caller.subject, clientId: caller.clientId, audience: caller.audience, serverPath: server.path },
      idleMs,
      (s, reason) => {
        sessions.delete(s.id);
        log.info({ sessionId: s.id, reason }, 'session ended');
      },
      server.sse,
      requestLimitsOf(server), // pending-requests: deadlines and caps
    );
    session.onCut = (stream, unread) => log.info({ sessionId: session.id, stream, unread }, 'SSE client does not read: connection cut, it may resume with Last-Event-ID');
    // Each stdio session is a process: one caller cannot hold more than maxSessionsPerCaller.
    // A client that never DELETEs recycles its own oldest session instead of growing without bound.
    const own = [...sessions.values()].filter((s) => s.binding.subject === caller.subject && s.binding.clientId === caller.clientId);
    if (own.length >= server.maxSessionsPerCaller) {
      const oldest = own.reduce((a, b) => (b.lastActive < a.lastActive ? b : a));
      log.info({ sessionId: oldest.id, subject: caller.subject }, 'session limit per caller reached: ending the least recently used');
      void oldest.end('replaced by a newer session of the same caller');
    }
    const requested = (initialize.params as { protocolVersion?: unknown } | undefined)?.protocolVersion;
    if (isSupportedProtocolVersion(requested)) session.protocolVersion = requested;
    sessions.set(session.id, session);
    try {
      session.upstream = await upstream.connect({
        sessionId: session.id,
        caller,
        events: {
          message: (m) => {
            // The negotiated version (lifecycle §Version Negotiation) decides batches and defaults.
            if (!('method' in m) && m.id === initialize.id) clearTimeout(initialized.get(session));
            if (!('method' in m) && m.id === initialize.id && m.result && typeof m.result === 'object') {
              const v = (m.result as { protocolVersion?: unknown }).protocolVersion;
              if (isSupportedProtocolVersion(v)) session.protocolVersion = v;
            }
            session.route(m);
            // A refused initialize leaves nothing to continue: end the session (the client gets 404 if it tries).
            if (!('method' in m) && m.id === initialize.id && m.error) void session.end('initialize failed upstream');
          },
          closed: (reason) => void session.end(reason),
        },
      });
    } catch (err) {
      void session.end('upstream failed to start');
      if (err instanceof DownstreamCredentialError) {
        // docs/downstream.md: the message is safe for the client and says what to do.
        log.warn({ code: err.code, reason: err.reason, subject: caller.subject }, 'downstream credentials unavailable');
        throw downstreamError(err);
      }
      throw new GatewayError('upstream_unavailable', 'the upstream MCP server is unavailable', { reason: err instanceof Error ? err.message : String(err) });
    }
    callers.set(session, caller);
    // pending-requests: the notifications/cancelled of a request past its deadline, and its log line.
    session.notifyUpstream = (m) => sendUpstream(session, [m], session.protocolVersion ?? DEFAULT_PROTOCOL_VERSION);
    session.onTimeout = (r) => log.warn({ sessionId: session.id, method: r.method, seconds: Math.round((Date.now() - r.started) / 1000) }, 'request timed out: client answered, upstream sent notifications/cancelled');
    // An upstream that never answers initialize (a wrong command, a server waiting for input)
    // must not hold the client forever: the session ends and the client gets an error.
    const initTimer = setTimeout(() => void session.end('the upstream did not answer initialize'), server.initializeTimeoutSeconds * 1000);
    initTimer.unref();
    session.cleanups.push(() => clearTimeout(initTimer));
    initialized.set(session, initTimer);
    // A stdio child keeps the environment it started with: end the session when its credentials expire.
    if ('stdio' in server.upstream) session.cleanups.push(endAtCredentialExpiry(options.downstream, caller, server, (reason) => void session.end(reason)));
    log.info({ sessionId: session.id, subject: caller.subject, clientId: caller.clientId }, 'session opened');
    return session;
  }

  async function handleGet(req: IncomingMessage, res: ServerResponse, caller: Caller, headerVersion: ProtocolVersion | undefined, cors: Record<string, string>): Promise<void> {
    if (!accepts(req.headers.accept, 'text/event-stream') || req.headers.accept === undefined) {
      throw new GatewayError('not_acceptable', 'Not Acceptable: Accept must list text/event-stream');
    }
    const session = sessionFor(req, caller);
    if (headerVersion !== undefined && session.protocolVersion !== undefined && headerVersion !== session.protocolVersion) {
      throw new GatewayError('unsupported_protocol_version', `Bad Request: MCP-Protocol-Version ${headerVersion} differs from this session's negotiated version ${session.protocolVersion}`);
    }
    session.touch();
    const version = headerVersion ?? session.protocolVersion;
    // MCP 2025-11-25 transports §Resumability and Redelivery: resumption is always a GET with
    // Last-Event-ID, and continues the stream that ID belongs to (a POST's or this GET stream).
    const position = parseLastEventId(req.headers['last-event-id']);
    if (position) {
      const stream = session.resumption(position);
      if (!stream) {
        res.writeHead(204, cors).end();
        return;
      }
      startSseResponse(res, cors);
      stream.attach(res, position.seq, false);
    } else {
      startSseResponse(res, cors);
      session.attachServerStream(res, version);
    }
    session.upstream?.openServerStream(version);
  }

  async function handleDelete(req: IncomingMessage, res: ServerResponse, caller: Caller, cors: Record<string, string>): Promise<void> {
    const session = sessionFor(req, caller);
    // The upstream side ends before we answer, so a DELETE is complete when the client sees 204.
    await session.end('deleted by client');
    res.writeHead(204, cors).end();
  }

  return {
    server,
    resource,
    resourceMetadataUrl,
    get sessionCount() {
      return sessions.size;
    },
    async handle(req, res, query) {
      let cors: Record<string, string> = {};
      try {
        let origin: string | undefined;
        try {
          origin = options.checkOrigin(req.headers.origin);
        } catch (err) {
          record(undefined, 'http', null, 'deny', null, 'origin not allowed', 0, null);
          throw err;
        }
        cors = corsHeaders(origin);
        if (req.method === 'OPTIONS') {
          res.writeHead(204, { ...cors, 'Access-Control-Allow-Methods': ALLOW, 'Access-Control-Allow-Headers': CORS_REQUEST_HEADERS, 'Access-Control-Max-Age': '600' }).end();
          return;
        }
        if (req.method !== 'POST' && req.method !== 'GET' && req.method !== 'DELETE') {
          throw new GatewayError('method_not_allowed', 'Method Not Allowed', { allow: ALLOW });
        }
        const caller = await authenticate(req, query);
        const headerVersion = parseProtocolVersionHeader(req.headers['mcp-protocol-version']);
        if (req.method === 'POST') await handlePost(req, res, caller, headerVersion, cors);
        else if (req.method === 'GET') await handleGet(req, res, caller, headerVersion, cors);
        else await handleDelete(req, res, caller, cors);
      } catch (err) {
        fail(res, err, cors);
      }
    },
    async close() {
      clearInterval(keepAlive);
      clearInterval(streamSweep);
      await Promise.all([...sessions.values()].map((s) => s.end('gateway shutting down')));
      await upstream.close();
    },
  };
}

/**
 * A downstream-credential failure as an HTTP error. RFC 9110 §15.5.2: a 401 must carry a
 * WWW-Authenticate challenge, and the caller's token for this gateway is fine: a refused
 * exchange (invalid_grant) is 403 with the client-safe message, never a bare 401.
 */
function downstreamError(err: DownstreamCredentialError): GatewayError {
  const status = err.status === 401 ? 403 : err.status;
  return new GatewayError('downstream_credentials', err.message, { status, reason: err.reason });
}
