/**
 * The Streamable HTTP endpoint of one protected MCP server (MCP 2025-11-25 basic/transports), as
 * a list of steps in the order the checks must run: nothing about a message is read before the
 * caller is authenticated, and nothing is forwarded before the policy has decided. Each step is
 * one file under steps/ and cites its clause.
 *
 *   POST   edge → authenticate → scope → version → negotiate → read → session → policy → downstream → forward
 *          (initialize: policy, then downstream opens the session; other messages: session, then policy)
 *   GET    edge → authenticate → scope → version → negotiate → session → listen
 *   DELETE edge → authenticate → scope → version → session → end
 *
 * Before any of them, for every route the warden serves, the Host allow-list (src/http/host.ts).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createDecisionRecorder } from '../audit/decision.ts';
import type { AuditSink } from '../audit/types.ts';
import type { Config, ServerConfig } from '../config/schema.ts';
import type { DownstreamCredentials } from '../downstream/types.ts';
import { createClientAddressResolver } from '../http/client-address.ts';
import type { Caller } from '../kernel/caller.ts';
import { canonicalResourceUri, protectedResourceMetadataUrl } from '../kernel/resource-uri.ts';
import type { Logger } from '../log.ts';
import type { ServerPolicy } from '../policy/types.ts';
import { GatewayError, sendGatewayError, shuttingDown } from './errors.ts';
import type { JsonRpcRequest } from './jsonrpc.ts';
import type { ProtocolVersion } from './protocol-version.ts';
import { SessionRegistry } from './session-registry.ts';
import type { Session } from './session.ts';
import { authenticate } from './steps/authenticate.ts';
import type { EndpointContext, SessionSharingFactory } from './steps/context.ts';
import { openSession } from './steps/downstream.ts';
import { checkEdge, NO_CORS, type Cors } from './steps/edge.ts';
import { findSession } from './steps/find-session.ts';
import { forward } from './steps/forward.ts';
import { listen } from './steps/listen.ts';
import { negotiateGet, negotiatePost } from './steps/negotiate.ts';
import { answerDeniedInitialize, decideMessages, filterLists, FORBIDDEN_CODE } from './steps/policy.ts';
import { Exchange } from './exchange.ts';
import { readMessages, type ClientMessages } from './steps/read-messages.ts';
import { checkRequiredScopes } from './steps/scope.ts';
import { checkBatchAllowed, governingVersion, readProtocolVersion } from './steps/version.ts';
import type { TokenVerifier } from './token-verifier.ts';
import type { Upstream } from './upstreams/types.ts';

/** Interval of SSE keep-alive comments on open GET streams. */
const KEEPALIVE_MS = 25_000;

export { FORBIDDEN_CODE };

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
  /** Sessions shared across instances (`cluster.redis`, src/cluster/session-routing.ts). */
  sessionSharing?: SessionSharingFactory | undefined;
}

export interface ServerEndpoint {
  readonly server: ServerConfig;
  readonly resource: string;
  readonly resourceMetadataUrl: string;
  handle(req: IncomingMessage, res: ServerResponse, query: string): Promise<void>;
  /** Sessions alive now. */
  readonly sessionCount: number;
  /** Requests of this endpoint not answered yet: those its sessions sent upstream, and every request other than GET still in `handle` (its body arriving, its session opening or adopted, or sent to the instance holding it). */
  readonly pendingRequests: number;
  /**
   * The instance is stopping (src/http/drain.ts): `initialize` is refused (503, `shutting_down`)
   * while the sessions it has are served, and every answer written from now on closes its
   * connection (exchange.ts).
   */
  stop(): void;
  close(): Promise<void>;
}

export function createServerEndpoint(options: ServerEndpointOptions): ServerEndpoint {
  const { config, server } = options;
  const log = options.logger.child({ server: server.name });
  const record = createDecisionRecorder({ sink: options.audit, server: server.name, includeArguments: config.audit.includeArguments, logger: log });
  const sessions = new SessionRegistry<Session>({
    serverPath: server.path,
    maxSessionsPerCaller: server.maxSessionsPerCaller,
    maxSessionsPerUser: server.maxSessionsPerUser,
    maxSessionsPerClient: server.maxSessionsPerClient,
    onForeign: (caller) => {
      record({ caller, method: 'http', decision: 'deny', reason: 'session bound to another caller' });
      log.warn({ subject: caller.subject, clientId: caller.clientId }, 'session ID presented by another caller');
    },
    onEvict: (s) => log.info({ sessionId: s.id, subject: s.binding.subject }, 'session limit per caller reached: ending the least recently used'),
  });
  const sharing = options.sessionSharing?.({ kind: 'stdio' in server.upstream ? 'stdio' : 'http', idleMs: server.idleTimeoutSeconds * 1000, log });
  const ctx: EndpointContext = {
    config,
    server,
    resourceMetadataUrl: protectedResourceMetadataUrl(config, server),
    verifier: options.verifier,
    upstream: sharing ? sharing.wrap(options.upstream, () => ctx) : options.upstream,
    policy: options.policy,
    downstream: options.downstream,
    log,
    record,
    clientAddress: createClientAddressResolver(config.trustProxy),
    checkOrigin: options.checkOrigin,
    sessions,
    callers: new WeakMap<Session, Caller>(),
    sharing,
    stopping: false,
  };
  const timers = startSessionTimers(sessions, server.sse.streamAfterMs);
  /**
   * Requests other than GET inside `handle` whose JSON-RPC requests are not yet their session's
   * pending ones: from arrival, through whatever they wait for (a body still arriving, an upstream
   * starting for `initialize`, an adoption or a hop to another instance), until they are answered
   * or their requests are pending in the session, which counts them from then on. A drain waits
   * for both (src/http/drain.ts), so no request is cut between them; a GET is a stream, which the
   * close ends.
   */
  let handling = 0;
  /** close() has begun: the endpoint's sessions are ending or gone. */
  let closed = false;

  /**
   * POST once its body is read. Not an async function: what it refuses is thrown, and what it
   * forwards is forward's own promise, which `handle` awaits. Returned from an async function, that
   * promise would cost one more (a thenable's resolution job and the promise its `then` makes).
   */
  function post(req: IncomingMessage, res: ServerResponse, cors: Cors, caller: Caller, header: ProtocolVersion | undefined, acceptsSse: boolean, body: ClientMessages): Promise<void> | void {
    // Every message failed the envelope schema: answered here, without a session.
    if (body.messages.length === 0) return new Exchange(res, acceptsSse, body.batch, cors, filterLists(ctx, caller)).answerAllLocally(body.refused);
    if (body.initialize) return postInitialize(res, cors, caller, header, acceptsSse, body, body.initialize);
    const session = findSession(ctx, req, caller);
    session.touch();
    ctx.callers.set(session, caller);
    const version = governingVersion(session.protocolVersion, header);
    checkBatchAllowed(version, body.batch);
    const denied = decideMessages(ctx, caller, body.messages, session.id);
    return forward(ctx, { res, cors, caller, acceptsSse, session, version, body, denied });
  }

  async function postInitialize(res: ServerResponse, cors: Cors, caller: Caller, header: ProtocolVersion | undefined, acceptsSse: boolean, body: ClientMessages, initialize: JsonRpcRequest): Promise<void> {
    // A stopping instance opens no session (nor spawns a child it would kill seconds later).
    if (ctx.stopping) throw shuttingDown();
    // The policy decides before any upstream work: a denied caller spawns no child, gets no
    // token exchange and evicts none of its sessions.
    const denied = decideMessages(ctx, caller, [initialize], null);
    if (denied.size) return answerDeniedInitialize(ctx, { res, cors, caller, acceptsSse, initialize, reason: denied.get(initialize)! });
    const session = await openSession(ctx, caller, initialize);
    await sharing?.opened(session);
    await forward(ctx, { res, cors, caller, acceptsSse, session, version: governingVersion(session.protocolVersion, header), body, denied });
  }

  function get(req: IncomingMessage, res: ServerResponse, cors: Cors, caller: Caller, header: ProtocolVersion | undefined): void {
    negotiateGet(req);
    const session = findSession(ctx, req, caller);
    session.touch();
    listen(req, res, session, session.protocolVersion ?? header, cors);
  }

  async function del(req: IncomingMessage, res: ServerResponse, cors: Cors, caller: Caller): Promise<void> {
    const session = findSession(ctx, req, caller);
    // The upstream side ends before we answer, so a DELETE is complete when the client sees 204.
    await session.end('deleted by client');
    res.writeHead(204, cors).end();
  }

  /** A peer's hop (cluster): its sender; one that does not verify is refused before authentication, and audited. */
  function verifyHop(req: IncomingMessage): string | undefined {
    try {
      return sharing?.verifyHop(req);
    } catch (err) {
      record({ method: 'http', decision: 'deny', reason: 'instance hop does not verify', remoteAddress: ctx.clientAddress(req) });
      throw err;
    }
  }

  function fail(res: ServerResponse, err: unknown, cors: Cors): void {
    let e = err instanceof GatewayError ? err : new GatewayError('internal_error', 'internal error', { reason: err instanceof Error ? err.message : String(err) });
    // A session the close has just ended is not unknown: 404 would have the client initialize
    // again, where a retry elsewhere finds it (a cluster's other instances) or a new instance
    // answers for itself.
    if (closed && e.code === 'session_not_found') e = shuttingDown(`session ended by the close: ${e.reason}`);
    // A stopping instance refusing a new session is the plan, not a failure.
    if (e.status >= 500 && e.code !== 'shutting_down') log.error({ code: e.code, reason: e.reason }, 'request failed');
    else log.debug({ code: e.code, reason: e.reason }, 'request refused');
    // Closing after a 413 stops a client still streaming a body we will not read.
    if (e.code === 'payload_too_large') res.setHeader('Connection', 'close');
    sendGatewayError(res, e, { resourceMetadata: ctx.resourceMetadataUrl, challengeScope: server.requiredScopes.length ? server.requiredScopes : server.scopes, headers: cors });
  }

  return {
    server,
    resource: canonicalResourceUri(config, server),
    resourceMetadataUrl: ctx.resourceMetadataUrl,
    get sessionCount() {
      return sessions.size;
    },
    get pendingRequests() {
      let n = handling;
      for (const s of sessions.values()) n += s.pendingCount;
      return n;
    },
    stop() {
      ctx.stopping = true;
    },
    async handle(req, res, query) {
      let cors: Cors = NO_CORS;
      let counted = req.method !== 'GET';
      if (counted) handling++;
      try {
        const edge = checkEdge(ctx, req, res);
        if (!edge) return;
        cors = edge;
        const hopFrom = verifyHop(req);
        const started = performance.now();
        const authenticated = authenticate(ctx, req, query, started);
        const caller = authenticated instanceof Promise ? await authenticated : authenticated;
        checkRequiredScopes(ctx, caller, started);
        const header = readProtocolVersion(req);
        // A session held by another instance: forwarded there, or adopted here (src/cluster/session-routing.ts).
        if (sharing && (await sharing.route(ctx, req, res, caller, header, hopFrom))) return;
        if (req.method === 'POST') {
          const { acceptsSse } = negotiatePost(req);
          const read = readMessages(ctx, req);
          const body = read instanceof Promise ? await read : read;
          const posted = post(req, res, cors, caller, header, acceptsSse, body);
          // Its requests are now pending in their session, or answered: counted there, not twice
          // (an initialize's session is still opening; notifications are owed their 202).
          if (body.hasRequest && !body.initialize) {
            handling--;
            counted = false;
          }
          if (posted) await posted;
        } else if (req.method === 'GET') get(req, res, cors, caller, header);
        else await del(req, res, cors, caller);
      } catch (err) {
        fail(res, err, cors);
      } finally {
        if (counted) handling--;
      }
    },
    async close() {
      closed = true;
      timers.stop();
      await sharing?.closeAll(ctx);
      await sessions.closeAll('gateway shutting down');
      await options.upstream.close();
    },
  };
}

/**
 * One timer each for all sessions of the endpoint, not one per session: SSE keep-alive comments
 * on open GET streams (proxies close idle connections), and the sweep that turns long-waiting
 * JSON answers of 2025-11-25 clients into resumable streams (`sse.streamAfterMs`).
 */
function startSessionTimers(sessions: SessionRegistry<Session>, streamAfterMs: number): { stop(): void } {
  const keepAlive = setInterval(() => {
    for (const s of sessions.values()) s.keepAlive();
  }, KEEPALIVE_MS);
  keepAlive.unref();
  const streamSweep = streamAfterMs > 0 ? setInterval(() => {
    const before = Date.now() - streamAfterMs;
    for (const s of sessions.values()) s.streamWaiting(before);
  }, Math.max(100, Math.min(1000, Math.floor(streamAfterMs / 2)))) : undefined;
  streamSweep?.unref();
  return {
    stop() {
      clearInterval(keepAlive);
      clearInterval(streamSweep);
    },
  };
}
