/**
 * The Streamable HTTP client side of the stdio bridge (MCP 2025-11-25 basic/transports
 * §Streamable HTTP), on `node:http`/`node:https`: what `mcp-warden connect` needs and nothing more,
 * so an idle bridge holds neither the MCP SDK's transports (and the zod schemas they build) nor
 * undici, which Node's global `fetch` loads on first use (docs/benchmarks.md, Client footprint).
 *
 * Messages travel as the JSON text they arrived in: the host's bytes are POSTed as they are, and
 * what the server sends is handed on as its JSON text (JSON bodies and SSE `data`); only the
 * envelope fields the bridge must read (id, method) are looked at.
 *
 * Authorization stays with the full client (session.ts): a request goes out here with the stored
 * access token when `storedBearerToken` says it is usable as a plain Bearer token (RFC 6750 §2.1);
 * a 401 or 403 to it, and every request when there is no such token (none stored, expiring, DPoP),
 * goes through `BridgeAuthority.fetch`, which refreshes, signs in and steps up. The full client is
 * loaded only then.
 *
 * Order of work:
 *   - POST: `Accept: application/json, text/event-stream`, `Mcp-Session-Id` once the server gave
 *     one (never on initialize), `MCP-Protocol-Version` once negotiated; 202 for notifications and
 *     responses; JSON or an SSE stream for requests.
 *   - An SSE stream that ends before the response came is resumed with GET and `Last-Event-ID`
 *     (§Resumability and Redelivery), after the server's `retry` or a backoff.
 *   - After `notifications/initialized`, a GET opens the server's stream (§Listening for Messages
 *     from the Server); 405 means the server offers none. It is reopened after a disconnect.
 *   - DELETE ends the session on exit (§Session Management: clients SHOULD).
 */
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { createParser } from 'eventsource-parser';
import { HttpStatusError, UnexpectedContentError } from './errors.ts';

/** What the bridge needs of the client that holds the tokens (WardenClient satisfies it). */
export interface BridgeAuthority {
  /** The MCP server URL. */
  readonly serverUrl: string;
  /** An authorized fetch: refresh, sign-in on 401, step-up on 403 insufficient_scope (session.ts). */
  fetch(input: string, init: RequestInit): Promise<Response>;
  /** The stored access token when it is usable now as a Bearer token; otherwise `fetch` decides. */
  storedBearerToken?(): Promise<string | undefined>;
}

/** An answer read the same way whether node:http or the full client's fetch produced it. */
interface Answer {
  status: number;
  statusText: string;
  header(name: string): string | undefined;
  body: AsyncIterable<Uint8Array>;
  discard(): void;
}

export interface PostOptions {
  /** The message is an initialize request: no session id goes with it, and the answer sets one. */
  initialize?: boolean;
  /** The id when the message is a request; its response ends the exchange. */
  requestId?: string | number;
  /** Sees each message of the answer first; `true` keeps it from `onMessage` (a replayed handshake's response). */
  intercept?: (json: string) => boolean;
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });

/** The media type of a Content-Type value, lower case, without parameters (RFC 9110 §8.3.1). */
function mediaType(value: string | undefined): string {
  return (value ?? '').split(';', 1)[0]!.trim().toLowerCase();
}

/** A stream failure in a few words: the system error's code when no server answered, not "fetch failed". */
function describe(err: unknown): string {
  const cause = (err as { cause?: { code?: unknown } }).cause;
  return typeof cause?.code === 'string' ? `no answer (${cause.code})` : (err as Error).message;
}

/** Is this JSON text a response (result or error) to `id`? */
function isResponseTo(data: string, id: string | number): boolean {
  try {
    const message = JSON.parse(data) as { id?: unknown; method?: unknown };
    return message.id === id && message.method === undefined;
  } catch {
    return false;
  }
}

export class StreamableHttpClient {
  sessionId: string | undefined;
  protocolVersion: string | undefined;
  private readonly url: URL;
  private readonly agent: HttpAgent;
  private readonly closed = new AbortController();
  private listening: AbortController | undefined;
  /** The server's SSE `retry` (ms), used for the next reconnection instead of the backoff. */
  private retryMs: number | undefined;

  constructor(
    private readonly authority: BridgeAuthority,
    /** Each message from the server, as its JSON text (one message, no line break inside). */
    private readonly onMessage: (json: string) => void,
    private readonly onNotice: (message: string) => void,
  ) {
    this.url = new URL(authority.serverUrl);
    // Keep-alive: one connection for the session instead of a TCP (and TLS) handshake per message.
    this.agent = this.url.protocol === 'https:' ? new HttpsAgent({ keepAlive: true }) : new HttpAgent({ keepAlive: true });
  }

  /**
   * POSTs one message (its JSON text as received). Resolves once the server accepted it, with
   * `answered`, which settles when the answer was read to its end (at once for a 202).
   */
  async post(body: Buffer, options: PostOptions = {}): Promise<{ answered: Promise<void> }> {
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      ...this.sessionHeaders(options.initialize),
    };
    const answer = await this.exchange('POST', headers, body, this.closed.signal);
    if (options.initialize && answer.status >= 200 && answer.status < 300) this.sessionId = answer.header('mcp-session-id') || undefined;
    if (answer.status < 200 || answer.status >= 300) {
      answer.discard();
      throw new HttpStatusError(answer.status, answer.statusText, 'POST');
    }
    const type = mediaType(answer.header('content-type'));
    if (options.requestId === undefined || answer.status === 202) {
      answer.discard();
      return { answered: Promise.resolve() };
    }
    const deliver = (json: string) => {
      if (!options.intercept?.(json)) this.emit(json);
    };
    if (type === 'application/json') return { answered: this.readJson(answer, deliver) };
    if (type === 'text/event-stream') return { answered: this.readRequestStream(answer, options.requestId, deliver) };
    answer.discard();
    throw new UnexpectedContentError(answer.header('content-type') ?? '');
  }

  /**
   * Opens the server's GET stream (after `notifications/initialized`) and keeps it open: reopened
   * with `Last-Event-ID` after a disconnect, with backoff, until `close()` or a new session.
   */
  listen(): void {
    this.listening?.abort();
    const own = new AbortController();
    this.listening = own;
    const signal = AbortSignal.any([own.signal, this.closed.signal]);
    void (async () => {
      let lastEventId: string | undefined;
      for (let attempt = 0; attempt < 20 && !signal.aborted; attempt++) {
        try {
          const answer = await this.get(lastEventId, signal);
          if (answer.status === 405 || answer.status === 404) {
            // 405: no server stream on this endpoint; 404: the session ended, and the next POST
            // re-establishes it (and listens again).
            answer.discard();
            return;
          }
          if (answer.status < 200 || answer.status >= 300 || mediaType(answer.header('content-type')) !== 'text/event-stream') {
            answer.discard();
            throw new HttpStatusError(answer.status, answer.statusText, 'GET');
          }
          attempt = -1;
          lastEventId = await this.readEvents(answer, lastEventId, (data) => this.emit(data));
        } catch (err) {
          if (signal.aborted) return;
          this.onNotice(`server stream: ${describe(err)}`);
        }
        if (signal.aborted) return;
        await sleep(this.retryMs ?? Math.min(500 * 2 ** Math.max(attempt, 0), 10_000), signal);
      }
    })();
  }

  /** Ends the session with DELETE (best effort: a server that answers 405 ends nothing). */
  async terminate(): Promise<void> {
    if (!this.sessionId) return;
    const answer = await this.exchange('DELETE', this.sessionHeaders(), undefined, AbortSignal.timeout(5_000));
    answer.discard();
    this.sessionId = undefined;
  }

  /** Stops every stream and frees the connections; in-flight requests end with an abort. */
  close(): void {
    this.closed.abort();
    this.agent.destroy();
  }

  /** A new session follows: stop listening on the old one and forget it. */
  reset(): void {
    this.listening?.abort();
    this.listening = undefined;
    this.sessionId = undefined;
  }

  private sessionHeaders(initialize = false): Record<string, string> {
    const headers: Record<string, string> = {};
    if (this.sessionId && !initialize) headers['mcp-session-id'] = this.sessionId;
    if (this.protocolVersion) headers['mcp-protocol-version'] = this.protocolVersion;
    return headers;
  }

  private get(lastEventId: string | undefined, signal: AbortSignal): Promise<Answer> {
    return this.exchange('GET', { accept: 'text/event-stream', ...this.sessionHeaders(), ...(lastEventId !== undefined && { 'last-event-id': lastEventId }) }, undefined, signal);
  }

  /**
   * One HTTP exchange: with the stored token over node:http when there is one, else (and after a
   * 401 or 403 to it) through the full client's fetch. A refused request was not processed by the
   * server (RFC 6750 §3.1), so sending it again is safe.
   */
  private async exchange(method: string, headers: Record<string, string>, body: Buffer | undefined, signal: AbortSignal): Promise<Answer> {
    const token = await this.authority.storedBearerToken?.();
    if (token !== undefined) {
      const res = await this.send(method, { ...headers, authorization: `Bearer ${token}` }, body, signal);
      if (res.statusCode !== 401 && res.statusCode !== 403) return fromIncoming(res);
      res.resume();
    }
    const res = await this.authority.fetch(this.url.href, { method, headers, ...(body && { body: new Uint8Array(body) }), signal });
    return fromResponse(res);
  }

  /**
   * node:http, failing as `fetch` does when no server answered (`TypeError: fetch failed` with the
   * system error as cause), so one renderer words both (failure.ts).
   */
  private send(method: string, headers: OutgoingHttpHeaders, body: Buffer | undefined, signal: AbortSignal): Promise<IncomingMessage> {
    const request = this.url.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise((resolve, reject) => {
      const req = request(this.url, { method, headers: body ? { ...headers, 'content-length': body.length } : headers, agent: this.agent, signal }, resolve);
      req.on('error', (err: Error & { code?: string }) => {
        reject(err.name === 'AbortError' ? err : new TypeError('fetch failed', { cause: err }));
      });
      req.end(body);
    });
  }

  /** A JSON answer: one message, or a batch handed on one message at a time. */
  private async readJson(answer: Answer, deliver: (json: string) => void): Promise<void> {
    const chunks: Uint8Array[] = [];
    for await (const chunk of answer.body) chunks.push(chunk);
    const text = Buffer.concat(chunks).toString('utf8').trim();
    if (text.startsWith('[')) {
      for (const message of JSON.parse(text) as unknown[]) deliver(JSON.stringify(message));
    } else if (text) {
      deliver(text);
    }
  }

  /**
   * The SSE answer to a request. If it ends before the response (a server may close it after an
   * event id to have the client poll, transports §Resumability), it is resumed with GET and
   * `Last-Event-ID`, a few times with backoff.
   */
  private async readRequestStream(answer: Answer, requestId: string | number, deliver: (json: string) => void): Promise<void> {
    let answered = false;
    const seen = (data: string) => {
      answered ||= isResponseTo(data, requestId);
      deliver(data);
    };
    let lastEventId: string | undefined;
    try {
      lastEventId = await this.readEvents(answer, undefined, seen);
    } catch (err) {
      if (this.closed.signal.aborted) return;
      this.onNotice(`stream: ${describe(err)}`);
    }
    for (let attempt = 0; !answered && lastEventId !== undefined && attempt < 5 && !this.closed.signal.aborted; attempt++) {
      await sleep(this.retryMs ?? 500 * 2 ** attempt, this.closed.signal);
      try {
        const resumed = await this.get(lastEventId, this.closed.signal);
        if (resumed.status < 200 || resumed.status >= 300) {
          resumed.discard();
          throw new HttpStatusError(resumed.status, resumed.statusText, 'GET');
        }
        lastEventId = await this.readEvents(resumed, lastEventId, seen);
        attempt = -1;
      } catch (err) {
        if (this.closed.signal.aborted) return;
        this.onNotice(`stream: ${describe(err)}`);
      }
    }
    if (!answered && !this.closed.signal.aborted) throw new Error('the server closed the stream before answering');
  }

  /** Hands each `message` event's data to `deliver`; returns the last event id (for `Last-Event-ID`). */
  private async readEvents(answer: Answer, lastEventId: string | undefined, deliver: (data: string) => void): Promise<string | undefined> {
    let last = lastEventId;
    const parser = createParser({
      onEvent: (event) => {
        if (event.id !== undefined) last = event.id;
        // An event with an id and no data primes resumption (transports §Resumability); skip it.
        if (!event.data || (event.event !== undefined && event.event !== 'message')) return;
        deliver(event.data);
      },
      onRetry: (ms) => {
        this.retryMs = ms;
      },
    });
    const decoder = new TextDecoder();
    for await (const chunk of answer.body) parser.feed(decoder.decode(chunk, { stream: true }));
    parser.feed(decoder.decode());
    return last;
  }

  /** One message per line on stdio (transports §stdio): JSON with a line break inside is re-serialized. */
  private emit(json: string): void {
    // (SSE data of several `data:` lines, or a pretty-printed JSON body.)
    this.onMessage(json.includes('\n') ? JSON.stringify(JSON.parse(json)) : json);
  }
}

function fromIncoming(res: IncomingMessage): Answer {
  return {
    status: res.statusCode ?? 0,
    statusText: res.statusMessage ?? '',
    header: (name) => {
      const value = res.headers[name];
      return Array.isArray(value) ? value.join(', ') : value;
    },
    body: res,
    discard: () => {
      res.resume();
    },
  };
}

function fromResponse(res: Response): Answer {
  const body = res.body;
  return {
    status: res.status,
    statusText: res.statusText,
    header: (name) => res.headers.get(name) ?? undefined,
    body: body ?? (async function* () {})(),
    discard: () => {
      body?.cancel().catch(() => undefined);
    },
  };
}
