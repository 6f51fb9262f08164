/**
 * Step 9, downstream: an allowed `initialize` opens a session and its upstream connection, with
 * the caller's downstream credentials (docs/downstream.md: an RFC 8693 token exchange, a stored
 * user credential, or the gateway's identity assertion; never the client's own token). A stdio
 * upstream is a child process per session, so the session bounds apply first (session-registry.ts).
 * The policy has decided before this step: a denied caller spawns no child, gets no token
 * exchange and evicts none of its sessions.
 */
import type { Caller } from '../../kernel/caller.ts';
import { DownstreamCredentialError } from '../../downstream/errors.ts';
import { endAtCredentialExpiry } from '../../downstream/session-expiry.ts';
import { GatewayError, shuttingDown } from '../errors.ts';
import { UpstreamError } from '../upstreams/types.ts';
import type { JsonRpcRequest } from '../jsonrpc.ts';
import { DEFAULT_PROTOCOL_VERSION, isSupportedProtocolVersion } from '../protocol-version.ts';
import { requestLimitsOf } from '../pending-requests.ts';
import { Session } from '../session.ts';
import type { EndpointContext } from './context.ts';
import { reportUpstreamFailure } from './upstream-failure.ts';

/**
 * Opens the session `initialize` asks for.
 * @throws GatewayError too_many_sessions (429), downstream_credentials (403/502), upstream_unavailable (502)
 */
export async function openSession(ctx: EndpointContext, caller: Caller, initialize: JsonRpcRequest): Promise<Session> {
  const { server, log } = ctx;
  let session: Session;
  try {
    session = openBounded(ctx, caller);
  } catch (err) {
    // The policy allowed initialize; the refusal past the session bound is a decision too.
    if (err instanceof GatewayError) ctx.record({ caller, method: 'initialize', decision: 'deny', reason: err.reason });
    throw err;
  }
  session.onCut = (stream, unread) => log.info({ sessionId: session.id, stream, unread }, 'SSE client does not read: connection cut, it may resume with Last-Event-ID');
  const requested = (initialize.params as { protocolVersion?: unknown } | undefined)?.protocolVersion;
  if (isSupportedProtocolVersion(requested)) session.protocolVersion = requested;
  // An upstream that never answers initialize (a wrong command, a server waiting for input)
  // must not hold the client forever: the session ends and the client gets an error.
  let initTimer: NodeJS.Timeout | undefined;
  try {
    session.upstream = await ctx.upstream.connect({
      sessionId: session.id,
      caller,
      events: {
        message: (m) => {
          const answersInitialize = !('method' in m) && m.id === initialize.id;
          if (answersInitialize) clearTimeout(initTimer);
          // The negotiated version (lifecycle §Version Negotiation) governs the session from now on.
          if (answersInitialize && m.result && typeof m.result === 'object') {
            const v = (m.result as { protocolVersion?: unknown }).protocolVersion;
            if (isSupportedProtocolVersion(v)) session.protocolVersion = v;
          }
          session.route(m);
          // A refused initialize leaves nothing to continue: end the session (the client gets 404 if it tries).
          if (answersInitialize && m.error) void session.end('initialize failed upstream');
        },
        closed: (reason) => void session.end(reason),
      },
    });
  } catch (err) {
    void session.end('upstream failed to start');
    const message = reportUpstreamFailure(log, session.id, err, 'upstream failed to start');
    // RFC 9110 §15.5.2: a 401 must carry a challenge, and the caller's token for this gateway is
    // fine: a refused exchange (invalid_grant) is 403 with the client-safe message.
    if (err instanceof DownstreamCredentialError) throw new GatewayError('downstream_credentials', message, { status: err.status === 401 ? 403 : err.status, reason: err.reason });
    // A capacity refusal (a pool limit: upstreams/stdio-pool.ts) is the gateway's own, written for
    // the client, and temporary: 503 with Retry-After (RFC 9110 §15.6.4), not a generic failure.
    if (err instanceof UpstreamError && err.status === 503) throw new GatewayError('upstream_unavailable', `${err.message}; try again later`, { status: 503, retryAfterSeconds: 30, reason: `session ${session.id}: ${err.message}` });
    throw new GatewayError('upstream_unavailable', message, { reason: `session ${session.id}: ${err instanceof Error ? err.message : String(err)}` });
  }
  // Ended while its upstream started (the gateway closed, say): what started is let go of, or a
  // child spawned after the close would outlive it.
  if (session.ended) {
    void session.upstream.close();
    const reason = `session ${session.id} ended while its upstream started`;
    throw ctx.stopping ? shuttingDown(reason) : new GatewayError('upstream_unavailable', `the upstream MCP server failed (session ${session.id})`, { reason });
  }
  ctx.callers.set(session, caller);
  // MCP lifecycle §Timeouts: a request past its deadline gets notifications/cancelled upstream.
  session.notifyUpstream = async (m) => {
    if (!session.upstream) throw new Error('no upstream');
    await session.upstream.send([m], session.protocolVersion ?? DEFAULT_PROTOCOL_VERSION, ctx.callers.get(session)!);
  };
  session.onTimeout = (r) => log.warn({ sessionId: session.id, method: r.method, seconds: Math.round((Date.now() - r.started) / 1000) }, 'request timed out: client answered, upstream sent notifications/cancelled');
  initTimer = setTimeout(() => void session.end('the upstream did not answer initialize'), server.initializeTimeoutSeconds * 1000);
  initTimer.unref();
  const timer = initTimer;
  session.cleanups.push(() => clearTimeout(timer));
  // A stdio child keeps the environment it started with: end the session when its credentials expire.
  if ('stdio' in server.upstream) session.cleanups.push(endAtCredentialExpiry(ctx.downstream, caller, server, (reason) => void session.end(reason)));
  log.info({ sessionId: session.id, subject: caller.subject, clientId: caller.clientId }, 'session opened');
  return session;
}

/** A new Session of `caller`, admitted by the registry's bounds; it leaves the registry when it ends. */
function openBounded(ctx: EndpointContext, caller: Caller): Session {
  const { server, log } = ctx;
  return ctx.sessions.open(caller, () =>
    new Session(
      { subject: caller.subject, clientId: caller.clientId, audience: caller.audience, serverPath: server.path },
      server.idleTimeoutSeconds * 1000,
      (s, reason) => {
        ctx.sessions.delete(s.id);
        log.info({ sessionId: s.id, reason }, 'session ended');
      },
      server.sse,
      requestLimitsOf(server),
    ),
  );
}
