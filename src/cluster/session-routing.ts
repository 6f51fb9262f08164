/**
 * MCP sessions across instances (docs/deployment.md "Scale-out: MCP sessions"): what one MCP
 * endpoint does with a request whose session it does not hold, and what it tells the session
 * directory (session-directory.ts) about the sessions it does.
 *
 * A request naming a session this instance holds is served here without asking Redis (the only
 * exception: a GET on a copy adopted from another instance, below). Otherwise, in this order:
 *  1. The directory entry (one GET). None: 404, as for one instance. Bound to another caller: 404
 *     and audited, before anything else is looked at (MCP security best practices §Session
 *     Hijacking: a session ID is never authentication).
 *  2. `Last-Event-ID` naming another instance (event-id.ts): the replay buffer is there, so the
 *     GET goes there; if that instance is gone, so are its events: 410.
 *  3. A stdio session: its child lives on the instance that opened it; the request goes there over
 *     the instance hop (instance-hop.ts), and the answer (SSE too) comes back untouched. Owner gone
 *     (no heartbeat, no verifiable URL, or no TCP connection): the entry is deleted and the client gets 404, so it
 *     initializes again (transports §Session Management); no other session is touched.
 *  4. An HTTP upstream's session: adopted, i.e. served here with a connection of this instance to
 *     the same upstream session (no hop, so it outlives the instance that opened it). Its GET
 *     stream (server-initiated messages) is the exception: it goes to the instance that opened the
 *     session while that one lives, so the upstream sees one listener, not one per instance.
 *
 * Ends: a session ended for good (DELETE, idle everywhere, evicted, its upstream gone) is removed
 * from the directory and announced, and every instance drops its copy. An instance shutting down
 * ends its stdio sessions (their children die with it) but only detaches its HTTP ones.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Caller } from '../kernel/caller.ts';
import { GatewayError, shuttingDown } from '../gateway/errors.ts';
import { parseLastEventId, type EventPosition } from '../gateway/event-id.ts';
import { requestLimitsOf } from '../gateway/pending-requests.ts';
import { DEFAULT_PROTOCOL_VERSION, isSupportedProtocolVersion, type ProtocolVersion } from '../gateway/protocol-version.ts';
import { isBoundTo } from '../gateway/session-registry.ts';
import { Session } from '../gateway/session.ts';
import type { EndpointContext, SessionSharing, SessionSharingEndpoint } from '../gateway/steps/context.ts';
import { clientGone, forwardToInstance, HOP_HEADER, signHop, verifyHop } from './instance-hop.ts';
import { DirectoryUnavailable, isSessionId, type DirectoryEntry, type SessionDirectory } from './session-directory.ts';

export interface EndpointSessionSharingOptions extends SessionSharingEndpoint {
  directory: SessionDirectory;
  /** `cluster.secret` (required with `cluster.redis`): the key of the hop's proof. */
  secret: string;
}

interface Shared {
  /** The entry's owner, for adopted copies (a refresh keeps it). */
  instance?: string;
  url?: string;
  upstreamSessionId?: string | undefined;
  refreshedAt: number;
}

/** @see MCP 2025-11-25 basic/transports §Session Management */
export function createEndpointSessionSharing({ directory, secret, kind, idleMs, log }: EndpointSessionSharingOptions): SessionSharing {
  const self = directory.instanceId;
  // Longer than the idle timeout: an entry outlives every copy that could still serve it.
  const ttlMs = idleMs + Math.max(60_000, Math.floor(idleMs / 4));
  const shared = new WeakMap<Session, Shared>();
  /** Removals in flight, awaited at shutdown (the Redis connection closes after the gateway). */
  const removals = new Set<Promise<void>>();
  /** Adoptions in flight by session ID: concurrent requests for one session adopt it once. */
  const adopting = new Map<string, Promise<Session>>();
  /** closeAll has run: no adoption starts, and one that ends after it is detached at once. */
  let closed = false;
  let sessionsOf: (() => EndpointContext) | undefined;

  directory.onEnded((id) => {
    const session = sessionsOf?.().sessions.get(id);
    if (session && !session.ended) void session.detach('ended on another instance');
  });
  directory.onRecovered(() => {
    const ctx = sessionsOf?.();
    if (!ctx) return;
    // An outage may have lost writes (or the entries expired): write back what this instance holds.
    for (const s of ctx.sessions.values()) if (!s.ended) void register(s);
  });

  function register(session: Session): Promise<void> {
    const own = shared.get(session) ?? { refreshedAt: 0 };
    own.refreshedAt = Date.now();
    shared.set(session, own);
    return directory.register(session.id, {
      ...(own.instance ? { instance: own.instance, url: own.url! } : {}),
      binding: session.binding,
      kind,
      upstreamSessionId: own.upstreamSessionId,
      protocolVersion: session.protocolVersion,
      touchedBy: self,
    }, ttlMs);
  }

  function remove(id: string): void {
    const p = directory.remove(id);
    removals.add(p);
    void p.finally(() => removals.delete(p));
  }

  /** Every session of this endpoint: removal from the directory when it ends for good. */
  function watch(session: Session): void {
    session.cleanups.push(() => {
      if (!session.detached) remove(session.id);
    });
    if (kind === 'http') {
      // Idle here is not idle everywhere: another instance may be serving the same upstream session.
      session.idleElsewhere = async () => {
        const entry = await directory.lookup(session.id);
        return entry !== undefined && entry.touchedBy !== self && entry.touchedAt > session.lastActive;
      };
    }
  }

  function hopFor(req: IncomingMessage, id: string): string {
    return signHop(secret, self, { method: req.method ?? 'GET', target: req.url ?? '/', sessionId: id, authorization: req.headers.authorization });
  }

  /**
   * Sends the request to `instance` if it lives: true when the request is dealt with (answered
   * there, or its client went away: nothing more to do, and nothing learnt about the owner),
   * false when the owner is unknown or unreachable (no heartbeat, no TCP connection).
   * @throws GatewayError 502 when the owner was reached but gave no answer (it lives: not "gone")
   */
  async function toInstance(ctx: EndpointContext, req: IncomingMessage, res: ServerResponse, id: string, instance: string): Promise<boolean> {
    const url = await lookup(() => directory.instanceUrlOf(instance));
    if (clientGone(res)) return true;
    if (!url) return false;
    // While the answer comes, the request is in the endpoint's `handle`: a drain waits for it.
    const outcome = await forwardToInstance(req, res, url, hopFor(req, id), () => ctx.stopping);
    if (outcome === 'failed') throw new GatewayError('upstream_unavailable', `the instance holding session ${id} did not answer`, { reason: `hop to ${instance}: connected, no answer` });
    return outcome !== 'unreachable';
  }

  async function lookup<T>(ask: () => Promise<T>): Promise<T> {
    try {
      return await ask();
    } catch (err) {
      if (!(err instanceof DirectoryUnavailable)) throw err;
      throw new GatewayError('session_directory_unavailable', 'Service Unavailable: this session is held by another instance, which cannot be located now; retry shortly', { retryAfterSeconds: 2, reason: `session directory: ${err.message}` });
    }
  }

  const gone = (position: EventPosition) => new GatewayError('invalid_message', 'Gone: the events after this Last-Event-ID are no longer held for replay', { status: 410, reason: `instance ${position.instance} holding the replay is gone` });

  async function adopt(ctx: EndpointContext, caller: Caller, id: string, entry: DirectoryEntry, header: ProtocolVersion | undefined): Promise<Session> {
    const { server } = ctx;
    const session = new Session(entry.binding, idleMs, (s, reason) => {
      ctx.sessions.delete(s.id);
      log.info({ sessionId: s.id, reason }, 'adopted session ended here');
    }, server.sse, requestLimitsOf(server), { id, instance: self, adopted: true });
    // The client sends the negotiated version on every request after initialize (transports §Protocol Version Header).
    const version = header ?? entry.protocolVersion;
    if (isSupportedProtocolVersion(version)) session.protocolVersion = version;
    shared.set(session, { instance: entry.instance, url: entry.url, upstreamSessionId: entry.upstreamSessionId, refreshedAt: Date.now() });
    try {
      session.upstream = await ctx.upstream.connect({
        sessionId: id,
        caller,
        upstreamSessionId: entry.upstreamSessionId,
        events: { message: (m) => session.route(m), closed: (reason) => void session.end(reason) },
      });
    } catch (err) {
      void session.detach('adoption failed');
      // Its credentials or connection failed because the instance closed meanwhile: that is the answer.
      if (closed) throw shuttingDown(`session ${id} adopted as the endpoint closed`);
      log.warn({ sessionId: id, reason: err instanceof Error ? err.message : String(err) }, 'adopting a session failed');
      throw new GatewayError('upstream_unavailable', `the upstream MCP server failed (session ${id})`, { reason: `adopting session ${id}: ${err instanceof Error ? err.message : String(err)}` });
    }
    // The endpoint closed while the upstream connected (its downstream credentials can take a
    // token exchange): closeAll has detached every copy it saw, and would never see this one.
    if (closed) {
      void session.detach('instance shutting down');
      throw shuttingDown(`session ${id} adopted after the endpoint closed`);
    }
    ctx.callers.set(session, caller);
    session.notifyUpstream = async (m) => {
      await session.upstream!.send([m], session.protocolVersion ?? DEFAULT_PROTOCOL_VERSION, ctx.callers.get(session)!);
    };
    watch(session);
    ctx.sessions.adopt(session);
    log.info({ sessionId: id, owner: entry.instance }, 'session adopted from another instance');
    return session;
  }

  return {
    instanceId: self,
    verifyHop(req) {
      const value = req.headers[HOP_HEADER];
      if (value === undefined) return undefined;
      const id = req.headers['mcp-session-id'];
      try {
        return verifyHop(secret, value, { method: req.method ?? 'GET', target: req.url ?? '/', sessionId: typeof id === 'string' ? id : '', authorization: req.headers.authorization });
      } catch (err) {
        throw new GatewayError('forbidden_hop', 'Forbidden: not a valid instance hop', { reason: err instanceof Error ? err.message : String(err) });
      }
    },

    async route(ctx, req, res, caller, header, hopFrom) {
      const id = req.headers['mcp-session-id'];
      if (typeof id !== 'string' || !isSessionId(id)) return false;
      const local = ctx.sessions.get(id);
      // The hot path: a POST or DELETE for a session held here asks nobody.
      if (local && req.method !== 'GET') return false;
      let position: EventPosition | undefined;
      try {
        position = req.method === 'GET' ? parseLastEventId(req.headers['last-event-id']) : undefined;
      } catch {
        return false; // the local pipeline answers 400 (after checking the session)
      }
      // The binding before anything else (MCP security best practices §Session Hijacking).
      let entry: DirectoryEntry | undefined;
      if (local) {
        if (!isBoundTo(local.binding, caller, ctx.server.path)) return false; // the local pipeline audits and answers 404
      } else {
        entry = await lookup(() => directory.lookup(id));
        if (clientGone(res)) return true;
        if (!entry) return false;
        if (!isBoundTo(entry.binding, caller, ctx.server.path)) {
          ctx.sessions.foreign(caller, id);
          throw new GatewayError('session_not_found', 'Session not found', { reason: 'session bound to another caller' });
        }
      }
      // Last-Event-ID issued by another instance: the replay buffer is there.
      if (position?.instance !== undefined && position.instance !== self) {
        if (hopFrom === undefined && (await toInstance(ctx, req, res, id, position.instance))) return true;
        if (position.stream !== 0) throw gone(position);
        // The GET stream's replay went with its instance. Resumption is best effort (transports
        // §Resumability: the server MAY replay): the client listens afresh rather than failing.
        delete req.headers['last-event-id'];
        position = undefined;
      }
      if (local) {
        // An adopted copy's GET stream belongs to the instance that opened the session, while it lives.
        if (!position && local.adopted && hopFrom === undefined) {
          const owner = shared.get(local)?.instance;
          if (owner && owner !== self && (await toInstance(ctx, req, res, id, owner))) return true;
        }
        return false;
      }
      const held = entry!;
      if (held.kind === 'stdio') {
        // The owner itself, or a hop to it, without the session: it ended here.
        if (held.instance === self || hopFrom !== undefined) {
          if (held.instance === self) remove(id);
          return false;
        }
        if (await toInstance(ctx, req, res, id, held.instance)) return true;
        // No heartbeat, no verifiable URL, or no connection: the child is gone with its instance.
        // (A client that went away is not this: toInstance answered true, and nothing is removed.)
        log.info({ sessionId: id, owner: held.instance }, 'the instance holding this stdio session is gone: session ended');
        remove(id);
        throw new GatewayError('session_not_found', 'Session not found', { reason: `owner ${held.instance} gone` });
      }
      // HTTP upstream not answered initialize yet: nothing to adopt.
      if (!held.upstreamSessionId) return false;
      if (req.method === 'GET' && !position && hopFrom === undefined && held.instance !== self && (await toInstance(ctx, req, res, id, held.instance))) return true;
      // Adopted meanwhile by a request whose lookup answered first: one copy, the local pipeline's.
      if (ctx.sessions.get(id)) return false;
      // The endpoint has closed its sessions (the instance is stopping): no copy is made now.
      if (closed) throw shuttingDown(`session ${id} not adopted: the endpoint has closed`);
      let pending = adopting.get(id);
      if (!pending) {
        pending = adopt(ctx, caller, id, held, header);
        adopting.set(id, pending);
        void pending.finally(() => adopting.delete(id)).catch(() => {});
      }
      await pending;
      // The client left while the session was adopted: nothing to serve (no stream to open for no one).
      return clientGone(res);
    },

    wrap(upstream, ctx) {
      sessionsOf = ctx;
      if (kind !== 'http') return upstream;
      return {
        connect: (c) => upstream.connect({
          ...c,
          upstreamSessionStarted: async (upstreamSessionId) => {
            const session = ctx().sessions.get(c.sessionId);
            if (!session) return;
            const own = shared.get(session) ?? { refreshedAt: 0 };
            own.upstreamSessionId = upstreamSessionId;
            shared.set(session, own);
            await register(session);
          },
        }),
        close: () => upstream.close(),
      };
    },

    async opened(session) {
      // Before the first event: every event ID of the session names this instance (event-id.ts).
      session.instance = self;
      watch(session);
      await register(session);
    },

    touched(session) {
      const own = shared.get(session);
      if (own && Date.now() - own.refreshedAt < idleMs / 4) return;
      void register(session);
    },

    async closeAll(ctx) {
      closed = true;
      const ending: Promise<void>[] = [];
      for (const s of ctx.sessions.values()) ending.push(kind === 'http' ? s.detach('instance shutting down; other instances go on serving it') : s.end('gateway shutting down'));
      await Promise.all(ending);
      await Promise.all([...removals]);
    },
  };
}
