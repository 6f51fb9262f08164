/**
 * The requests of one session waiting for the upstream: each with a deadline, all of them
 * bounded in count and bytes.
 *
 * MCP 2025-11-25 lifecycle §Timeouts: a sender SHOULD establish a timeout for each request, and
 * when it passes SHOULD issue a cancellation notification and stop waiting; it MAY reset the clock
 * on a progress notification for the request, but SHOULD always enforce a maximum. The gateway
 * is the sender towards the upstream, so it keeps that promise for every client, including one
 * that disconnected (transports §Sending Messages: a disconnect is not a cancellation, so only the
 * deadline frees such a request).
 *
 * Order of checks for a new request: count cap, then byte cap (never for the only pending
 * request, so a body up to maxBodyBytes always gets through on its own).
 */
import { ChurnMap } from '../kernel/churn-map.ts';
import { GatewayError } from './errors.ts';
import type { Exchange } from './exchange.ts';
import { idKey, type JsonRpcId, type JsonRpcResponse } from './jsonrpc.ts';

/** Per-server limits (config `servers[].requestTimeoutSeconds` & co, src/config/schema.ts). */
export interface RequestLimits {
  timeoutMs: number;
  maxTimeoutMs: number;
  maxPending: number;
  maxPendingBytes: number;
}

export const DEFAULT_REQUEST_LIMITS: RequestLimits = { timeoutMs: 60_000, maxTimeoutMs: 1_800_000, maxPending: 100, maxPendingBytes: 8 * 1024 * 1024 };

/** The limits of one configured server. */
export function requestLimitsOf(server: { requestTimeoutSeconds: number; maxRequestTimeoutSeconds: number; maxPendingRequests: number; maxPendingBytes: number }): RequestLimits {
  return {
    timeoutMs: server.requestTimeoutSeconds * 1000,
    maxTimeoutMs: server.maxRequestTimeoutSeconds * 1000,
    maxPending: server.maxPendingRequests,
    maxPendingBytes: server.maxPendingBytes,
  };
}

/** The MCP SDK's code for a request that timed out (SDK 1.x ErrorCode.RequestTimeout). */
export const REQUEST_TIMEOUT_CODE = -32001;
/** JSON-RPC 2.0 §5.1 implementation-defined server error: the session's pending-request cap. */
export const PENDING_LIMIT_CODE = -32000;

export interface PendingRequest {
  readonly id: JsonRpcId;
  readonly key: string;
  /** The request's method travels with its exchange: the list filter never reads another's. */
  readonly method: string;
  readonly exchange: Exchange;
  readonly bytes: number;
  /** ms since the epoch. */
  readonly started: number;
  /** When the gateway stops waiting (ms since the epoch); Infinity for initialize. */
  deadline: number;
  progressKey: string | undefined;
}

/** One POST's admission: counts what it already admitted, so a batch cannot step past a cap. */
export interface Admission {
  /** Undefined when the request fits, else the refusal to send under its id. */
  refuse(id: JsonRpcId): JsonRpcResponse | undefined;
}

/** setTimeout's largest delay; a later deadline is reached by sleeping again. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * One timer per session, not one per request: it is set for the earliest deadline it knows of and,
 * when it fires, expires every request whose deadline passed and sleeps until the next one. A
 * request added or answered touches no timer (a setTimeout + clearTimeout pair per request was
 * the costliest part of forwarding one). Deadlines only move later (progress) and every new
 * request's deadline is at or after the armed one (one timeout per session), so the armed time is
 * never late; when it is early (that request was answered, or progress moved it) the sweep finds
 * nothing due and re-arms.
 */
export class PendingRequests {
  // ChurnMap: a request is added and removed on every call (kernel/churn-map.ts says why not a Map).
  private readonly byKey = new ChurnMap<string, PendingRequest>();
  /** progressToken key → the request that carried it (MCP basic/utilities §Progress). */
  private readonly byProgress = new ChurnMap<string, PendingRequest>();
  private held = 0;
  private timer: NodeJS.Timeout | undefined;
  /** When the armed timer fires (ms since the epoch); Infinity when none is armed. */
  private armedFor = Infinity;

  constructor(
    readonly limits: RequestLimits,
    /** Called once the deadline passed, after the request left this registry. */
    private readonly onDeadline: (request: PendingRequest) => void,
    private readonly now: () => number = Date.now,
  ) {}

  get size(): number {
    return this.byKey.size;
  }

  /** Bytes of the pending requests' bodies. */
  get bytes(): number {
    return this.held;
  }

  has(id: JsonRpcId): boolean {
    return this.byKey.has(idKey(id));
  }

  values(): IterableIterator<PendingRequest> {
    return this.byKey.values();
  }

  /**
   * Admission for the requests of one POST, each counted at `bytesEach` (its share of the body).
   * A refusal names the limit and the config key that sets it.
   */
  admission(bytesEach: number): Admission {
    return new PostAdmission(this.limits, this.byKey.size, this.held, bytesEach);
  }

  /** Registers a forwarded request and starts its deadline. */
  add(id: JsonRpcId, method: string, params: unknown, exchange: Exchange, bytes: number): PendingRequest {
    const started = this.now();
    // initialize has its own, longer clock (servers[].initializeTimeoutSeconds ends the session),
    // and lifecycle §Cancellation: the initialize request MUST NOT be cancelled.
    const deadline = method === 'initialize' ? Infinity : started + Math.min(this.limits.timeoutMs, this.limits.maxTimeoutMs);
    const request: PendingRequest = { id, key: idKey(id), method, exchange, bytes, started, deadline, progressKey: undefined };
    this.byKey.set(request.key, request);
    this.held += bytes;
    const token = (params as { _meta?: { progressToken?: unknown } } | undefined)?._meta?.progressToken;
    if (typeof token === 'string' || typeof token === 'number') {
      request.progressKey = idKey(token);
      this.byProgress.set(request.progressKey, request);
    }
    if (deadline < this.armedFor) this.arm(deadline);
    return request;
  }

  /** Removes a request (answered, failed or expired); undefined when it is not pending. */
  take(id: JsonRpcId): PendingRequest | undefined {
    const request = this.byKey.get(idKey(id));
    if (request) this.release(request);
    return request;
  }

  /**
   * The pending request a progress token belongs to, its deadline pushed back: lifecycle
   * §Timeouts allows resetting the clock on progress, never past `maxTimeoutMs` from its start.
   */
  progressed(token: unknown): PendingRequest | undefined {
    if (typeof token !== 'string' && typeof token !== 'number') return undefined;
    const request = this.byProgress.get(idKey(token));
    if (request && request.deadline !== Infinity) {
      // Only the number moves; the session's timer, when it fires early, sleeps again until the next deadline.
      request.deadline = Math.min(this.now() + this.limits.timeoutMs, request.started + this.limits.maxTimeoutMs);
    }
    return request;
  }

  /** Seconds until the first deadline (RFC 9110 §10.2.3 Retry-After for a refused POST), at least 1. */
  retryAfterSeconds(): number {
    let first = Infinity;
    for (const r of this.byKey.values()) first = Math.min(first, r.deadline);
    if (first === Infinity) return Math.ceil(this.limits.timeoutMs / 1000);
    return Math.max(1, Math.ceil((first - this.now()) / 1000));
  }

  /** Removes every request (the session ends) and returns them. */
  clear(): PendingRequest[] {
    const all = [...this.byKey.values()];
    for (const r of all) this.release(r);
    this.disarm();
    return all;
  }

  private arm(at: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.armedFor = at;
    this.timer = setTimeout(this.sweep, Math.min(MAX_TIMER_MS, Math.max(0, at - this.now())));
    // A deadline alone never keeps the process alive.
    this.timer.unref();
  }

  private disarm(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.armedFor = Infinity;
  }

  /** The timer fired: every request past its deadline leaves, then the handler runs for each. */
  private readonly sweep = (): void => {
    this.timer = undefined;
    this.armedFor = Infinity;
    const now = this.now();
    let expired: PendingRequest[] | undefined;
    let next = Infinity;
    for (const r of this.byKey.values()) {
      if (r.deadline <= now) (expired ??= []).push(r);
      else if (r.deadline < next) next = r.deadline;
    }
    if (expired) for (const r of expired) this.release(r);
    // Armed before the handlers run: a handler may add requests (they arm for themselves if earlier).
    if (next !== Infinity) this.arm(next);
    if (expired) for (const r of expired) this.onDeadline(r);
  };

  private release(request: PendingRequest): void {
    this.byKey.delete(request.key);
    this.held -= request.bytes;
    if (request.progressKey !== undefined && this.byProgress.get(request.progressKey) === request) this.byProgress.delete(request.progressKey);
  }
}

/** A class, not a closure: one is made per POST on the hot path. */
class PostAdmission implements Admission {
  constructor(
    private readonly limits: RequestLimits,
    private count: number,
    private bytes: number,
    private readonly bytesEach: number,
  ) {}

  refuse(id: JsonRpcId): JsonRpcResponse | undefined {
    if (this.count >= this.limits.maxPending) {
      return refusal(id, `Too many pending requests: this session already has ${this.limits.maxPending} requests waiting for the upstream (servers[].maxPendingRequests); wait for their answers`);
    }
    if (this.count > 0 && this.bytes + this.bytesEach > this.limits.maxPendingBytes) {
      return refusal(id, `Too many pending bytes: this session's requests waiting for the upstream would exceed ${this.limits.maxPendingBytes} bytes (servers[].maxPendingBytes); wait for their answers`);
    }
    this.count++;
    this.bytes += this.bytesEach;
    return undefined;
  }
}

function refusal(id: JsonRpcId, message: string): JsonRpcResponse {
  return { jsonrpc: '2.0', id, error: { code: PENDING_LIMIT_CODE, message } };
}

/**
 * The error for a POST whose every request is past the session's caps: RFC 6585 §4 429 Too Many
 * Requests, so proxies and clients that back off see it in the status, with Retry-After (RFC 9110
 * §10.2.3) set to when the first pending request's deadline frees room. The body is the JSON-RPC
 * error without id every transport error carries, naming the limit. A POST with other answers to
 * give keeps 200 and carries these refusals under their ids instead.
 */
export function tooManyPending(session: { retryAfterSeconds(): number }, refusals: readonly JsonRpcResponse[]): GatewayError {
  const message = refusals[0]?.error?.message ?? 'Too many pending requests';
  return new GatewayError('too_many_pending_requests', message, { retryAfterSeconds: session.retryAfterSeconds(), reason: `${refusals.length} request(s) refused: ${message}` });
}
