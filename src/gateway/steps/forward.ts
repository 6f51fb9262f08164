/**
 * Step 10, forward (MCP 2025-11-25 transports §Sending Messages to the Server): the allowed
 * messages go upstream; what comes back is routed by the session to this POST's exchange.
 *  - Only notifications and responses: 202 Accepted with no body once the upstream took them.
 *  - Requests: one answer per request, as JSON or as an SSE stream (exchange.ts). A request the
 *    policy denied is answered here with FORBIDDEN_CODE; one whose id is still pending in the
 *    session, or repeated in this batch, with -32600 (MCP basic §Requests: an id MUST NOT be
 *    reused within a session; its answer could otherwise reach the other request's stream).
 *  - A request past the session's pending caps (count, bytes: pending-requests.ts) is refused with
 *    a JSON-RPC error; a POST refused whole for them is 429 with Retry-After (RFC 6585 §4).
 *  - An upstream failure reaches the client as a generic message with the session ID
 *    (upstream-failure.ts).
 */
import type { ServerResponse } from 'node:http';
import type { Caller } from '../../kernel/caller.ts';
import { GatewayError } from '../errors.ts';
import { Exchange } from '../exchange.ts';
import { errorResponse, idKey, isRequest, type JsonRpcMessage, type JsonRpcRequest, type JsonRpcResponse } from '../jsonrpc.ts';
import { tooManyPending } from '../pending-requests.ts';
import type { ProtocolVersion } from '../protocol-version.ts';
import { primesStreams, type Session } from '../session.ts';
import { UpstreamError } from '../upstreams/types.ts';
import type { EndpointContext } from './context.ts';
import type { Cors } from './edge.ts';
import { FORBIDDEN_CODE, filterLists } from './policy.ts';
import type { ClientMessages } from './read-messages.ts';
import { reportUpstreamFailure } from './upstream-failure.ts';

export interface Forwarding {
  res: ServerResponse;
  cors: Cors;
  caller: Caller;
  acceptsSse: boolean;
  session: Session;
  version: ProtocolVersion;
  body: ClientMessages;
  denied: ReadonlyMap<JsonRpcMessage, string>;
}

/**
 * @throws GatewayError session_not_found (404), upstream_unavailable (502) for notifications the upstream refused;
 *   too many pending (429, pending-requests.ts), thrown at once for a single message and as a rejection for a batch
 */
export function forward(ctx: EndpointContext, f: Forwarding): Promise<void> {
  const { body } = f;
  if (!body.batch && body.messages.length === 1 && body.refused.length === 0) return forwardOne(ctx, f, body.messages[0]!);
  return forwardMany(ctx, f);
}

/**
 * One message, the POST every SDK sends: the same rules as forwardMany, without the sets, arrays
 * and spreads a batch needs. Not an async function: its one promise is the `then` on the
 * upstream's, as an async function's own would be, without the state an async function keeps
 * across its `await`. What is refused before the upstream is thrown, to the endpoint's `handle`,
 * which answers it.
 */
function forwardOne(ctx: EndpointContext, f: Forwarding, m: JsonRpcMessage): Promise<void> {
  const { session, body } = f;
  const reason = f.denied.get(m);
  if (!isRequest(m)) return acceptOne(ctx, f, m, reason);
  let refusal: JsonRpcResponse | undefined;
  if (reason !== undefined) refusal = errorResponse(m.id, FORBIDDEN_CODE, `Forbidden: ${reason}`);
  else if (session.isPending(m.id)) refusal = errorResponse(m.id, -32600, 'Invalid Request: this id is already in use in this session');
  else {
    const over = session.admission(body.bytes).refuse(m.id);
    if (over) throw tooManyPending(session, [over]);
  }
  const headers = body.initialize ? { ...f.cors, 'Mcp-Session-Id': session.id } : f.cors;
  if (refusal) {
    openExchange(ctx, f, false, headers).answerLocally(refusal);
    return DONE;
  }
  // send() starts the write at once (an HTTP or stdio upstream writes before its first await), and
  // no upstream's answer can come before a later turn of the event loop: the exchange and the
  // pending entry the answer is routed by are made right after, while the upstream works.
  const sending = send(ctx, session, [m], f.version);
  const exchange = openExchange(ctx, f, false, headers);
  session.track(m.id, m.method, m.params, exchange, body.bytes);
  exchange.expect();
  return sending.then(undefined, (err: unknown) => {
    session.forget(m.id);
    exchange.deliverResponse(errorResponse(m.id, -32603, reportUpstreamFailure(ctx.log, session.id, err, 'upstream refused a message')), undefined);
    if (body.initialize) void session.end('initialize failed upstream');
  });
}

/** A settled promise for what is answered without waiting. */
const DONE: Promise<void> = Promise.resolve();

/**
 * MCP transports §Sending Messages to the Server: a notification or response → 202, no body. A
 * denied notification goes nowhere and is answered the same way (it has no id to answer).
 */
async function acceptOne(ctx: EndpointContext, f: Forwarding, m: JsonRpcMessage, reason: string | undefined): Promise<void> {
  if (reason === undefined) await sendNotifications(ctx, f.session, [m], f.version);
  f.res.writeHead(202, f.cors).end();
}

async function forwardMany(ctx: EndpointContext, f: Forwarding): Promise<void> {
  const { session, body, denied } = f;
  const toSend: JsonRpcMessage[] = [];
  const requests: JsonRpcRequest[] = [];
  const ids = new Set<string>();
  const reused: JsonRpcRequest[] = [];
  // Each request's share of the body counts against the session's pending-bytes cap.
  const share = Math.ceil(body.bytes / Math.max(1, body.messages.length));
  const admission = session.admission(share);
  const overCap: JsonRpcResponse[] = [];
  for (const m of body.messages) {
    if (denied.has(m)) continue;
    if (isRequest(m)) {
      const key = idKey(m.id);
      if (ids.has(key) || session.isPending(m.id)) {
        reused.push(m);
        continue;
      }
      const over = admission.refuse(m.id);
      if (over) {
        overCap.push(over);
        continue;
      }
      ids.add(key);
      requests.push(m);
    }
    toSend.push(m);
  }
  const deniedRequests = [...denied.keys()].filter(isRequest);
  const answeredHere = deniedRequests.length + reused.length + body.refused.length;
  if (overCap.length && requests.length === 0 && answeredHere === 0) throw tooManyPending(session, overCap);

  if (requests.length === 0 && answeredHere === 0 && overCap.length === 0) {
    // MCP transports §Sending Messages to the Server: notifications or responses only → 202, no body.
    if (toSend.length) await sendNotifications(ctx, session, toSend, f.version);
    f.res.writeHead(202, f.cors).end();
    return;
  }

  const headers = body.initialize ? { ...f.cors, 'Mcp-Session-Id': session.id } : f.cors;
  const exchange = openExchange(ctx, f, body.batch, headers);
  for (const r of requests) {
    session.track(r.id, r.method, r.params, exchange, share);
    exchange.expect();
  }
  // Every local answer counted at once, so a batch made only of these gets all of them.
  exchange.answerAllLocally([
    ...deniedRequests.map((r) => errorResponse(r.id, FORBIDDEN_CODE, `Forbidden: ${denied.get(r)}`)),
    ...reused.map((r) => errorResponse(r.id, -32600, 'Invalid Request: this id is already in use in this session')),
    ...body.refused,
    ...overCap,
  ]);
  if (toSend.length === 0) return;
  try {
    await send(ctx, session, toSend, f.version);
  } catch (err) {
    const message = reportUpstreamFailure(ctx.log, session.id, err, 'upstream refused a message');
    for (const r of requests) {
      session.forget(r.id);
      exchange.deliverResponse(errorResponse(r.id, -32603, message), undefined);
    }
    if (body.initialize) void session.end('initialize failed upstream');
  }
}

/** The exchange that answers this POST's requests (exchange.ts), its lists filtered for the caller. */
function openExchange(ctx: EndpointContext, f: Forwarding, batch: boolean, headers: Readonly<Record<string, string>>): Exchange {
  return new Exchange(f.res, f.acceptsSse, batch, headers, filterLists(ctx, f.caller), f.session, primesStreams(f.version), ctx);
}

/** Notifications and responses, answered 202 once the upstream took them. @throws GatewayError session_not_found (404), upstream_unavailable (502) */
async function sendNotifications(ctx: EndpointContext, session: Session, messages: JsonRpcMessage[], version: ProtocolVersion): Promise<void> {
  try {
    await send(ctx, session, messages, version);
  } catch (err) {
    // A session whose upstream is gone is unknown from now on (404: the client re-initializes).
    if (session.ended) throw new GatewayError('session_not_found', 'Session not found');
    throw new GatewayError('upstream_unavailable', reportUpstreamFailure(ctx.log, session.id, err, 'upstream refused a message'));
  }
}

/** The upstream's own promise, not one more around it (this runs for every message). */
function send(ctx: EndpointContext, session: Session, messages: JsonRpcMessage[], version: ProtocolVersion): Promise<void> {
  if (!session.upstream) return Promise.reject(new UpstreamError('no upstream'));
  return session.upstream.send(messages, version, ctx.callers.get(session)!);
}
