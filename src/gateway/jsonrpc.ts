/**
 * JSON-RPC 2.0 messages as the gateway sees them: parsed once at the edge into a small typed
 * shape; params and results stay opaque (the upstream and the policy engine read them).
 */
import { GatewayError } from './errors.ts';

export type JsonRpcId = string | number;

export interface JsonRpcRequest { jsonrpc: '2.0'; id: JsonRpcId; method: string; params?: unknown }
export interface JsonRpcNotification { jsonrpc: '2.0'; method: string; params?: unknown }
export interface JsonRpcResponse { jsonrpc: '2.0'; id: JsonRpcId | null; result?: unknown; error?: { code: number; message: string; data?: unknown } }
export type JsonRpcMessage = JsonRpcRequest | JsonRpcNotification | JsonRpcResponse;

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
 * The exact JSON text an upstream message arrived as, when it arrived alone. Forwarding that text
 * to the client instead of re-serializing saves a JSON.stringify per hop on the hot path (client
 * messages are always re-serialized: see parseJsonRpcBody). Kept under a symbol key, which
 * JSON.stringify ignores; a message changed on the way (a filtered list) must be serialized with
 * JSON.stringify, since an object spread would copy the stale text.
 */
const RAW = Symbol('raw JSON text');

export function rememberRaw(message: JsonRpcMessage, text: string): void {
  (message as { [RAW]?: string })[RAW] = text;
}

/** The message as JSON text: the text it arrived as when known, else JSON.stringify. */
export function serialize(message: JsonRpcMessage): string {
  return (message as { [RAW]?: string })[RAW] ?? JSON.stringify(message);
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
 * Checks one value is a JSON-RPC 2.0 request, notification or response.
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

/**
 * Parses a POST body: one message, or (when `batch` is returned true) an array of them.
 * @throws GatewayError parse_error (-32700) for invalid JSON, invalid_message (-32600) otherwise
 */
export function parseJsonRpcBody(body: Buffer): { messages: JsonRpcMessage[]; batch: boolean } {
  let value: unknown;
  const text = body.toString('utf8');
  try {
    value = JSON.parse(text);
  } catch {
    throw new GatewayError('parse_error', 'Parse error: the body is not valid JSON');
  }
  if (Array.isArray(value)) {
    if (value.length === 0) throw invalid('empty batch');
    return { messages: value.map(parseJsonRpcMessage), batch: true };
  }
  // The client's text is never forwarded: the upstream gets JSON.stringify of what the policy
  // judged. Raw text can hold duplicate keys ({"name":"env","name":"echo"}) that JSON.parse reads
  // as the last and another parser as the first (RFC 8259 §4: names SHOULD be unique).
  return { messages: [parseJsonRpcMessage(value)], batch: false };
}

export function errorResponse(id: JsonRpcId | null, code: number, message: string): JsonRpcResponse {
  return { jsonrpc: '2.0', id, error: { code, message } };
}
