/**
 * The reply to one POST to an HTTP upstream (MCP 2025-11-25 transports §Sending Messages to the
 * Server), read with undici's `dispatch` and a handler of our own instead of `request()`: the
 * gateway needs two response headers (`Content-Type`, `Mcp-Session-Id`) and either the whole
 * JSON body or, for an event stream, the body as it arrives. `request()` builds an object of
 * every header, an async resource and a body stream per reply, and then reads a JSON body back
 * out of that stream; here a JSON body is collected as its chunks arrive, and only an event
 * stream becomes a stream (with back-pressure: undici pauses the socket while it is full).
 */
import { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';

/** An upstream reply's body that arrives over time: a `text/event-stream` answered 200. */
export class StreamBody extends Readable {
  readonly #abort: (err: Error) => void;
  readonly #resume: () => void;

  constructor(abort: (err: Error) => void, resume: () => void) {
    super();
    this.#abort = abort;
    this.#resume = resume;
  }

  override _read(): void {
    this.#resume();
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    // Destroyed before the upstream finished (the session ended): the request is aborted, and the
    // connection is not reused mid-reply.
    if (!this.readableEnded) this.#abort(err ?? new Error('the upstream stream was closed'));
    callback(err);
  }
}

export interface PostReply {
  statusCode: number;
  /** `Content-Type`, undefined when absent. */
  contentType: string | undefined;
  /** `Mcp-Session-Id` (MCP transports §Session Management), undefined when absent or sent more than once. */
  sessionId: string | undefined;
  /** The whole body as UTF-8 text (its BOM dropped) for a 200 that is not an event stream; '' otherwise. */
  text: string;
  /** The body of a 200 `text/event-stream`, as it arrives. */
  stream: StreamBody | undefined;
}

/**
 * Takes a reply as undici completes it, or declines it (false). It runs inside undici's
 * `onComplete`, before undici's own work after a reply and before the promise's turn of the
 * microtask queue: an answer the caller can route at once reaches the client that much sooner.
 * Whatever it does runs inside undici's callback: a new request it dispatched at once would find
 * this connection still busy, and the pool would open another. If it throws, the promise rejects
 * with that error (undici's own error path would find the request settled and drop it).
 */
export type EarlyReply = (reply: PostReply) => boolean;

/**
 * Sends one request through `dispatcher` and resolves with its reply, or with undefined when
 * `early` took it (rejects on a transport failure).
 */
export function postUpstream(dispatcher: Dispatcher, options: Dispatcher.DispatchOptions, early?: EarlyReply): Promise<PostReply | undefined> {
  return new Promise((resolve, reject) => {
    dispatcher.dispatch(options, new PostHandler(resolve, reject, early));
  });
}

const UTF8_BOM = [0xef, 0xbb, 0xbf];

/** Whether the raw header name equals `lower` (ASCII, case-insensitive: RFC 9110 §5.1). */
function isHeaderName(name: Buffer | string, lower: string): boolean {
  if (name.length !== lower.length) return false;
  if (typeof name === 'string') return name.toLowerCase() === lower;
  for (let i = 0; i < lower.length; i++) if ((name[i]! | 0x20) !== lower.charCodeAt(i)) return false;
  return true;
}

function headerValue(value: Buffer | string | (Buffer | string)[]): string {
  const first = Array.isArray(value) ? value[0]! : value;
  return typeof first === 'string' ? first : first.toString('latin1');
}

/** undici's handler contract (onConnect, onHeaders, onData, onComplete, onError), one per request. */
class PostHandler {
  readonly #resolve: (reply: PostReply | undefined) => void;
  readonly #reject: (err: Error) => void;
  readonly #early: EarlyReply | undefined;
  #abort: ((err: Error) => void) | undefined;
  #statusCode = 0;
  #contentType: string | undefined;
  #sessionId: string | undefined;
  #sessionIds = 0;
  #chunks: Buffer[] | undefined;
  #stream: StreamBody | undefined;
  #settled = false;

  constructor(resolve: (reply: PostReply | undefined) => void, reject: (err: Error) => void, early: EarlyReply | undefined) {
    this.#resolve = resolve;
    this.#reject = reject;
    this.#early = early;
  }

  onConnect(abort: (err?: Error) => void): void {
    this.#abort = abort;
  }

  onHeaders(statusCode: number, rawHeaders: (Buffer | string)[], resume: () => void): boolean {
    this.#statusCode = statusCode;
    for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
      const name = rawHeaders[i]!;
      if (this.#contentType === undefined && isHeaderName(name, 'content-type')) this.#contentType = headerValue(rawHeaders[i + 1]!);
      else if (isHeaderName(name, 'mcp-session-id') && ++this.#sessionIds === 1) this.#sessionId = headerValue(rawHeaders[i + 1]!);
    }
    // Two session IDs name no session: neither is taken (as `request()`'s header object, an array, was not).
    if (this.#sessionIds > 1) this.#sessionId = undefined;
    if (statusCode === 200 && this.#contentType?.startsWith('text/event-stream')) {
      const abort = this.#abort ?? (() => {});
      this.#stream = new StreamBody(abort, resume);
      this.#settle();
    }
    return true;
  }

  onData(chunk: Buffer): boolean {
    if (this.#stream) return this.#stream.push(chunk);
    // Only a 200's body is read; any other reply is judged by its status alone.
    if (this.#statusCode === 200) (this.#chunks ??= []).push(chunk);
    return true;
  }

  onComplete(): void {
    if (this.#stream) {
      this.#stream.push(null);
      return;
    }
    this.#settle();
  }

  onError(err: Error): void {
    if (this.#stream) {
      this.#stream.destroy(err);
      return;
    }
    if (this.#settled) return;
    this.#settled = true;
    this.#reject(err);
  }

  #settle(): void {
    if (this.#settled) return;
    this.#settled = true;
    const reply: PostReply = { statusCode: this.#statusCode, contentType: this.#contentType, sessionId: this.#sessionId, text: this.#text(), stream: this.#stream };
    // An event stream is settled at its headers, and goes to the caller as a stream.
    let taken: boolean;
    try {
      taken = this.#early !== undefined && reply.stream === undefined && this.#early(reply);
    } catch (err) {
      this.#reject(err instanceof Error ? err : new Error(String(err)));
      return;
    }
    this.#resolve(taken ? undefined : reply);
  }

  #text(): string {
    const chunks = this.#chunks;
    if (!chunks) return '';
    const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
    // WHATWG Encoding §4.1 UTF-8 decode, as undici's text() does: a leading BOM is not text.
    const start = body.length >= 3 && body[0] === UTF8_BOM[0] && body[1] === UTF8_BOM[1] && body[2] === UTF8_BOM[2] ? 3 : 0;
    return body.toString('utf8', start);
  }
}
