/**
 * The instance-to-instance hop (docs/deployment.md "Scale-out: MCP sessions"): a request for a
 * session whose stdio child lives on another instance is sent on to that instance, unchanged
 * (method, target, headers with the client's own Authorization, body bytes as they arrive), and
 * its answer, SSE included, streamed back untouched.
 *
 * The owner runs its whole pipeline on it again: it verifies the bearer itself (MCP 2025-11-25
 * authorization §Token Handling), checks the session binding and the policy. So the hop grants
 * nothing a client could not ask for directly; what `Warden-Hop` proves is only that a peer sent
 * it, which is what stops a hop from being forwarded again (no loops) and lets the owner refuse a
 * forged one. Its value: `v1.<instance>.<ms>.<HMAC-SHA256>` over the version, the sending
 * instance, the time, the method, the request target, the session ID and a SHA-256 of the
 * Authorization header, keyed with `cluster.secret`. So a captured header is good for that one
 * request, with that one token, for HOP_MAX_AGE_MS.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { Agent, request as httpRequest, type IncomingHttpHeaders, type IncomingMessage, type OutgoingHttpHeaders, type ServerResponse } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { pipeline } from 'node:stream';
import { INSTANCE_ID } from './session-directory.ts';

/** The header a peer's hop carries (lower case, as node reads it). */
export const HOP_HEADER = 'warden-hop';
/** How old (or how far ahead, clock skew) a hop may be. */
export const HOP_MAX_AGE_MS = 30_000;
/** Longest wait for a TCP connection to a peer before it counts as unreachable. */
const CONNECT_TIMEOUT_MS = 1_000;

/** RFC 9110 §7.6.1: connection-specific fields are not forwarded by an intermediary. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', HOP_HEADER]);

export interface HopRequest {
  method: string;
  /** The request target (path and query) as received. */
  target: string;
  sessionId: string;
  authorization: string | undefined;
}

function mac(secret: string, instance: string, at: string, r: HopRequest): string {
  const auth = createHash('sha256').update(r.authorization ?? '').digest('base64url');
  return createHmac('sha256', secret).update(['v1', instance, at, r.method, r.target, r.sessionId, auth].join('\n')).digest('base64url');
}

/** The `Warden-Hop` value proving `r` comes from instance `instance`. */
export function signHop(secret: string, instance: string, r: HopRequest, now: number = Date.now()): string {
  const at = String(now);
  return `v1.${instance}.${at}.${mac(secret, instance, at, r)}`;
}

/**
 * Verifies a `Warden-Hop` value: the sending instance, or undefined when the value is absent.
 * @throws Error with a log-only reason when it is present and not a valid, fresh hop for `r`
 */
export function verifyHop(secret: string, value: string | string[] | undefined, r: HopRequest, now: number = Date.now()): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw new Error('more than one Warden-Hop header');
  const parts = value.split('.');
  const [version, instance, at, given] = parts;
  if (parts.length !== 4 || version !== 'v1' || !instance || !INSTANCE_ID.test(instance) || !at || !/^\d{1,15}$/.test(at) || !given) throw new Error('malformed Warden-Hop header');
  if (Math.abs(now - Number(at)) > HOP_MAX_AGE_MS) throw new Error('stale Warden-Hop header');
  const expected = Buffer.from(mac(secret, instance, at, r));
  const actual = Buffer.from(given);
  // Compared in constant time: the MAC is a secret-derived value.
  if (expected.length !== actual.length || !timingSafeEqual(expected, actual)) throw new Error('Warden-Hop signature does not verify');
  return instance;
}

// No cap on sockets per peer: a forwarded SSE stream holds its socket for as long as it is open,
// and a cap would queue every other forwarded request behind them. Idle sockets are kept for reuse.
const agents = { http: new Agent({ keepAlive: true, maxFreeSockets: 256 }), https: new HttpsAgent({ keepAlive: true, maxFreeSockets: 256 }) };

function forwardedHeaders(headers: IncomingHttpHeaders): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) if (value !== undefined && !HOP_BY_HOP.has(name)) out[name] = value;
  return out;
}

/**
 * What became of a hop: `answered` (an answer began; it ends when either side goes away),
 * `unreachable` (no TCP connection to the owner: refused, timed out, a failure before the socket
 * connected; `res` untouched, the caller decides whether the owner is gone), `aborted` (the
 * client went away first: nothing is concluded about the owner, nothing more is done) or
 * `failed` (connected, then no answer: the owner is there but this request failed; `res`
 * untouched).
 */
export type HopOutcome = 'answered' | 'unreachable' | 'aborted' | 'failed';

/**
 * Whether the client of `res` went away (its connection closed before the answer ended). Not
 * `req.destroyed`: a request is destroyed too once its body has been read.
 */
export function clientGone(res: ServerResponse): boolean {
  return !res.writableFinished && (res.destroyed || res.socket?.destroyed === true);
}

/**
 * Sends `req` on to the instance at `instanceUrl` with `hop` as its proof, and streams the answer
 * to `res` (each side's close closes the other: an SSE stream ends at both).
 * Only a failure to connect is `unreachable`: a client abort makes the socket "hang up" too, and
 * taking that for a dead owner would end a live session for everyone (the caller deletes the
 * entry of a session whose owner is unreachable). `lastOnConnection`, asked when the answer
 * begins: whether it closes the client's connection (this instance is stopping).
 */
export function forwardToInstance(req: IncomingMessage, res: ServerResponse, instanceUrl: string, hop: string, lastOnConnection: () => boolean = () => false): Promise<HopOutcome> {
  // A URL the directory verified and parsed (instance-url.ts parseInstanceUrl); never one read raw from Redis.
  let url: URL;
  try {
    url = new URL(instanceUrl);
  } catch {
    return Promise.resolve('unreachable');
  }
  if (clientGone(res)) return Promise.resolve('aborted');
  const https = url.protocol === 'https:';
  return new Promise((resolve) => {
    let connected = false;
    let answered = false;
    // Settled before an answer began: the client went away, or the request failed.
    let settled = false;
    const settle = (v: HopOutcome) => {
      if (!settled) {
        settled = true;
        resolve(v);
      }
    };
    const out = (https ? httpsRequest : httpRequest)({
      protocol: url.protocol,
      hostname: url.hostname.replace(/^\[|\]$/g, ''),
      port: url.port || (https ? 443 : 80),
      method: req.method,
      path: req.url ?? '/',
      // Host stays the client's: the owner's Host allow-list and audience checks see the same request.
      headers: { ...forwardedHeaders(req.headers), [HOP_HEADER]: hop },
      agent: https ? agents.https : agents.http,
    }, (answer) => {
      answered = true;
      if (settled || clientGone(res)) {
        answer.destroy();
        settle('aborted');
        return;
      }
      // This instance stopping (src/http/drain.ts): the answer closes the client's connection (RFC 9112 §9.6).
      if (lastOnConnection()) res.setHeader('Connection', 'close');
      res.writeHead(answer.statusCode ?? 502, forwardedHeaders(answer.headers));
      // SSE: each event is written on as it arrives (no buffering in between).
      res.flushHeaders();
      // Either side failing or closing destroys both (the owner sees its client go); an error
      // after the headers can only end the answer.
      pipeline(answer, res, () => settle('answered'));
    });
    out.on('socket', (socket) => {
      // A kept-alive socket is connected already.
      if (!socket.connecting) {
        connected = true;
        return;
      }
      const timer = setTimeout(() => out.destroy(new Error('connect timeout')), CONNECT_TIMEOUT_MS);
      socket.once('connect', () => {
        connected = true;
        clearTimeout(timer);
      });
      socket.once('close', () => clearTimeout(timer));
    });
    out.on('error', () => {
      if (answered) return; // the pipeline ends the answer
      // After the client went away this is the destroy below, and the outcome is already 'aborted'.
      settle(connected ? 'failed' : 'unreachable');
    });
    // The client went away before the answer (after it, the pipeline closes both sides).
    res.on('close', () => {
      if (answered || res.writableFinished) return;
      settle('aborted');
      out.destroy();
    });
    req.on('error', () => {
      settle('aborted');
      out.destroy();
    });
    req.pipe(out);
  });
}
