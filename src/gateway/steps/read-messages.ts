/**
 * Step 6, read: the POST body as JSON-RPC 2.0 messages (RFC 8259 JSON, JSON-RPC 2.0 §4–§6),
 * bounded by `maxBodyBytes` (413) and `maxJsonDepth` (400, checked before JSON.parse: nothing
 * recurses on untrusted depth). Each message is checked against the MCP SDK's own JSON-RPC
 * schemas (message-schema.ts): the SDK server drops a failing one unanswered, so it is answered
 * here (`refused`). `initialize` is never part of a batch (MCP 2025-03-26 transports: the
 * initialize request must be sent alone).
 */
import type { IncomingMessage } from 'node:http';
import { GatewayError } from '../errors.ts';
import { isRequest, parseJsonRpcBody, type JsonRpcMessage, type JsonRpcRequest, type JsonRpcResponse } from '../jsonrpc.ts';
import { readBody } from '../read-body.ts';
import type { EndpointContext } from './context.ts';

export interface ClientMessages {
  messages: JsonRpcMessage[];
  /** Answers to messages that failed the JSON-RPC/MCP envelope schema (never forwarded). */
  refused: JsonRpcResponse[];
  batch: boolean;
  /** Size of the body, for the session's pending-bytes cap. */
  bytes: number;
  /** The initialize request, when this POST opens a session. */
  initialize: JsonRpcRequest | undefined;
  /** Whether any message is a request (one that is answered), initialize included. */
  hasRequest: boolean;
}

/**
 * The messages of the POST: at once when its body had already arrived whole (read-body.ts), no
 * promise and no turn of the microtask queue; else when it has.
 * @throws GatewayError payload_too_large (413), parse_error / invalid_message (400)
 */
export function readMessages(ctx: EndpointContext, req: IncomingMessage): ClientMessages | Promise<ClientMessages> {
  return readBody(req, ctx.config.maxBodyBytes, (body) => messagesOf(ctx, body));
}

function messagesOf(ctx: EndpointContext, body: Buffer): ClientMessages {
  const { messages, refused, batch, bytes } = parseJsonRpcBody(body, { maxDepth: ctx.config.maxJsonDepth });
  let initialize: JsonRpcRequest | undefined;
  let hasRequest = false;
  for (let i = 0; i < messages.length; i++) {
    const m = messages[i]!;
    if (!isRequest(m)) continue;
    hasRequest = true;
    if (!initialize && m.method === 'initialize') initialize = m;
  }
  if (initialize && batch) throw new GatewayError('invalid_message', 'Invalid Request: initialize must not be part of a batch');
  return { messages, refused, batch, bytes, initialize, hasRequest };
}
