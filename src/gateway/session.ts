/**
 * An MCP session at the gateway (MCP 2025-11-25 transports §Session Management): a random ID,
 * bound to who opened it (RS-22: never an authentication on its own), one upstream connection,
 * and the routing of every upstream message to exactly one client stream (T-15).
 */
import { randomUUID } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { GatewayError } from './errors.ts';
import { formatEventId, type EventPosition } from './event-id.ts';
import { EventStream, type EventStreamOwner } from './event-stream.ts';
import type { Exchange, StreamSource } from './exchange.ts';
import { errorResponse, idKey, isResponse, serialize, type JsonRpcId, type JsonRpcMessage } from './jsonrpc.ts';
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

/** RS-21: session IDs from a CSPRNG, visible ASCII only (T-18). */
export function newSessionId(): string {
  return randomUUID();
}

export class Session implements EventStreamOwner, StreamSource {
  readonly id = newSessionId();
  /** Per-process number in this session's event IDs: an ID of another session never matches. */
  readonly no = ++sessionCounter;
  protocolVersion: ProtocolVersion | undefined;
  upstream: UpstreamConnection | undefined;
  ended = false;
  private closed: Promise<void> | undefined;
  /**
   * idKey of a pending client request → its exchange and method. The method travels with the
   * exchange so the list filter decision can never come from another request with the same id.
   */
  private readonly pending = new Map<string, { exchange: Exchange; method: string }>();
  /** progressToken key → idKey of the request that carried it. */
  private readonly progress = new Map<string, string>();
  /** Live SSE streams by number (the GET stream once opened or needed, POST streams until answered). */
  private readonly streams = new Map<number, EventStream>();
  /**
   * Ended streams (answered POST streams, replays of answered ones) still writing to a client that
   * is not reading: out of `streams`, yet their connections are destroyed when the session ends.
   */
  private readonly drainingStreams = new Set<EventStream>();
  /** Created with the first event: a session that never streams holds none. */
  private replay: ReplayBuffer | undefined;
  private seq = 0;
  private nextStream = 1;
  private readonly timer: NodeJS.Timeout;
  /** Run when the session ends (timers of things bound to it). */
  readonly cleanups: (() => void)[] = [];
  /** Called when a slow client's connection is cut (for logs). */
  onCut: ((stream: number, unread: number) => void) | undefined;

  constructor(
    readonly binding: SessionBinding,
    private readonly idleMs: number,
    private readonly onEnd: (session: Session, reason: string) => void,
    private readonly limits: SseLimits = DEFAULT_SSE_LIMITS,
  ) {
    this.timer = setTimeout(() => this.idle(), idleMs);
    this.timer.unref();
  }

  /** Last activity, ms since the epoch (least-recently-used eviction). */
  lastActive = Date.now();

  get maxUnreadBytes(): number {
    return this.limits.maxUnreadBytes;
  }

  get retryMs(): number {
    return this.limits.retryMs;
  }

  get drainTimeoutMs(): number {
    return this.limits.drainTimeoutMs ?? DRAIN_TIMEOUT_MS;
  }

  /** Activity: restarts the idle clock. */
  touch(): void {
    this.lastActive = Date.now();
    this.timer.refresh();
  }

  private idle(): void {
    if (this.ended) return;
    // Busy is not idle: a request in flight or an open server stream keeps the session.
    if (this.pending.size > 0 || this.streams.get(SERVER_STREAM)?.connected) {
      this.timer.refresh();
      return;
    }
    void this.end('idle timeout');
  }

  /** MCP basic §Requests: an id MUST NOT be reused within a session; true while one is unanswered. */
  isPending(id: JsonRpcId): boolean {
    return this.pending.has(idKey(id));
  }

  track(id: JsonRpcId, method: string, params: unknown, exchange: Exchange): void {
    const key = idKey(id);
    this.pending.set(key, { exchange, method });
    const token = (params as { _meta?: { progressToken?: unknown } } | undefined)?._meta?.progressToken;
    if (typeof token === 'string' || typeof token === 'number') this.progress.set(idKey(token), key);
  }

  forget(id: JsonRpcId): void {
    this.pending.delete(idKey(id));
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
    return { id: formatEventId(this.no, stream, seq), seq };
  }

  primingId(stream: number): string {
    const seq = ++this.seq;
    // Known from now on: a resume from the priming ID alone replays the stream from its start.
    this.replayBuffer().open(stream);
    return formatEventId(this.no, stream, seq);
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

  /** Routes one upstream message (T-15: each message goes to exactly one stream). */
  route(message: JsonRpcMessage): void {
    if (this.ended) return;
    if (isResponse(message)) {
      if (message.id === null) return;
      const key = idKey(message.id);
      const entry = this.pending.get(key);
      if (!entry) return;
      this.pending.delete(key);
      if (this.progress.size) for (const [t, k] of this.progress) if (k === key) this.progress.delete(t);
      entry.exchange.deliverResponse(message, entry.method);
      return;
    }
    // Progress goes to the stream of the request that asked for it.
    if (message.method === 'notifications/progress') {
      const token = (message.params as { progressToken?: unknown } | undefined)?.progressToken;
      if (typeof token === 'string' || typeof token === 'number') {
        const key = this.progress.get(idKey(token));
        const entry = key ? this.pending.get(key) : undefined;
        if (entry?.exchange.deliverOther(message)) return;
      }
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
   * The GET stream (T-12) without Last-Event-ID: a newer connection replaces an older one, and
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
    if (position.session !== this.no || position.seq > this.seq || (position.stream !== SERVER_STREAM && position.stream >= this.nextStream)) {
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
    return { seq: e.seq, text: e.text, id: formatEventId(this.no, e.stream, e.seq) };
  }

  /** Ends the session: unanswered requests get a JSON-RPC error, streams close, the upstream goes. */
  end(reason: string): Promise<void> {
    if (this.ended) return this.closed ?? Promise.resolve();
    this.ended = true;
    clearTimeout(this.timer);
    for (const cleanup of this.cleanups) cleanup();
    const byExchange = new Map<Exchange, ReturnType<typeof errorResponse>[]>();
    for (const [key, { exchange }] of this.pending) {
      const id: JsonRpcId = key.startsWith('n') ? Number(key.slice(1)) : key.slice(1);
      const list = byExchange.get(exchange) ?? [];
      list.push(errorResponse(id, -32603, `Session ended: ${reason}`));
      byExchange.set(exchange, list);
    }
    this.pending.clear();
    this.progress.clear();
    const open = [...this.streams.values()];
    for (const [exchange, list] of byExchange) exchange.fail(list);
    // Failed exchanges finished their streams; a client that does not read is not waited for.
    for (const stream of [...open, ...this.streams.values(), ...this.drainingStreams]) stream.finish(true);
    this.streams.clear();
    this.drainingStreams.clear();
    this.replay?.clear();
    this.replay = undefined;
    this.onEnd(this, reason);
    this.closed = this.upstream?.close().catch(() => {}) ?? Promise.resolve();
    return this.closed;
  }
}
