/**
 * The sessions of one MCP endpoint (MCP 2025-11-25 transports §Session Management): opened on
 * `initialize`, found by `Mcp-Session-Id` only for the caller they are bound to, and bounded.
 *
 * Bounds, in the order `open` applies them:
 *  1. Per caller (subject + client_id), `maxSessionsPerCaller`: a client that never sends DELETE
 *     recycles its own least recently used session instead of piling up stdio children; its client
 *     gets 404 for that session and re-initializes (transports §Session Management, item 4).
 *  2. Per user (subject, across every client), `maxSessionsPerUser`: past it a new session is
 *     refused with 429, never made room for by ending a session another client of the same user
 *     holds. A user who registers one DCR client after another gets a new `client_id` each time,
 *     so only this bound stops one person from holding an unbounded number of children.
 *  3. Per client (client_id, across every user), `maxSessionsPerClient`, when configured: past it
 *     a new session is refused with 429 the same way. Off by default: a popular client serves
 *     many users, and one of them must not be able to use up the others' share.
 *
 * Why 429 (RFC 6585 §4) and not 503: the refusal is about this user's own sessions, not the
 * gateway's capacity; other users are served, and the user frees a slot with DELETE or by idling.
 *
 * With `cluster.redis` the bounds count the sessions opened on this instance: copies adopted from
 * another instance (`adopted`, an HTTP upstream's session served here too) are neither counted
 * nor evicted, so the bounds hold per instance, not across the deployment (docs/deployment.md).
 */
import type { Principal } from '../kernel/caller.ts';
import { GatewayError } from './errors.ts';

/** What the registry needs of a session (Session in session.ts; tests use plain objects). */
export interface RegisteredSession {
  readonly id: string;
  readonly binding: { subject: string; clientId: string; audience: string; serverPath: string };
  /** Order of last use (larger is more recent): the least recently used is evicted first. */
  readonly lastUse: number;
  readonly ended: boolean;
  /** A copy of a session opened on another instance (cluster): outside the bounds. */
  readonly adopted?: boolean;
  end(reason: string): Promise<void>;
}

export interface SessionRegistryOptions {
  serverPath: string;
  maxSessionsPerCaller: number;
  maxSessionsPerUser: number;
  /** Absent: no bound per client. */
  maxSessionsPerClient?: number | undefined;
  /** A session ID presented by a caller it is not bound to (for audit and logs). */
  onForeign?: (caller: Principal, sessionId: string) => void;
  /** A session ended to make room for a newer one of the same caller (for logs). */
  onEvict?: (session: RegisteredSession) => void;
}

/**
 * RFC 9068 facts a session is bound to: the same session ID with another caller's token is not
 * that caller's session (MCP security best practices §Session Hijacking: session IDs are never
 * authentication on their own).
 */
export function isBoundTo(binding: RegisteredSession['binding'], caller: Principal, serverPath: string): boolean {
  return binding.subject === caller.subject && binding.clientId === caller.clientId && binding.audience === caller.audience && binding.serverPath === serverPath;
}

export class SessionRegistry<S extends RegisteredSession> {
  readonly #sessions = new Map<string, S>();

  constructor(private readonly options: SessionRegistryOptions) {}

  get size(): number {
    return this.#sessions.size;
  }

  values(): IterableIterator<S> {
    return this.#sessions.values();
  }

  /**
   * Registers a new session of `caller` built by `create`, after applying the bounds (see the
   * file header). `create` is called only once the session is admitted.
   * @throws GatewayError too_many_sessions (429) past `maxSessionsPerUser` or `maxSessionsPerClient`
   */
  open(caller: Principal, create: () => S): S {
    const own: S[] = [];
    let user = 0;
    let client = 0;
    for (const s of this.#sessions.values()) {
      if (s.ended || s.adopted) continue;
      if (s.binding.clientId === caller.clientId) client++;
      if (s.binding.subject !== caller.subject) continue;
      user++;
      if (s.binding.clientId === caller.clientId) own.push(s);
    }
    const evict = own.length >= this.options.maxSessionsPerCaller ? own.reduce((a, b) => (b.lastUse < a.lastUse ? b : a)) : undefined;
    const freed = evict ? 1 : 0;
    if (user - freed >= this.options.maxSessionsPerUser) {
      throw new GatewayError('too_many_sessions', `Too Many Requests: this user already holds ${user} sessions on this server, the most allowed; end one (HTTP DELETE) or let one go idle, then retry`, {
        reason: `maxSessionsPerUser ${this.options.maxSessionsPerUser} reached by ${caller.subject}`,
      });
    }
    const perClient = this.options.maxSessionsPerClient;
    if (perClient !== undefined && client - freed >= perClient) {
      throw new GatewayError('too_many_sessions', `Too Many Requests: this client already holds ${client} sessions on this server, the most allowed; retry once one has ended`, {
        reason: `maxSessionsPerClient ${perClient} reached by ${caller.clientId}`,
      });
    }
    if (evict) {
      this.options.onEvict?.(evict);
      this.#sessions.delete(evict.id);
      void evict.end('replaced by a newer session of the same caller');
    }
    const session = create();
    this.#sessions.set(session.id, session);
    return session;
  }

  /**
   * The session named by `Mcp-Session-Id`, if it is alive and bound to `caller`.
   * @throws GatewayError session_required (400) without the header; session_not_found (404) for an
   *   unknown or ended session, and for one bound to another caller (indistinguishable on purpose)
   * @see MCP 2025-11-25 basic/transports §Session Management
   */
  find(header: string | string[] | undefined, caller: Principal): S {
    if (typeof header !== 'string' || header.length === 0) throw new GatewayError('session_required', 'Bad Request: Mcp-Session-Id header is required');
    const session = this.#sessions.get(header);
    if (!session || session.ended) throw new GatewayError('session_not_found', 'Session not found');
    if (!isBoundTo(session.binding, caller, this.options.serverPath)) {
      this.options.onForeign?.(caller, session.id);
      throw new GatewayError('session_not_found', 'Session not found', { reason: 'session bound to another caller' });
    }
    return session;
  }

  /** The live session with this ID, whoever it is bound to (the cluster's routing checks the binding itself). */
  get(id: string): S | undefined {
    const session = this.#sessions.get(id);
    return session && !session.ended ? session : undefined;
  }

  /** Adds a copy of a session another instance opened (cluster), outside the bounds. */
  adopt(session: S): void {
    this.#sessions.set(session.id, session);
  }

  /** Reports a session ID presented by a caller it is not bound to (audit, logs). */
  foreign(caller: Principal, sessionId: string): void {
    this.options.onForeign?.(caller, sessionId);
  }

  /** Forgets an ended session (its `onEnd`). */
  delete(id: string): void {
    this.#sessions.delete(id);
  }

  /** Ends every session (shutdown) and resolves once their upstreams are closed. */
  async closeAll(reason: string): Promise<void> {
    await Promise.all([...this.#sessions.values()].map((s) => s.end(reason)));
  }
}
