/**
 * JSON-RPC 2.0 messages as the gateway sees them: parsed once at the edge into a small typed
 * shape; params and results stay opaque (the upstream and the policy engine read them).
 */
import { isUtf8 } from 'node:buffer';
import { GatewayError } from './errors.ts';
import { DEFAULT_MAX_JSON_DEPTH, scanShape } from './json-depth.ts';
import { checkClientMessage } from './message-schema.ts';

export type { JsonRpcId, JsonRpcMessage, JsonRpcNotification, JsonRpcRequest, JsonRpcResponse } from './jsonrpc-types.ts';
import type { JsonRpcId, JsonRpcMessage, JsonRpcNotification, JsonRpcRequest, JsonRpcResponse } from './jsonrpc-types.ts';

export function isRequest(m: JsonRpcMessage): m is JsonRpcRequest {
  return 'method' in m && 'id' in m && m.id !== undefined;
}
export function isNotification(m: JsonRpcMessage): m is JsonRpcNotification {
  return 'method' in m && !('id' in m && m.id !== undefined);
}
export function isResponse(m: JsonRpcMessage): m is JsonRpcResponse {
  return !('method' in m);
}

/**
 * The exact JSON text a message arrived as, when it arrived alone. Forwarding that text instead of
 * re-serializing saves a JSON.stringify per hop on the hot path (a client message keeps its text
 * only when every reader reads it as JSON.parse did: see parseJsonRpcBody). Kept under a symbol key, which
 * JSON.stringify ignores; a message changed on the way (a filtered list) must be serialized with
 * JSON.stringify, since an object spread would copy the stale text.
 */
const RAW = Symbol('raw JSON text');
/** The bytes that text was decoded from, when they are its exact UTF-8 encoding (`serializeBody`). */
const RAW_BYTES = Symbol('raw JSON bytes');

/**
 * Remembers the text `message` arrived as and, when given, the bytes that text was decoded from.
 * The bytes must be valid UTF-8 (RFC 3629), so that they are exactly the text's encoding: the
 * decoder (`Buffer#toString`) replaces each ill-formed sequence with U+FFFD (Unicode §3.9, "U+FFFD
 * Substitution of Maximal Subparts"), and the bytes would then say something other than what was
 * parsed and judged. Without bytes, any remembered earlier are forgotten (a message given a new
 * text, such as a rewritten id, must not be sent as its old bytes); a message that never had bytes
 * gets no such member, so the messages read from an upstream keep one shape.
 */
export function rememberRaw(message: JsonRpcMessage, text: string, bytes?: Buffer): void {
  (message as { [RAW]?: string })[RAW] = text;
  if (bytes !== undefined || RAW_BYTES in message) (message as { [RAW_BYTES]?: Buffer | undefined })[RAW_BYTES] = bytes;
}

/** The message as JSON text: the text it arrived as when known, else JSON.stringify. */
export function serialize(message: JsonRpcMessage): string {
  return (message as { [RAW]?: string })[RAW] ?? JSON.stringify(message);
}

/**
 * The message as a request body: the bytes it arrived as when known, so an HTTP upstream is sent
 * the client's own bytes and nothing is encoded again; else `serialize`'s text.
 */
export function serializeBody(message: JsonRpcMessage): string | Buffer {
  return (message as { [RAW_BYTES]?: Buffer })[RAW_BYTES] ?? serialize(message);
}

/** As `serialize`, on one line (newline-delimited stdio framing). */
export function serializeLine(message: JsonRpcMessage): string {
  const text = serialize(message);
  return text.includes('\n') || text.includes('\r') ? JSON.stringify(message) : text;
}

/** A stable map key for an id: 1 and "1" are different ids (JSON-RPC 2.0 §4). */
export function idKey(id: JsonRpcId): string {
  return typeof id === 'number' ? `n${id}` : `s${id}`;
}

function isId(v: unknown): v is JsonRpcId {
  return typeof v === 'string' || (typeof v === 'number' && Number.isFinite(v));
}

/**
 * Checks one value is a JSON-RPC 2.0 request, notification or response: the lenient check for
 * what an upstream sends (client messages get the MCP SDK's schemas, src/gateway/message-schema.ts).
 * @throws GatewayError invalid_message (-32600)
 * @see https://www.jsonrpc.org/specification#request_object
 */
export function parseJsonRpcMessage(value: unknown): JsonRpcMessage {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalid('not a JSON-RPC object');
  const m = value as Record<string, unknown>;
  if (m.jsonrpc !== '2.0') throw invalid('jsonrpc must be "2.0"');
  if ('method' in m) {
    if (typeof m.method !== 'string' || m.method.length === 0) throw invalid('method must be a non-empty string');
    if ('params' in m && m.params !== undefined && (typeof m.params !== 'object' || m.params === null)) throw invalid('params must be an object or array');
    if ('id' in m && m.id !== undefined && !isId(m.id)) throw invalid('id must be a string or a number');
    return m as unknown as JsonRpcMessage;
  }
  if (!('id' in m) || !(isId(m.id) || m.id === null)) throw invalid('a response needs an id');
  if (('result' in m) === ('error' in m)) throw invalid('a response has exactly one of result and error');
  return m as unknown as JsonRpcMessage;
}

function invalid(why: string): GatewayError {
  return new GatewayError('invalid_message', `Invalid Request: ${why}`);
}

/** A client POST body, parsed: the messages to handle and the answers given in place of invalid ones. */
export interface ParsedBody {
  /** Messages that passed the MCP SDK's envelope schemas (src/gateway/message-schema.ts). */
  messages: JsonRpcMessage[];
  /**
   * Error responses for requests that failed them (their id, or null in a batch when the id
   * itself is invalid, JSON-RPC 2.0 §6): the gateway answers these itself, nothing is forwarded.
   */
  refused: JsonRpcResponse[];
  batch: boolean;
  /** Size of the body in bytes (what the session's pending-request byte cap counts). */
  bytes: number;
}

/**
 * Parses a POST body: one message, or (when `batch` is returned true) an array of them. The
 * nesting depth is checked on the bytes before `JSON.parse` (src/gateway/json-depth.ts), and
 * every message against the MCP SDK's JSON-RPC schemas (src/gateway/message-schema.ts).
 * @throws GatewayError parse_error (-32700) for invalid JSON; invalid_message (-32600, HTTP 400)
 *   for nesting deeper than `maxDepth`, an empty batch, or a lone message that cannot be answered
 *   under an id of its own (a notification, a response, a request whose id is invalid)
 * @see https://www.jsonrpc.org/specification#batch
 */
export function parseJsonRpcBody(body: Buffer, options: { maxDepth?: number } = {}): ParsedBody {
  const maxDepth = options.maxDepth ?? DEFAULT_MAX_JSON_DEPTH;
  // RFC 8259 §9: a parser may limit nesting. Checked before any step that recurses per level. The
  // same pass counts the member names and checks the numbers (forwarding the text as written, below).
  const shape = scanShape(body, maxDepth);
  if (shape.depth > maxDepth) throw invalid(`nesting deeper than ${maxDepth}`);
  const { members, plainNumbers, ascii } = shape;
  let value: unknown;
  const text = body.toString('utf8');
  try {
    value = JSON.parse(text);
  } catch {
    throw new GatewayError('parse_error', 'Parse error: the body is not valid JSON');
  }
  const messages: JsonRpcMessage[] = [];
  const refused: JsonRpcResponse[] = [];
  if (Array.isArray(value)) {
    if (value.length === 0) throw invalid('empty batch');
    for (const v of value) {
      const check = checkClientMessage(v);
      if (check.ok) messages.push(check.message);
      else refused.push(check.refusal);
    }
    return { messages, refused, batch: true, bytes: body.length };
  }
  const check = checkClientMessage(value);
  if (check.ok) {
    // The upstream gets the client's text only when it says exactly what the policy judged;
    // otherwise JSON.stringify of the parsed message. Raw text can hold duplicate member names
    // ({"name":"env","name":"echo"}) that JSON.parse reads as the last and another parser as the
    // first (RFC 8259 §4: names SHOULD be unique), and numbers another parser reads more exactly.
    // The text holds as many member names as the parsed value has own keys unless a name repeats
    // (JSON.parse keeps one of them, whatever escapes spell it).
    // @see https://www.rfc-editor.org/rfc/rfc8259#section-6 (numbers beyond double precision)
    if (plainNumbers && members === countMembers(value)) rememberRaw(check.message, text, ascii || isUtf8(body) ? body : undefined);
    messages.push(check.message);
  }
  // MCP transports §Sending Messages to the Server: input that is not a request the server can
  // answer gets an HTTP error status, with a JSON-RPC error without id as the body.
  else if (check.refusal.id === null) throw new GatewayError('invalid_message', check.refusal.error!.message);
  else refused.push(check.refusal);
  return { messages, refused, batch: false, bytes: body.length };
}

/** Own keys of every object in a parsed JSON value (its depth is already bounded by maxJsonDepth). */
function countMembers(value: unknown): number {
  if (value === null || typeof value !== 'object') return 0;
  let n = 0;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) n += countMembers(value[i]);
    return n;
  }
  const o = value as Record<string, unknown>;
  for (const k in o) n += 1 + countMembers(o[k]);
  return n;
}

export function errorResponse(id: JsonRpcId | null, code: number, message: string): JsonRpcResponse {
  return { jsonrpc: '2.0', id, error: { code, message } };
}
