/**
 * An MCP session at the gateway (MCP 2025-11-25 transports §Session Management): a random ID,
 * bound to who opened it (RS-22: never an authentication on its own), one upstream connection,
 * and the routing of every upstream message to exactly one client stream (T-15).
 */
import { randomUUID } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import type { Caller } from './caller.ts';
import type { Exchange } from './exchange.ts';
import { errorResponse, idKey, isResponse, serialize, type JsonRpcId, type JsonRpcMessage } from './jsonrpc.ts';
import type { ProtocolVersion } from './protocol-version.ts';
import { writeSseMessage } from './sse.ts';
import type { UpstreamConnection } from './upstreams/types.ts';

/** Server messages kept for a GET stream that is not open yet; older ones are dropped. */
const MAX_QUEUED = 64;

export interface SessionBinding {
  subject: string;
  clientId: string;
  audience: string;
  serverPath: string;
}

/** RS-22/RS-23: the same session ID with another caller's token is not that caller's session. */
export function isBoundTo(binding: SessionBinding, caller: Caller, serverPath: string): boolean {
  return binding.subject === caller.subject && binding.clientId === caller.clientId && binding.audience === caller.audience && binding.serverPath === serverPath;
}

/** RS-21: session IDs from a CSPRNG, visible ASCII only (T-18). */
export function newSessionId(): string {
  return randomUUID();
}

export class Session {
  readonly id = newSessionId();
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
  private serverStream: ServerResponse | undefined;
  private queued: string[] = [];
  private readonly timer: NodeJS.Timeout;
  /** Run when the session ends (timers of things bound to it). */
  readonly cleanups: (() => void)[] = [];

  constructor(
    readonly binding: SessionBinding,
    private readonly idleMs: number,
    private readonly onEnd: (session: Session, reason: string) => void,
  ) {
    this.timer = setTimeout(() => this.idle(), idleMs);
    this.timer.unref();
  }

  /** Last activity, ms since the epoch (least-recently-used eviction). */
  lastActive = Date.now();

  /** Activity: restarts the idle clock. */
  touch(): void {
    this.lastActive = Date.now();
    this.timer.refresh();
  }

  private idle(): void {
    if (this.ended) return;
    // Busy is not idle: a request in flight or an open server stream keeps the session.
    if (this.pending.size > 0 || this.serverStream) {
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
    if (this.serverStream) {
      writeSseMessage(this.serverStream, json);
      return;
    }
    for (const { exchange } of this.pending.values()) {
      if (exchange.deliverOther(message)) return;
    }
    if (this.queued.length >= MAX_QUEUED) this.queued.shift();
    this.queued.push(json);
  }

  /** An SSE comment on the GET stream, so proxies do not close it as idle (HTML §9.2.6: ignored by clients). */
  keepAlive(): void {
    this.serverStream?.write(':\n\n');
  }

  /** The GET stream (T-12); a newer one replaces an older one. */
  attachServerStream(res: ServerResponse): void {
    if (this.serverStream && this.serverStream !== res) this.serverStream.end();
    this.serverStream = res;
    for (const json of this.queued) writeSseMessage(res, json);
    this.queued = [];
    res.once('close', () => {
      if (this.serverStream === res) this.serverStream = undefined;
      this.touch();
    });
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
    for (const [exchange, list] of byExchange) exchange.fail(list);
    this.serverStream?.end();
    this.serverStream = undefined;
    this.onEnd(this, reason);
    this.closed = this.upstream?.close().catch(() => {}) ?? Promise.resolve();
    return this.closed;
  }
}
