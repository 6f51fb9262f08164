/**
 * An MCP session at the gateway (MCP 2025-11-25 transports §Session Management): a random ID,
 * bound to who opened it (MCP security best practices §Session Hijacking: a session ID is never
 * an authentication on its own), one upstream connection, its pending requests with their
 * deadlines (src/gateway/pending-requests.ts), and the routing of every upstream message to
 * exactly one client stream (transports §Multiple Connections: never broadcast).
 */
import { randomUUID } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { ChurnMap } from '../kernel/churn-map.ts';
import { GatewayError } from './errors.ts';
import { formatEventId, type EventPosition } from './event-id.ts';
import { EventStream, type EventStreamOwner } from './event-stream.ts';
import type { Exchange, StreamSource } from './exchange.ts';
import { errorResponse, isResponse, serialize, type JsonRpcId, type JsonRpcMessage } from './jsonrpc.ts';
import { DEFAULT_REQUEST_LIMITS, PendingRequests, REQUEST_TIMEOUT_CODE, type Admission, type PendingRequest, type RequestLimits } from './pending-requests.ts';
import type { ProtocolVersion } from './protocol-version.ts';
import { ReplayBuffer, type ReplayEntry } from './replay-buffer.ts';
import type { UpstreamConnection } from './upstreams/types.ts';

/** The GET stream's number in event IDs; POST response streams count from 1. */
const SERVER_STREAM = 0;

/** Replay and backpressure limits of a session (config `servers[].sse`). */
export interface SseLimits {
  replayMaxEvents: number;
  replayMaxBytes: number;
  replayRetentionSeconds: number;
  maxUnreadBytes: number;
  retryMs: number;
  /** Not a config key (DRAIN_TIMEOUT_MS); tests shorten it. */
  drainTimeoutMs?: number;
}

/**
 * How long an answered SSE stream may take to reach a client that is not reading before its
 * connection is cut (docs/configuration.md, Backpressure): long enough for a slow link to take a
 * full replay buffer, short enough that unread connections cannot pile up.
 */
export const DRAIN_TIMEOUT_MS = 30_000;

export const DEFAULT_SSE_LIMITS: SseLimits = { replayMaxEvents: 500, replayMaxBytes: 512 * 1024, replayRetentionSeconds: 120, maxUnreadBytes: 256 * 1024, retryMs: 1000 };

/** MCP 2025-11-25 transports: the priming event (empty data) is for clients of 2025-11-25 and later. */
export function primesStreams(version: ProtocolVersion | undefined): boolean {
  return version !== undefined && version >= '2025-11-25';
}


let sessionCounter = 0;

export interface SessionBinding {
  subject: string;
  clientId: string;
  audience: string;
  serverPath: string;
}

/** MCP transports §Session Management: a globally unique, cryptographically secure ID of visible ASCII. */
export function newSessionId(): string {
  return randomUUID();
}

/** How a session takes part in a cluster (`cluster.redis`, src/gateway/steps/find-session.ts). */
export interface SessionClusterOptions {
  /** An adopted copy carries the ID the session was opened with on another instance. */
  id?: string;
  /** This instance's ID, the prefix of event IDs (event-id.ts). */
  instance?: string;
  /** A copy of a session another instance opened (an HTTP upstream's session, served here too). */
  adopted?: boolean;
}

let uses = 0;
function nextUse(): number {
  return ++uses;
}

export class Session implements EventStreamOwner, StreamSource {
  readonly id: string;
  /** Per-process number in this session's event IDs: an ID of another session never matches. */
  readonly no = ++sessionCounter;
  /** The instance prefix of this session's event IDs (cluster only; set before the first event). */
  instance: string | undefined;
  /** A copy of a session opened on another instance (cluster only): never evicted, never counted against the bounds. */
  readonly adopted: boolean;
  /**
   * Ended here only (cluster): the upstream session lives on for the other instances serving it,
   * so closing the connection does not end it upstream (no HTTP DELETE).
   */
  detached = false;
  /**
   * Asked when the idle timeout passes (cluster): true to end only this instance's copy, because
   * another instance served the session more recently (the directory's refresh time says so).
   */
  idleElsewhere: (() => Promise<boolean>) | undefined;
  protocolVersion: ProtocolVersion | undefined;
  upstream: UpstreamConnection | undefined;
  ended = false;
  private closed: Promise<void> | undefined;
  /** Client requests waiting for the upstream, each with its exchange, method and deadline. */
  private readonly pending: PendingRequests;
  /**
   * Sends a message of the gateway's own to the upstream (the `notifications/cancelled` of a
   * request past its deadline); set by the endpoint once the upstream is connected.
   */
  notifyUpstream: ((message: JsonRpcMessage) => Promise<void>) | undefined;
  /** Called when a request passes its deadline (for logs). */
  onTimeout: ((request: PendingRequest) => void) | undefined;
  /** Live SSE streams by number (the GET stream once opened or needed, POST streams until answered). */
  private readonly streams = new ChurnMap<number, EventStream>();
  /**
   * Ended streams (answered POST streams, replays of answered ones) still writing to a client that
   * is not reading: out of `streams`, yet their connections are destroyed when the session ends.
   */
  private readonly drainingStreams = new Set<EventStream>();
  /** Created with the first event: a session that never streams holds none. */
  private replay: ReplayBuffer | undefined;
  private seq = 0;
  private nextStream = 1;
  private timer: NodeJS.Timeout;
  /** Run when the session ends (timers of things bound to it). */
  readonly cleanups: (() => void)[] = [];
  /** Called when a slow client's connection is cut (for logs). */
  onCut: ((stream: number, unread: number) => void) | undefined;

  constructor(
    readonly binding: SessionBinding,
    private readonly idleMs: number,
    private readonly onEnd: (session: Session, reason: string) => void,
    private readonly limits: SseLimits = DEFAULT_SSE_LIMITS,
    requestLimits: RequestLimits = DEFAULT_REQUEST_LIMITS,
    cluster: SessionClusterOptions = {},
  ) {
    this.id = cluster.id ?? newSessionId();
    this.instance = cluster.instance;
    this.adopted = cluster.adopted ?? false;
    this.pending = new PendingRequests(requestLimits, (request) => this.expire(request));
    this.timer = setTimeout(() => this.idle(), idleMs);
    this.timer.unref();
  }

  /** Last activity, ms since the epoch (the idle clock). */
  lastActive = Date.now();
  /**
   * Order of last use among this process's sessions (least-recently-used eviction). A counter,
   * not the clock: two uses within one millisecond must still be ordered, or eviction picks by
   * insertion order and ends the session that was just used.
   */
  lastUse = nextUse();

  get maxUnreadBytes(): number {
    return this.limits.maxUnreadBytes;
  }

  get retryMs(): number {
    return this.limits.retryMs;
  }

  get drainTimeoutMs(): number {
    return this.limits.drainTimeoutMs ?? DRAIN_TIMEOUT_MS;
  }

  /**
   * Activity: restarts the idle clock. Only the time is written: the idle timer, when it fires,
   * sleeps again until `lastActive + idleMs` (a timer.refresh() per request re-linked the timer
   * in Node's timer lists every time; now that happens once per idle period).
   */
  touch(): void {
    this.lastActive = Date.now();
    this.lastUse = nextUse();
  }

  private idle(): void {
    if (this.ended) return;
    const left = this.lastActive + this.idleMs - Date.now();
    if (left > 0) {
      this.timer = setTimeout(() => this.idle(), left);
      this.timer.unref();
      return;
    }
    // Busy is not idle: a request in flight or an open server stream keeps the session. A request
    // the upstream never answers leaves at its deadline, so it cannot keep a session forever.
    if (this.pending.size > 0 || this.streams.get(SERVER_STREAM)?.connected) {
      this.timer.refresh();
      return;
    }
    if (!this.idleElsewhere) {
      void this.end('idle timeout');
      return;
    }
    const last = this.lastUse;
    // A request that arrives while the directory is asked keeps the session (touch moved lastUse).
    const still = () => !this.ended && this.lastUse === last;
    void this.idleElsewhere().then(
      (elsewhere) => {
        if (still()) void (elsewhere ? this.detach('idle here, active on another instance') : this.end('idle timeout'));
      },
      () => {
        if (still()) void this.detach('idle here; the session directory did not answer');
      },
    );
  }

  /** Requests sent upstream and not answered yet. */
  get pendingCount(): number {
    return this.pending.size;
  }

  /** MCP basic §Requests: an id MUST NOT be reused within a session; true while one is unanswered. */
  isPending(id: JsonRpcId): boolean {
    return this.pending.has(id);
  }

  /**
   * Admission of one POST's requests against this session's caps (`servers[].maxPendingRequests`,
   * `servers[].maxPendingBytes`), each counted at `bytesEach`.
   */
  admission(bytesEach: number): Admission {
    return this.pending.admission(bytesEach);
  }

  /** Seconds until a pending request's deadline frees room (Retry-After of a refused POST). */
  retryAfterSeconds(): number {
    return this.pending.retryAfterSeconds();
  }

  /** A forwarded request: its answer goes to `exchange`, and it gets a deadline. */
  track(id: JsonRpcId, method: string, params: unknown, exchange: Exchange, bytes: number): void {
    this.pending.add(id, method, params, exchange, bytes);
  }

  forget(id: JsonRpcId): void {
    this.pending.take(id);
  }

  /**
   * MCP lifecycle §Timeouts: past its deadline a request is answered here with an error, and the
   * upstream is told to stop (basic/utilities §Cancellation: `notifications/cancelled` with the
   * request's id and a reason). An answer the upstream sends later finds no pending request and
   * is dropped, as §Cancellation expects of a sender.
   */
  private expire(request: PendingRequest): void {
    if (this.ended) return;
    const seconds = Math.round((Date.now() - request.started) / 1000);
    // Which key to raise: the maximum when progress pushed the deadline as far as it goes.
    const key = request.deadline - request.started >= this.pending.limits.maxTimeoutMs ? 'maxRequestTimeoutSeconds' : 'requestTimeoutSeconds';
    request.exchange.deliverResponse(errorResponse(request.id, REQUEST_TIMEOUT_CODE, `Request timed out: the upstream MCP server did not answer within ${seconds} s (servers[].${key})`), undefined);
    const cancel: JsonRpcMessage = { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: request.id, reason: `mcp-warden: no answer within ${seconds} s` } };
    this.notifyUpstream?.(cancel).catch(() => {});
    this.onTimeout?.(request);
  }

  /** A new POST response stream (the exchange's answer became SSE). */
  openStream(): EventStream {
    const stream = new EventStream(this.nextStream++, this);
    this.streams.set(stream.no, stream);
    return stream;
  }

  private serverStream(): EventStream {
    let stream = this.streams.get(SERVER_STREAM);
    if (!stream) {
      stream = new EventStream(SERVER_STREAM, this);
      this.streams.set(SERVER_STREAM, stream);
    }
    return stream;
  }

  /** The replay buffer, created with the first event: a session that never streams holds none. */
  private replayBuffer(): ReplayBuffer {
    return (this.replay ??= new ReplayBuffer({ maxEvents: this.limits.replayMaxEvents, maxBytes: this.limits.replayMaxBytes, retentionMs: this.limits.replayRetentionSeconds * 1000 }));
  }

  // EventStreamOwner: IDs and the replay record of this session's streams.
  record(stream: number, text: string): { id: string; seq: number } {
    const seq = ++this.seq;
    this.replayBuffer().push(stream, seq, text, Date.now());
    return { id: formatEventId(this.no, stream, seq, this.instance), seq };
  }

  primingId(stream: number): string {
    const seq = ++this.seq;
    // Known from now on: a resume from the priming ID alone replays the stream from its start.
    this.replayBuffer().open(stream);
    return formatEventId(this.no, stream, seq, this.instance);
  }

  after(stream: number, seq: number): { seq: number; text: string; id: string }[] | undefined {
    return this.replay ? this.replay.after(stream, seq)?.map((e) => this.replayed(e)) : [];
  }

  evictedUpTo(stream: number): number {
    return this.replay?.evictedUpTo(stream) ?? 0;
  }

  finished(stream: number): void {
    this.streams.delete(stream);
    this.replay?.finish(stream);
  }

  draining(stream: EventStream, on: boolean): void {
    if (on) this.drainingStreams.add(stream);
    else this.drainingStreams.delete(stream);
  }

  cut(stream: number, unread: number): void {
    this.onCut?.(stream, unread);
  }

  /** Routes one upstream message to exactly one stream (MCP transports §Multiple Connections: never broadcast). */
  route(message: JsonRpcMessage): void {
    if (this.ended) return;
    if (isResponse(message)) {
      if (message.id === null) return;
      const entry = this.pending.take(message.id);
      if (!entry) return;
      entry.exchange.deliverResponse(message, entry.method);
      return;
    }
    // Progress goes to the stream of the request that asked for it, and pushes its deadline back.
    if (message.method === 'notifications/progress') {
      const entry = this.pending.progressed((message.params as { progressToken?: unknown } | undefined)?.progressToken);
      if (entry?.exchange.deliverOther(message)) return;
    }
    const json = serialize(message);
    const server = this.streams.get(SERVER_STREAM);
    if (server?.connected) {
      server.send(json);
      return;
    }
    for (const { exchange } of this.pending.values()) {
      if (exchange.deliverOther(message, true)) return;
    }
    // Nobody listens now: the GET stream's record keeps it for the next GET (bounded like any replay).
    this.serverStream().send(json);
  }

  /** Requests unanswered since `before` become SSE streams (Exchange.streamIfWaitingSince). */
  streamWaiting(before: number): void {
    for (const { exchange } of this.pending.values()) exchange.streamIfWaitingSince(before);
  }

  /** An SSE comment on connected streams, so proxies do not close them as idle; old replay events expire. */
  keepAlive(): void {
    for (const stream of this.streams.values()) stream.comment();
    if (!this.replay) return;
    this.replay.prune(Date.now());
    // Quiet and empty: the buffer goes (a later resume of a forgotten stream gets 410, as it would).
    if (this.replay.size === 0 && this.streams.size === 0) this.replay = undefined;
  }

  /**
   * The GET stream (MCP transports §Listening for Messages from the Server) without Last-Event-ID: a newer connection replaces an older one, and
   * gets the server messages no connection has carried yet that are still held (it claims no
   * continuity: evicted ones are skipped, never a reason to cut it).
   */
  attachServerStream(res: ServerResponse, version: ProtocolVersion | undefined): void {
    this.serverStream().attach(res, undefined, primesStreams(version));
    res.once('close', () => this.touch());
  }

  /**
   * Where a GET with `Last-Event-ID` continues (MCP 2025-11-25 transports §Resumability and
   * Redelivery): the events after that ID on the stream it names, never another stream's.
   * Undefined: the stream was answered and nothing after that ID is left (the endpoint answers 204,
   * which tells SSE clients to stop reconnecting, HTML §9.2).
   * @throws GatewayError 400 for an ID this session never issued (another session's, or
   *   garbage); 410 when events after it are no longer held (a replay would leave a gap)
   */
  resumption(position: EventPosition): EventStream | undefined {
    if (position.instance !== this.instance || position.session !== this.no || position.seq > this.seq || (position.stream !== SERVER_STREAM && position.stream >= this.nextStream)) {
      throw new GatewayError('invalid_message', 'Bad Request: Last-Event-ID does not name an event of this session');
    }
    const live = this.streams.get(position.stream);
    const known = this.replay?.knows(position.stream) ?? false;
    if ((!known && !live) || (known && this.replay!.after(position.stream, position.seq) === undefined)) {
      throw new GatewayError('invalid_message', 'Gone: the events after this Last-Event-ID are no longer held for replay', { status: 410, reason: `stream ${position.stream} evicted past ${position.seq}` });
    }
    if (live) return live;
    if (position.stream === SERVER_STREAM) return this.serverStream();
    // An answered POST stream: nothing more (a 1.x SDK client reconnects after an error response,
    // which it does not count as the answer: 204 stops it), or a stand-in that replays the rest.
    if (this.replay!.after(position.stream, position.seq)!.length === 0) return undefined;
    const answered = new EventStream(position.stream, this);
    answered.ended = true;
    return answered;
  }

  private replayed(e: ReplayEntry): { seq: number; text: string; id: string } {
    return { seq: e.seq, text: e.text, id: formatEventId(this.no, e.stream, e.seq, this.instance) };
  }

  /**
   * Ends this instance's copy only (cluster): the same as `end` for its clients here, but the
   * upstream session is left to the other instances (no DELETE upstream, the directory keeps it).
   */
  detach(reason: string): Promise<void> {
    if (!this.ended) this.detached = true;
    return this.end(reason);
  }

  /** Ends the session: unanswered requests get a JSON-RPC error, streams close, the upstream goes. */
  end(reason: string): Promise<void> {
    if (this.ended) return this.closed ?? Promise.resolve();
    this.ended = true;
    clearTimeout(this.timer);
    for (const cleanup of this.cleanups) cleanup();
    const byExchange = new Map<Exchange, ReturnType<typeof errorResponse>[]>();
    for (const { id, exchange } of this.pending.clear()) {
      const list = byExchange.get(exchange) ?? [];
      list.push(errorResponse(id, -32603, `Session ended: ${reason}`));
      byExchange.set(exchange, list);
    }
    const open = [...this.streams.values()];
    for (const [exchange, list] of byExchange) exchange.fail(list);
    // Failed exchanges finished their streams; a client that does not read is not waited for.
    for (const stream of [...open, ...this.streams.values(), ...this.drainingStreams]) stream.finish(true);
    this.streams.clear();
    this.drainingStreams.clear();
    this.replay?.clear();
    this.replay = undefined;
    this.onEnd(this, reason);
    this.closed = this.upstream?.close(this.detached ? { keepSession: true } : undefined).catch(() => {}) ?? Promise.resolve();
    return this.closed;
  }
}
