/**
 * One POST that carries requests, and the response stream that answers it.
 *
 * MCP 2025-11-25 transports §Sending Messages to the Server: the answer to a POST with requests is
 * either one JSON object (or array, for a 2025-03-26 batch) or an SSE stream. We decide lazily:
 * while only the response(s) arrive, the answer is plain JSON; as soon as the upstream sends
 * something else for this request (progress, a server request) and the client accepts
 * `text/event-stream`, the answer becomes SSE and every later message is one event, written as
 * it arrives. List results pass through the policy filter one message at a time.
 */
import type { ServerResponse } from 'node:http';
import { errorResponse, serialize, type JsonRpcMessage, type JsonRpcResponse } from './jsonrpc.ts';
import type { EventStream } from './event-stream.ts';
import { startSseResponse } from './sse.ts';
import { LIST_METHODS } from '../policy/lists.ts';
import type { Principal } from '../kernel/caller.ts';
import type { ServerPolicy } from '../policy/types.ts';

/** What filters list results on the way back: the server's policy and the caller it filters for. */
export interface ListFilter {
  readonly policy: Pick<ServerPolicy, 'filterList'>;
  readonly principal: Principal;
}

/** The exchange a POST's response belongs to (one per response), read by the shared close listener. */
const EXCHANGE = Symbol('exchange');

/**
 * A plain JSON answer has no event ID to resume from: once its connection closes, its later
 * messages are dropped. An SSE answer goes on without a connection (transports §Sending Messages:
 * a disconnect is not a cancellation); its events wait in the replay buffer for a GET with
 * Last-Event-ID. One function for every response (`this` is the response), not a closure each.
 */
function onResponseClose(this: ServerResponse): void {
  const exchange = (this as ServerResponse & { [EXCHANGE]?: Exchange })[EXCHANGE];
  exchange?.connectionClosed();
}

/** Where an exchange gets its SSE stream when it becomes one (the session). */
export interface StreamSource {
  openStream(): EventStream;
}

export class Exchange {
  private mode: 'pending' | 'sse' | 'done' = 'pending';
  private outstanding = 0;
  /** Response texts held while the answer is still plain JSON (made for a second one only). */
  private collected: string[] | undefined;
  private first: string | undefined;
  /** The SSE stream once the answer is one; it outlives this POST's connection. */
  private stream: EventStream | undefined;
  /** When the POST arrived (ms since the epoch): a long wait turns the answer into a stream. */
  readonly started = Date.now();

  constructor(
    private readonly res: ServerResponse,
    readonly acceptsSse: boolean,
    private readonly batch: boolean,
    private readonly headers: Readonly<Record<string, string>>,
    /** Undefined: no policy, lists pass through. */
    private readonly lists: ListFilter | undefined,
    private readonly source?: StreamSource,
    /** 2025-11-25 and later: the stream starts with a priming event. */
    private readonly primes = false,
    /**
     * The endpoint, read when the answer's headers are written: once the instance is stopping
     * (src/http/drain.ts), the answer is the last on its connection (RFC 9112 §9.6
     * `Connection: close`), so the client opens its next request elsewhere. An answer already
     * streaming (SSE) has sent its headers.
     */
    private readonly endpoint?: { readonly stopping: boolean },
  ) {
    (res as ServerResponse & { [EXCHANGE]?: Exchange })[EXCHANGE] = this;
    res.on('close', onResponseClose);
  }

  /** The POST's connection closed (see onResponseClose). */
  connectionClosed(): void {
    if (this.mode === 'pending') this.mode = 'done';
  }

  get open(): boolean {
    return this.mode !== 'done';
  }

  /** One more request of this exchange will be answered (by the upstream or locally). */
  expect(): void {
    this.outstanding++;
  }

  /** A response produced here (policy denial), counted like an upstream one. */
  answerLocally(response: JsonRpcResponse): void {
    this.outstanding++;
    this.deliverResponse(response, undefined);
  }

  /**
   * Several responses produced here (policy denials, refused ids, messages refused at the edge,
   * requests past the session's caps), all counted before the first is delivered: a batch of
   * only such requests gets one array with every answer (JSON-RPC 2.0 §6), not just the first.
   */
  answerAllLocally(responses: readonly JsonRpcResponse[]): void {
    this.outstanding += responses.length;
    for (const response of responses) this.deliverResponse(response, undefined);
  }

  /** The response to one of this exchange's requests; `method` is the request's (list filter). */
  deliverResponse(response: JsonRpcResponse, method: string | undefined): void {
    this.outstanding--;
    const lists = this.lists;
    const filtered = lists !== undefined && method !== undefined && LIST_METHODS.has(method) && response.result !== undefined;
    // A filtered result is a new object: serialize it afresh, never with the upstream's text.
    let text: string;
    try {
      text = filtered ? JSON.stringify({ ...response, result: lists.policy.filterList(lists.principal, method, response.result) }) : serialize(response);
    } catch {
      // A filter that fails must not crash the gateway nor leak the unfiltered list.
      text = JSON.stringify(errorResponse(response.id, -32603, 'Internal error'));
    }
    if (this.mode === 'done') return;
    if (this.mode === 'sse') {
      this.stream!.send(text);
      if (this.outstanding <= 0) this.finish();
      return;
    }
    if (this.first === undefined) this.first = text;
    else (this.collected ??= []).push(text);
    if (this.outstanding <= 0) {
      const body = this.batch ? `[${this.texts().join(',')}]` : this.first;
      // A flat name/value list, which Node writes by index, not an object it walks with for-in.
      const headers = [
        'Content-Type', 'application/json',
        'Content-Length', String(Buffer.byteLength(body)),
        // Results may be filtered per caller: never cached or shared (RFC 9111 §5.2.2.3, §5.2.2.7).
        'Cache-Control', 'private, no-store',
      ];
      for (const name in this.headers) headers.push(name, this.headers[name]!);
      if (this.endpoint?.stopping) headers.push('Connection', 'close');
      this.res.writeHead(200, headers);
      this.mode = 'done';
      this.res.end(body);
    }
  }

  /**
   * A request or notification from the server related to this exchange; false when it cannot be
   * carried. `connectedOnly`: only if a client connection would get it now (unrelated messages
   * prefer the GET stream's replay buffer to a request stream nobody reads).
   */
  deliverOther(message: JsonRpcMessage, connectedOnly = false): boolean {
    if (this.mode === 'done' || !this.acceptsSse || !this.source) return false;
    if (this.mode === 'pending') this.toSse();
    else if (connectedOnly && !this.stream!.connected) return false;
    this.stream!.send(serialize(message));
    return true;
  }

  /**
   * MCP 2025-11-25 transports §Sending Messages: a request still unanswered since `before` is
   * answered as an SSE stream from now on, its priming event first, so a client whose connection
   * drops during a long call can resume it (a plain JSON answer has no event ID to resume from).
   */
  streamIfWaitingSince(before: number): void {
    if (this.mode === 'pending' && this.primes && this.acceptsSse && this.source && this.started <= before) this.toSse();
  }

  private toSse(): void {
    startSseResponse(this.res, { 'Cache-Control': 'no-cache, no-store, private', ...this.headers, ...(this.endpoint?.stopping ? { Connection: 'close' } : {}) });
    this.mode = 'sse';
    this.stream = this.source!.openStream();
    this.stream.attach(this.res, undefined, this.primes);
    for (const text of this.texts()) this.stream.send(text);
    this.first = undefined;
    this.collected = undefined;
  }

  /** The response texts held so far, in order. */
  private texts(): string[] {
    if (this.first === undefined) return [];
    return this.collected ? [this.first, ...this.collected] : [this.first];
  }

  /** Ends the exchange with an error for every request still unanswered (upstream gone). */
  fail(responses: Iterable<JsonRpcResponse>): void {
    for (const response of responses) this.deliverResponse(response, undefined);
  }

  private finish(): void {
    this.mode = 'done';
    this.stream!.finish();
  }
}
