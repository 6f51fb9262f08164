/**
 * HTTP upstream: a Streamable HTTP MCP server reached over pooled keep-alive connections
 * (undici). Our session maps to the upstream's `Mcp-Session-Id`. The client's Authorization
 * header and cookies are never forwarded (MCP security: no token passthrough); only the
 * configured headers and the caller's downstream credentials go upstream.
 */
import { Pool } from 'undici';
import type { Logger } from '../../log.ts';
import type { HttpUpstream, ServerConfig } from '../../config/schema.ts';
import type { DownstreamCredentials } from '../../downstream/types.ts';
import { idKey, isRequest, parseJsonRpcMessage, rememberRaw, serialize, serializeBody, type JsonRpcId, type JsonRpcMessage } from '../jsonrpc.ts';
import { createParser } from 'eventsource-parser';
import { postUpstream, type PostReply } from './http-post.ts';
import { scanResponse, ScannedResponse, type ResponseEnvelope } from '../response-envelope.ts';
import { UpstreamError, type Upstream, type UpstreamConnection, type UpstreamConnectContext } from './types.ts';

export interface HttpUpstreamOptions {
  server: ServerConfig;
  http: HttpUpstream;
  logger: Logger;
  downstream: DownstreamCredentials;
  /** Most pooled connections to the upstream origin. */
  connections?: number;
  /**
   * Most characters an upstream SSE stream may hold unfinished (a line without its end, an event
   * without its blank line) before the gateway cuts it. Default DEFAULT_MAX_SSE_BUFFER_CHARS.
   */
  maxSseBufferChars?: number;
}

/**
 * Default bound on an upstream SSE stream's unfinished line or event, in characters: far above
 * any JSON-RPC message a tool answers with in practice, far below what exhausts the gateway.
 */
export const DEFAULT_MAX_SSE_BUFFER_CHARS = 16 * 1024 * 1024;

/** Pause before listening again on an upstream GET stream that ended, unless the upstream set `retry`. */
const SERVER_STREAM_RETRY_MS = 1000;
/**
 * Least pause before reconnecting to an upstream stream, whatever `retry` it sent: HTML §9.2.6
 * lets a server ask for `retry: 0`, and an upstream that does and then closes at once would have
 * the gateway reconnect in a tight loop.
 */
const MIN_RETRY_MS = 250;
/** Most pause between reopens of an upstream GET stream that keep bringing no message (backoff cap). */
const MAX_SERVER_STREAM_BACKOFF_MS = 30_000;
/** Resumptions of one upstream stream in a row that bring nothing new before the gateway gives up. */
const MAX_FRUITLESS_RESUMES = 3;

/**
 * An upstream SSE stream being followed: for a POST stream, the requests still unanswered on it;
 * the last event ID and `retry` the upstream sent (MCP 2025-11-25 transports §Resumability and
 * Redelivery: the gateway is the upstream's client and resumes with `Last-Event-ID`).
 */
interface UpstreamStream {
  /** idKey → id of each request not answered yet (so a cut stream can answer them with an error). */
  unanswered: Map<string, JsonRpcId> | undefined;
  protocolVersion: string | undefined;
  lastEventId: string | undefined;
  retryMs: number | undefined;
  fruitless: number;
}

/** The upstream's `retry`, at least MIN_RETRY_MS (SERVER_STREAM_RETRY_MS when it sent none). */
function retryDelay(stream: UpstreamStream): number {
  return Math.max(MIN_RETRY_MS, stream.retryMs ?? SERVER_STREAM_RETRY_MS);
}

/**
 * When to reopen the upstream GET stream after `empty` reopens in a row brought no message:
 * the upstream's (clamped) `retry`, doubled per empty reopen up to MAX_SERVER_STREAM_BACKOFF_MS, so
 * an upstream that accepts the GET and closes it at once is not hammered.
 */
function serverStreamReopenDelay(stream: UpstreamStream, empty: number): number {
  const base = retryDelay(stream);
  return Math.min(Math.max(base, MAX_SERVER_STREAM_BACKOFF_MS), base * 2 ** Math.min(empty, 16));
}

/**
 * Wraps an event-stream feed so a chunk ending in CR is not held back: HTML §9.2.5 lets a line end
 * in a bare CR, but a parser that sees CR last cannot know yet whether LF follows (CRLF), so it
 * waits for the next chunk, and an event ending the stream (or an idle stream) would never be
 * dispatched. A trailing CR is fed as CRLF now; an LF opening the next chunk belonged to that CRLF
 * and is dropped. Both readings end exactly one line, so the grammar is unchanged.
 */
export function completeTrailingCr(feed: (text: string) => void): (text: string) => void {
  let owedLf = false;
  return (text) => {
    if (owedLf && text.startsWith('\n')) text = text.slice(1);
    owedLf = false;
    if (text === '') return;
    if (text.endsWith('\r')) {
      owedLf = true;
      text += '\n';
    }
    feed(text);
  };
}

/** Header fields as the flat name/value list undici takes (`Dispatcher.DispatchOptions.headers`). */
function fieldList(headers: Record<string, string>): string[] {
  const list: string[] = [];
  for (const name of Object.keys(headers)) list.push(name, headers[name]!);
  return list;
}

/** A transport failure for the log: the error's message and, when undici wraps one, its cause's. */
function describeTransportError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = err.cause instanceof Error ? `: ${err.cause.message}` : '';
  return `${err.name}: ${err.message}${cause}`;
}

type Body = AsyncIterable<Buffer> & { text(): Promise<string>; dump(): Promise<void>; destroy(): void };

export function createHttpUpstream(options: HttpUpstreamOptions): Upstream {
  const url = new URL(options.http.url);
  const path = `${url.pathname}${url.search}`;
  const pool = new Pool(url.origin, { connections: options.connections ?? 256, keepAliveTimeout: 30_000, pipelining: 1 });
  const live = new Set<UpstreamConnection>();
  const maxBufferSize = options.maxSseBufferChars ?? DEFAULT_MAX_SSE_BUFFER_CHARS;

  return {
    async connect(ctx: UpstreamConnectContext): Promise<UpstreamConnection> {
      const log = options.logger.child({ server: options.server.name, sessionId: ctx.sessionId });
      // Downstream credentials are asked for per request when the server has any (an exchanged
      // token must not outlive its exp in a long session); the first answer also proves at connect
      // time that this caller has them.
      const perRequest = options.server.downstream !== undefined;
      const credentialHeaders = await options.downstream.headersFor(ctx.caller, options.server);
      /** The latest verified caller of this session (GET and DELETE ask for credentials with it). */
      let latestCaller = ctx.caller;
      /** Credentials for a request now: asked again when per request, so the GET stream and DELETE never reuse expired ones. */
      /** The connect-time answer, used once by the first POST of the same caller instead of asking again moments later. */
      let connectCredentials: Record<string, string> | undefined = perRequest ? credentialHeaders : undefined;
      const currentCredentials = async (): Promise<Record<string, string>> => (perRequest ? options.downstream.headersFor(latestCaller, options.server) : credentialHeaders);
      let upstreamSessionId: string | undefined = ctx.upstreamSessionId;
      let closed = false;
      let streamOpen = false;
      /** The upstream GET stream (no requests of its own: reopened by openServerStream, not resumed by pump). */
      const serverStream: UpstreamStream = { unanswered: undefined, protocolVersion: undefined, lastEventId: undefined, retryMs: undefined, fruitless: 0 };
      /** Reopens of the upstream GET stream in a row that brought no message (backoff). */
      let emptyServerStreams = 0;
      // Open upstream SSE bodies, destroyed when the session ends (no AbortController per request:
      // a plain JSON answer needs none, and it costs on the hot path).
      const streams = new Set<Body>();

      const headers = (protocolVersion: string | undefined, accept: string): Record<string, string> => {
        const h: Record<string, string> = { ...options.http.headers, ...credentialHeaders, accept };
        if (upstreamSessionId) h['mcp-session-id'] = upstreamSessionId;
        if (protocolVersion) h['mcp-protocol-version'] = protocolVersion;
        return h;
      };
      // POST headers are the same for every message of a session at one version: built once, as
      // the flat name/value list undici reads by index (an object costs it Object.keys and a
      // lookup per field on every request).
      let post: { sid: string | undefined; version: string | undefined; headers: Record<string, string>; list: string[] } | undefined;
      const postHeaders = (protocolVersion: string | undefined) => {
        if (!post || post.sid !== upstreamSessionId || post.version !== protocolVersion) {
          const h = { ...headers(protocolVersion, 'application/json, text/event-stream'), 'content-type': 'application/json' };
          post = { sid: upstreamSessionId, version: protocolVersion, headers: h, list: fieldList(h) };
        }
        return post;
      };

      const end = (reason: string) => {
        if (closed) return;
        closed = true;
        live.delete(connection);
        for (const b of streams) b.destroy();
        ctx.events.closed(reason);
      };

      /** Hands one upstream message to the session; a failure to route it is logged, never thrown into the reader of the upstream's reply. */
      const deliver = (message: JsonRpcMessage) => {
        try {
          ctx.events.message(message);
        } catch (err) {
          log.warn({ err: (err as Error).message }, 'a message from the HTTP upstream could not be routed; ignored');
        }
      };

      /**
       * The usual answer, one response (a JSON body, or one SSE event), routed by its envelope and
       * forwarded as its text without building its value (response-envelope.ts). Its envelope, or
       * undefined when the scan cannot vouch for it (nothing is delivered then).
       */
      const routeScanned = (text: string): ResponseEnvelope | undefined => {
        const envelope = scanResponse(text);
        if (envelope) deliver(new ScannedResponse(envelope, text));
        return envelope;
      };

      const emit = (value: unknown, text?: string) => {
        const list = Array.isArray(value) ? value : [value];
        for (const v of list) {
          let message: JsonRpcMessage;
          try {
            message = parseJsonRpcMessage(v);
          } catch {
            log.warn('HTTP upstream sent something that is not a JSON-RPC message; ignored');
            continue;
          }
          if (text !== undefined && list.length === 1) rememberRaw(message, text);
          deliver(message);
        }
      };

      /**
       * Reads an SSE body to its end, emitting each message event as it arrives. A POST stream that
       * ends before answering its requests, after the upstream gave event IDs (2025-11-25 SSE
       * polling, or a dropped connection), is resumed with a GET carrying `Last-Event-ID`.
       * Returns how many message events the body carried.
       */
      const pump = async (body: Body, stream: UpstreamStream): Promise<number> => {
        streams.add(body);
        let fresh = false;
        let messages = 0;
        let overflow = false;
        // HTML §9.2.5: the stream is UTF-8; a streaming decoder keeps a character whose bytes
        // straddle two chunks whole (decoding each chunk alone turns it into U+FFFD).
        const decoder = new TextDecoder('utf-8');
        // The WHATWG event-stream grammar (lines end in CRLF, LF or a bare CR) is
        // eventsource-parser's job; its buffer bound cuts an upstream that never ends a line or
        // an event instead of letting it grow the gateway's memory without limit.
        const parser = createParser({
          maxBufferSize,
          onEvent(event) {
            if (event.id !== undefined && event.id !== stream.lastEventId) {
              stream.lastEventId = event.id;
              fresh = true;
            }
            if ((event.event ?? 'message') !== 'message' || !event.data) return;
            messages++;
            const routed = routeScanned(event.data);
            if (routed) {
              stream.unanswered?.delete(idKey(routed.id));
              return;
            }
            let value: unknown;
            try {
              value = JSON.parse(event.data);
            } catch {
              log.warn('HTTP upstream sent an SSE event that is not JSON; ignored');
              return;
            }
            if (stream.unanswered) {
              for (const v of Array.isArray(value) ? value : [value]) {
                const id = (v as { id?: unknown } | null)?.id;
                if ((typeof id === 'string' || typeof id === 'number') && !('method' in (v as object))) stream.unanswered.delete(idKey(id));
              }
            }
            emit(value, event.data);
          },
          onRetry(ms) {
            stream.retryMs = ms;
          },
          onError(err) {
            // Unknown fields and malformed `retry` are ignored (HTML §9.2.6); only the bound ends the stream.
            if (err.type === 'max-buffer-size-exceeded') overflow = true;
          },
        });
        const feed = completeTrailingCr((text) => parser.feed(text));
        try {
          for await (const chunk of body) {
            feed(decoder.decode(chunk, { stream: true }));
            if (overflow) break;
          }
          if (!overflow) feed(decoder.decode());
        } catch (err) {
          if (!closed) log.debug({ err: (err as Error).message }, 'upstream stream ended');
        } finally {
          streams.delete(body);
        }
        if (overflow) {
          body.destroy();
          failOversizedStream(stream);
          return messages;
        }
        stream.fruitless = fresh ? 0 : stream.fruitless + 1;
        if (closed || !stream.unanswered?.size || stream.lastEventId === undefined) return messages;
        if (stream.fruitless >= MAX_FRUITLESS_RESUMES) {
          log.warn({ unanswered: stream.unanswered.size }, 'upstream stream ended unanswered and its resumption brought nothing; giving up');
          return messages;
        }
        setTimeout(() => void resumeUpstream(stream), retryDelay(stream)).unref();
        return messages;
      };

      /**
       * An upstream stream cut for exceeding the buffer bound: each request still waiting on it
       * gets a JSON-RPC internal error (JSON-RPC 2.0 §5.1, -32603) now, instead of waiting for an
       * answer that will never come. Not resumed: the upstream would send the same event again.
       */
      const failOversizedStream = (stream: UpstreamStream) => {
        log.warn({ maxBufferSize, unanswered: stream.unanswered?.size ?? 0 }, 'upstream SSE stream cut: an event or line exceeded the buffer bound');
        for (const id of stream.unanswered?.values() ?? []) {
          emit({ jsonrpc: '2.0', id, error: { code: -32603, message: 'the upstream sent a message larger than the gateway accepts' } });
        }
        stream.unanswered?.clear();
      };

      const resumeUpstream = async (stream: UpstreamStream) => {
        if (closed) return;
        try {
          const credentials = await currentCredentials();
          const res = await pool.request({ path, method: 'GET', headers: { ...headers(stream.protocolVersion, 'text/event-stream'), ...credentials, 'last-event-id': stream.lastEventId! }, bodyTimeout: 0, headersTimeout: 60_000 });
          const body = res.body as unknown as Body;
          if (res.statusCode !== 200 || closed) {
            await body.dump();
            log.warn({ status: res.statusCode }, 'upstream refused to resume a stream (Last-Event-ID); its unanswered requests wait for the session to end');
            return;
          }
          await pump(body, stream);
        } catch (err) {
          if (!closed) log.warn({ err: (err as Error).message }, 'resuming an upstream stream failed');
        }
      };

      /**
       * A 200's JSON body: routed by its envelope when the scan vouches for it (`routeScanned`),
       * else parsed in full (a batch's answers, what the scan leaves to JSON.parse). False when it
       * is not JSON: nothing was delivered.
       */
      const routeJson = (text: string): boolean => {
        if (routeScanned(text)) return true;
        let value: unknown;
        try {
          value = JSON.parse(text);
        } catch {
          return false;
        }
        emit(value, text);
        return true;
      };

      /**
       * The usual answer routed inside undici's onComplete (http-post.ts `EarlyReply`), a turn
       * sooner than `send` would after its await: a 200 with a JSON body. Not a reply that brings
       * the upstream's first session id: `send` records that id, and awaits its recording (MCP
       * 2025-11-25 transports §Session Management: every later request carries it), before the
       * answer is routed. A body that is not JSON goes back to `send`, which refuses it.
       */
      const routeAtOnce = (reply: PostReply): boolean => {
        if (reply.statusCode !== 200 || reply.text === '' || (reply.sessionId !== undefined && !upstreamSessionId)) return false;
        return routeJson(reply.text);
      };

      const connection: UpstreamConnection = {
        async send(messages, protocolVersion, caller) {
          if (closed) throw new UpstreamError('the upstream session has ended');
          latestCaller = caller;
          const cached = postHeaders(protocolVersion);
          let requestHeaders = cached.list;
          if (perRequest) {
            const fresh = connectCredentials && caller === ctx.caller ? connectCredentials : await options.downstream.headersFor(caller, options.server);
            connectCredentials = undefined;
            requestHeaders = fieldList({ ...cached.headers, ...fresh });
          }
          let res: PostReply | undefined;
          try {
            // postUpstream (http-post.ts): the reply's two headers we read, its JSON body read whole,
            // an event stream as a stream; a body we do not read is discarded as it arrives. The
            // usual answer is routed as undici completes it (routeAtOnce); anything else comes back here.
            res = await postUpstream(
              pool,
              {
                path,
                method: 'POST',
                headers: requestHeaders,
                body: messages.length === 1 ? serializeBody(messages[0]!) : `[${messages.map(serialize).join(',')}]`,
                headersTimeout: 60_000,
                bodyTimeout: 0,
              },
              routeAtOnce,
            );
          } catch (err) {
            // The client gets a sentence; undici's message (`connect ECONNREFUSED 10.0.3.7:8080`)
            // names internal addresses and goes to the log only.
            throw new UpstreamError('the upstream server could not be reached', undefined, { reason: describeTransportError(err) });
          }
          if (res === undefined) return;
          const sid = res.sessionId;
          if (sid !== undefined && !upstreamSessionId) {
            upstreamSessionId = sid;
            await ctx.upstreamSessionStarted?.(sid);
          }
          if (res.statusCode === 404 && upstreamSessionId) {
            end('the upstream session ended');
            throw new UpstreamError('the upstream session ended', 404);
          }
          if (res.statusCode === 202) return;
          if (res.statusCode !== 200) {
            throw new UpstreamError('the upstream server refused the request', res.statusCode, { reason: `upstream answered HTTP ${res.statusCode}` });
          }
          if (res.stream) {
            const unanswered = new Map<string, JsonRpcId>();
            for (const m of messages) if (isRequest(m)) unanswered.set(idKey(m.id), m.id);
            void pump(res.stream as unknown as Body, { unanswered, protocolVersion, lastEventId: undefined, retryMs: undefined, fruitless: 0 });
            return;
          }
          if (!res.text || routeJson(res.text)) return;
          throw new UpstreamError('the upstream server sent an invalid answer', 502, { reason: 'upstream answered with a body that is not JSON' });
        },
        openServerStream(protocolVersion) {
          if (closed || streamOpen || !upstreamSessionId) return;
          streamOpen = true;
          let served = false;
          currentCredentials()
            .then((credentials) => {
              // MCP 2025-11-25 transports §Resumability and Redelivery: listening again after a drop
              // resumes after the last event the upstream gave (Last-Event-ID).
              const h = { ...headers(protocolVersion, 'text/event-stream'), ...credentials };
              if (serverStream.lastEventId !== undefined) h['last-event-id'] = serverStream.lastEventId;
              return pool.request({ path, method: 'GET', headers: h, bodyTimeout: 0, headersTimeout: 60_000 });
            })
            .then(async (res) => {
              const body = res.body as unknown as Body;
              if (res.statusCode !== 200 || closed) {
                // 405: the upstream offers no server stream (MCP transports §Listening).
                await body.dump();
                // An upstream that will not resume from our Last-Event-ID: listen afresh instead.
                if (serverStream.lastEventId !== undefined && res.statusCode !== 405) {
                  serverStream.lastEventId = undefined;
                  served = true;
                }
                return;
              }
              served = true;
              const opened = Date.now();
              const messages = await pump(body, serverStream);
              // Empty: no message, and closed before a backoff's worth of time (a stream held open
              // that long was listening, not looping).
              const empty = messages === 0 && Date.now() - opened < MAX_SERVER_STREAM_BACKOFF_MS;
              emptyServerStreams = empty ? emptyServerStreams + 1 : 0;
            })
            .catch(() => {})
            .finally(() => {
              streamOpen = false;
              // MCP 2025-11-25 transports §Listening for Messages from the Server: either side may
              // close the GET stream; the server's messages keep coming only
              // if we listen again. Reopen after a pause while the session lives: the upstream's
              // `retry` (at least MIN_RETRY_MS), backing off while reopens bring nothing.
              if (served && !closed) setTimeout(() => connection.openServerStream(protocolVersion), serverStreamReopenDelay(serverStream, emptyServerStreams)).unref();
            });
        },
        async close(closeOptions) {
          if (closed) return;
          const sid = closeOptions?.keepSession ? undefined : upstreamSessionId;
          closed = true;
          live.delete(connection);
          for (const b of streams) b.destroy();
          // MCP transports §Session Management: a client SHOULD DELETE a session it no longer needs.
          if (sid) {
            try {
              const credentials = await currentCredentials().catch(() => credentialHeaders);
              const res = await pool.request({ path, method: 'DELETE', headers: { ...options.http.headers, ...credentials, 'mcp-session-id': sid }, headersTimeout: 5000, bodyTimeout: 5000 });
              await (res.body as unknown as Body).dump();
            } catch {
              // Best effort: the upstream expires it on its own.
            }
          }
        },
      };
      live.add(connection);
      return connection;
    },
    async close() {
      await Promise.all([...live].map((c) => c.close()));
      await pool.close();
    },
  };
}
