/**
 * stdio upstream shared per user: one child process per (issuer, subject, client) of a server
 * serves all of that caller's MCP sessions, instead of one child per session
 * (`servers[].upstream.stdio.share: per-user`, off by default: a server that keeps state per
 * connection, such as a login or a working directory, must keep one child per session).
 *
 * A stdio server sees one client (MCP 2025-11-25 basic/transports §stdio), so the pool makes the
 * sessions look like one:
 *   1. `initialize` reaches the child once; every later session's `initialize` is answered from the
 *      cached result (lifecycle §Initialization), and `notifications/initialized` is sent once.
 *   2. Request ids are rewritten to ids unique in the child and back on the response (basic
 *      §Requests: ids are unique per session, not across sessions), and so are `progressToken`s
 *      (utilities/progress: tokens are chosen by each client) and the `requestId` of a client's
 *      `notifications/cancelled`.
 *   3. Messages from the child go to one session when they belong to one: a response (by id), a
 *      progress notification (by token), a server-to-client request (to the session whose call is
 *      in flight: stdio carries no other association) and the cancellation of one. Notifications
 *      that belong to no request (`list_changed`, logging) go to every session of the child.
 *   4. A child whose last session ended is reaped after `sharedIdleSeconds`; a child that exits
 *      ends exactly its own sessions, whose clients re-initialize (and get a new child).
 *   5. At most `maxSharedProcesses` children per server; beyond that a new caller is refused.
 *
 * What sharing means for the server, and why it is opt-in: whatever a request changes for "the
 * connection" (`logging/setLevel`, `resources/subscribe`, roots) changes it for all of the
 * caller's sessions, and a later session gets the protocol version the first one negotiated.
 *
 * Why the client is in the key, not only the user: the child's broadcast notifications (logging,
 * resource updates) can carry what another session did, and a user grants each client its own
 * scopes; a client the user allowed only to read must not see what a writing client did.
 * Never across users: every key holds the subject and its issuer.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import type { Caller } from '../../kernel/caller.ts';
import { ChurnMap } from '../../kernel/churn-map.ts';
import { idKey, isNotification, isRequest, rememberRaw, serializeLine, type JsonRpcId, type JsonRpcMessage, type JsonRpcRequest, type JsonRpcResponse } from '../jsonrpc.ts';
import { childEnvironment, type StdioUpstreamOptions } from './stdio.ts';
import { UpstreamError, type Upstream, type UpstreamConnection, type UpstreamConnectContext, type UpstreamEvents } from './types.ts';
import { readStdioLines } from './stdio-lines.ts';

/** Grace period between SIGTERM and SIGKILL. */
const KILL_GRACE_MS = 2000;
/** Defaults of servers[].upstream.stdio.maxSharedProcesses and sharedIdleSeconds. */
const DEFAULT_MAX_PROCESSES = 100;
const DEFAULT_IDLE_SECONDS = 30;

export interface StdioPoolOptions extends StdioUpstreamOptions {
  /** Clock (ms), for credential expiry checks. */
  now?: () => number;
}

/** One MCP session attached to a shared child. */
interface Attached {
  sessionId: string;
  events: UpstreamEvents;
  /** Original request id (idKey) → the id it has in the child, for the client's cancellations. */
  outgoing: ChurnMap<string, number>;
  /** When this session last sent a request: server-to-client requests go to the latest caller. */
  lastRequestAt: number;
}

interface PendingRequest {
  session: Attached;
  id: JsonRpcId;
  /** The rewritten progress token (key in `progress`), removed with the request. */
  token?: string;
  initialize?: boolean;
}

/** What the pool reports about its children (tests and benchmarks count processes). */
export interface StdioPoolStats {
  children: { key: string; pid: number | undefined; sessions: number }[];
}

export interface StdioPool extends Upstream {
  stats(): StdioPoolStats;
}

class SharedChild {
  readonly sessions = new Map<string, Attached>();
  // ChurnMaps: an entry per request, added and removed all the time (kernel/churn-map.ts).
  readonly pending = new ChurnMap<number, PendingRequest>();
  /** Rewritten progress token → the session and the token it chose. */
  readonly progress = new ChurnMap<string, { session: Attached; token: string | number }>();
  /** Child's server-to-client request id (idKey) → the session it was sent to. */
  readonly serverRequests = new ChurnMap<string, Attached>();
  initializeResult: unknown;
  /** Sessions whose `initialize` waits for the first one's answer. */
  initializeWaiters: { session: Attached; id: JsonRpcId }[] | undefined;
  initializedSent = false;
  nextId = 1;
  sequence = 0;
  exited = false;
  closing = false;
  idleTimer: NodeJS.Timeout | undefined;
  readonly exitedPromise: Promise<void>;

  constructor(
    readonly key: string,
    readonly child: ChildProcessWithoutNullStreams,
    /** When the downstream credentials in the child's environment stop working (s since epoch). */
    readonly expiresAt: number | undefined,
    onExit: (self: SharedChild, reason: string) => void,
  ) {
    this.exitedPromise = new Promise<void>((resolve) => {
      child.once('exit', (code, signal) => {
        this.exited = true;
        onExit(this, this.closing ? 'closed' : `upstream process exited (${signal ?? `code ${code}`})`);
        resolve();
      });
      child.once('error', () => {
        this.exited = true;
        onExit(this, 'upstream process failed to start');
        resolve();
      });
    });
    child.stdin.on('error', () => {});
  }

  write(message: JsonRpcMessage): void {
    this.child.stdin.write(`${serializeLine(message)}\n`);
  }

  async kill(): Promise<void> {
    clearTimeout(this.idleTimer);
    if (this.exited) return;
    this.closing = true;
    this.child.stdin.end();
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), KILL_GRACE_MS);
    timer.unref();
    await this.exitedPromise;
    clearTimeout(timer);
  }
}

/** The pool key: never shared across users (issuer + subject) nor across clients of one user. */
function poolKey(caller: Caller): string {
  return JSON.stringify([caller.issuer, caller.subject, caller.clientId]);
}

/**
 * Builds a stdio upstream whose children are shared by the sessions of one caller.
 * @see https://modelcontextprotocol.io/specification/2025-11-25/basic/transports#stdio
 */
export function createStdioPool(options: StdioPoolOptions): StdioPool {
  const { server, stdio, logger } = options;
  const now = options.now ?? Date.now;
  const idleMs = (stdio.sharedIdleSeconds ?? DEFAULT_IDLE_SECONDS) * 1000;
  const maxProcesses = stdio.maxSharedProcesses ?? DEFAULT_MAX_PROCESSES;
  /** The child new sessions of a key join (or its start in progress). */
  const current = new Map<string, Promise<SharedChild>>();
  /** Every live child, including those no longer joined (credentials expired). */
  const live = new Set<SharedChild>();
  let closed = false;

  function onExit(shared: SharedChild, reason: string): void {
    live.delete(shared);
    clearTimeout(shared.idleTimer);
    if (!shared.closing) logger.warn({ server: server.name, pid: shared.child.pid, sessions: shared.sessions.size, reason }, 'shared stdio upstream exited');
    void current.get(shared.key)?.then((c) => {
      if (c === shared) current.delete(shared.key);
    });
    // Only this child's sessions end; their clients re-initialize and get a new child.
    for (const s of [...shared.sessions.values()]) s.events.closed(reason);
    shared.sessions.clear();
  }

  async function start(key: string, caller: Caller): Promise<SharedChild> {
    if (live.size >= maxProcesses) {
      // Make room with a child nobody uses any more before refusing.
      const idle = [...live].find((c) => c.sessions.size === 0);
      if (idle) await idle.kill();
    }
    if (live.size >= maxProcesses) {
      throw new UpstreamError(`all ${maxProcesses} shared upstream processes of server ${server.name} are in use (servers[].upstream.stdio.maxSharedProcesses)`, 503);
    }
    const env = await childEnvironment(options, caller);
    // Closed while the environment was made: no child after close.
    if (closed) throw new UpstreamError('the gateway is shutting down');
    const child: ChildProcessWithoutNullStreams = spawn(stdio.command, stdio.args, { env, cwd: stdio.cwd, stdio: ['pipe', 'pipe', 'pipe'], windowsHide: true });
    const shared = new SharedChild(key, child, options.downstream.credentialsExpireAt?.(caller, server), onExit);
    live.add(shared);
    const log = logger.child({ server: server.name, pid: child.pid });
    readStdioLines(child, log, (message, line) => fromChild(shared, message, line));
    log.info({ sessions: 0 }, 'shared stdio upstream started');
    return shared;
  }

  /** Routes one message of the child to the session(s) it belongs to (step 3 of the header). */
  function fromChild(shared: SharedChild, message: JsonRpcMessage, line: string): void {
    if (!('method' in message)) {
      const pending = typeof message.id === 'number' ? shared.pending.get(message.id) : undefined;
      if (!pending) return; // an answer to a session that has ended
      shared.pending.delete(message.id as number);
      pending.session.outgoing.delete(idKey(pending.id));
      if (pending.token !== undefined) shared.progress.delete(pending.token);
      if (pending.initialize) answerWaiters(shared, message);
      if (!shared.sessions.has(pending.session.sessionId)) return;
      message.id = pending.id;
      pending.session.events.message(message);
      return;
    }
    if (isRequest(message)) {
      // stdio carries no association between a server request and the client request it serves:
      // the session whose call is most recently in flight gets it (else the most recent caller).
      const sessions = [...shared.sessions.values()];
      const busy = sessions.filter((s) => s.outgoing.size > 0);
      const target = (busy.length ? busy : sessions).reduce<Attached | undefined>((a, b) => (a && a.lastRequestAt >= b.lastRequestAt ? a : b), undefined);
      if (!target) return;
      shared.serverRequests.set(idKey(message.id), target);
      rememberRaw(message, line);
      target.events.message(message);
      return;
    }
    const params = message.params as { progressToken?: unknown; requestId?: unknown } | undefined;
    if (message.method === 'notifications/progress') {
      const entry = typeof params?.progressToken === 'string' ? shared.progress.get(params.progressToken) : undefined;
      if (!entry) return;
      params!.progressToken = entry.token;
      entry.session.events.message(message);
      return;
    }
    if (message.method === 'notifications/cancelled' && params?.requestId !== undefined) {
      const key = typeof params.requestId === 'string' || typeof params.requestId === 'number' ? idKey(params.requestId) : '';
      const target = shared.serverRequests.get(key);
      shared.serverRequests.delete(key);
      target?.events.message(message);
      return;
    }
    // Unassociated (list_changed, logging, resource updates): every session of this caller.
    rememberRaw(message, line);
    for (const s of shared.sessions.values()) s.events.message(message);
  }

  /** Sessions that asked to initialize while the child's first initialize was in flight. */
  function answerWaiters(shared: SharedChild, response: JsonRpcResponse): void {
    if (response.result !== undefined) shared.initializeResult = response.result;
    const waiters = shared.initializeWaiters ?? [];
    shared.initializeWaiters = undefined;
    for (const w of waiters) {
      if (!shared.sessions.has(w.session.sessionId)) continue;
      w.session.events.message(response.result !== undefined ? { jsonrpc: '2.0', id: w.id, result: response.result } : { jsonrpc: '2.0', id: w.id, error: response.error! });
    }
  }

  /** Sends one client message of `session` to the child, rewritten (steps 1 and 2 of the header). */
  function toChild(shared: SharedChild, session: Attached, m: JsonRpcMessage): void {
    if (isRequest(m)) {
      if (m.method === 'initialize') {
        if (shared.initializeResult !== undefined) {
          const answer: JsonRpcResponse = { jsonrpc: '2.0', id: m.id, result: shared.initializeResult };
          // Asynchronously, as an answer from the child would arrive.
          queueMicrotask(() => {
            if (shared.sessions.has(session.sessionId)) session.events.message(answer);
          });
          return;
        }
        if (shared.initializeWaiters) {
          shared.initializeWaiters.push({ session, id: m.id });
          return;
        }
        shared.initializeWaiters = [];
      }
      const id = shared.nextId++;
      const pending: PendingRequest = { session, id: m.id, initialize: m.method === 'initialize' || undefined };
      let params = m.params;
      const meta = (params as { _meta?: { progressToken?: unknown } } | undefined)?._meta;
      const token = meta?.progressToken;
      if (typeof token === 'string' || typeof token === 'number') {
        pending.token = `p${id}`;
        shared.progress.set(pending.token, { session, token });
        params = { ...(params as object), _meta: { ...meta, progressToken: pending.token } };
      }
      shared.pending.set(id, pending);
      session.outgoing.set(idKey(m.id), id);
      session.lastRequestAt = ++shared.sequence;
      shared.write({ jsonrpc: '2.0', id, method: m.method, ...(params !== undefined ? { params } : {}) } as JsonRpcRequest);
      return;
    }
    if (isNotification(m)) {
      if (m.method === 'notifications/initialized') {
        if (shared.initializedSent) return;
        shared.initializedSent = true;
      } else if (m.method === 'notifications/cancelled') {
        const requestId = (m.params as { requestId?: unknown } | undefined)?.requestId;
        const id = typeof requestId === 'string' || typeof requestId === 'number' ? session.outgoing.get(idKey(requestId)) : undefined;
        if (id === undefined) return; // not a request of this session (or already answered)
        shared.write({ jsonrpc: '2.0', method: m.method, params: { ...(m.params as object), requestId: id } });
        return;
      }
      shared.write(m);
      return;
    }
    // A response to a server-to-client request: only from the session the request went to.
    const key = m.id === null ? '' : idKey(m.id);
    if (shared.serverRequests.get(key) !== session) return;
    shared.serverRequests.delete(key);
    shared.write(m);
  }

  function detach(shared: SharedChild, session: Attached): void {
    if (!shared.sessions.delete(session.sessionId)) return;
    // MCP utilities/cancellation: the child may stop work nobody will read.
    for (const [id, p] of shared.pending) {
      // The first initialize stays pending: its answer is cached for the sessions waiting on it.
      if (p.session !== session || p.initialize) continue;
      shared.pending.delete(id);
      if (p.token !== undefined) shared.progress.delete(p.token);
      if (!shared.exited) shared.write({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: id, reason: 'session ended' } });
    }
    for (const [k, s] of shared.serverRequests) if (s === session) shared.serverRequests.delete(k);
    if (shared.initializeWaiters) shared.initializeWaiters = shared.initializeWaiters.filter((w) => w.session !== session);
    if (shared.sessions.size === 0 && !shared.exited) {
      clearTimeout(shared.idleTimer);
      shared.idleTimer = setTimeout(() => {
        if (shared.sessions.size === 0) {
          live.delete(shared);
          void current.get(shared.key)?.then((c) => {
            if (c === shared) current.delete(shared.key);
          });
          void shared.kill();
        }
      }, idleMs);
      shared.idleTimer.unref();
    }
  }

  async function childFor(caller: Caller): Promise<SharedChild> {
    const key = poolKey(caller);
    const existing = current.get(key);
    if (existing) {
      const shared = await existing.catch(() => undefined);
      // A child keeps the environment it started with: once its downstream credentials expired,
      // new sessions get a new child (the old one serves its sessions until they end).
      if (shared && !shared.exited && !shared.closing && (shared.expiresAt === undefined || shared.expiresAt * 1000 > now())) return shared;
      if (current.get(key) === existing) current.delete(key);
    }
    // Re-check after the await: another session of this caller may have started one meanwhile.
    const again = current.get(key);
    if (again) return again;
    const starting = start(key, caller);
    current.set(key, starting);
    starting.catch(() => {
      if (current.get(key) === starting) current.delete(key);
    });
    return starting;
  }

  return {
    async connect(ctx: UpstreamConnectContext): Promise<UpstreamConnection> {
      if (closed) throw new UpstreamError('the gateway is shutting down');
      const shared = await childFor(ctx.caller);
      clearTimeout(shared.idleTimer);
      const session: Attached = { sessionId: ctx.sessionId, events: ctx.events, outgoing: new ChurnMap(), lastRequestAt: 0 };
      shared.sessions.set(ctx.sessionId, session);
      logger.debug({ server: server.name, sessionId: ctx.sessionId, pid: shared.child.pid, sessions: shared.sessions.size }, 'session joined a shared stdio upstream');
      return {
        async send(messages) {
          if (shared.exited || shared.closing || !shared.sessions.has(ctx.sessionId)) throw new UpstreamError('the upstream process is not running');
          for (const m of messages) toChild(shared, session, m);
        },
        openServerStream() {},
        async close() {
          detach(shared, session);
        },
      };
    },
    async close() {
      closed = true;
      await Promise.all([...live].map((c) => c.kill()));
    },
    stats() {
      return { children: [...live].map((c) => ({ key: c.key, pid: c.child.pid, sessions: c.sessions.size })) };
    },
  };
}
