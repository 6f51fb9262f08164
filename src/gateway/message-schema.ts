/**
 * Each client message checked at the edge against the schemas the upstream will apply: the MCP
 * SDK's own JSON-RPC envelope schemas (`isSpecType.JSONRPCRequest` & co from
 * `@modelcontextprotocol/server`). The SDK server drops a message that fails them without a word
 * (a fractional or unsafe-integer id, `"params": []`, an extra top-level member, a
 * `_meta.progressToken` that is neither string nor integer): forwarded, such a request would wait
 * forever. So the gateway answers it itself, with the error JSON-RPC 2.0 §5.1 names.
 *
 * Only the envelope is checked here (jsonrpc, id, method, params as an object with a valid
 * `_meta`): the SDK answers a known method with wrong params itself (-32602) and an unknown method
 * with -32601, and a newer upstream may know methods this gateway does not.
 */
import { isSpecType } from '@modelcontextprotocol/server';
import type { JsonRpcId, JsonRpcMessage, JsonRpcResponse } from './jsonrpc-types.ts';
import { isJsonObject } from '../kernel/json-object.ts';

/** JSON-RPC 2.0 §5.1 */
export const INVALID_REQUEST = -32600;
/** JSON-RPC 2.0 §5.1 */
export const INVALID_PARAMS = -32602;

/** A message the upstream would accept, or the answer the gateway gives in its place. */
export type ClientMessageCheck =
  | { ok: true; message: JsonRpcMessage }
  | { ok: false; refusal: JsonRpcResponse };

const REQUEST_MEMBERS = new Set(['jsonrpc', 'id', 'method', 'params']);
const NOTIFICATION_MEMBERS = new Set(['jsonrpc', 'method', 'params']);

/**
 * Why a request or notification fails the SDK's envelope schema, in words a person can act on,
 * with the JSON-RPC code: -32600 for the message's shape, -32602 for its params.
 */
function diagnose(m: Record<string, unknown>, members: ReadonlySet<string>): { code: number; message: string } {
  if (typeof m.method !== 'string' || m.method.length === 0) return { code: INVALID_REQUEST, message: 'Invalid Request: method must be a non-empty string' };
  const extra = Object.keys(m).find((k) => !members.has(k));
  if (extra !== undefined) {
    return { code: INVALID_REQUEST, message: `Invalid Request: unexpected member "${extra.slice(0, 64)}" (a ${members.has('id') ? 'request' : 'notification'} holds only ${[...members].join(', ')})` };
  }
  // MCP basic §Requests / §Notifications: params, when present, is an object.
  if (m.params === undefined) return { code: INVALID_REQUEST, message: 'Invalid Request: not a JSON-RPC 2.0 request or notification' };
  if (!isJsonObject(m.params)) return { code: INVALID_PARAMS, message: 'Invalid params: params must be an object' };
  const meta = m.params._meta;
  if (meta !== undefined && !isJsonObject(meta)) return { code: INVALID_PARAMS, message: 'Invalid params: _meta must be an object' };
  // MCP basic/utilities §Progress: a progress token is a string or an integer.
  if (meta !== undefined && meta.progressToken !== undefined && !isSpecType.ProgressToken(meta.progressToken)) {
    return { code: INVALID_PARAMS, message: 'Invalid params: _meta.progressToken must be a string or an integer' };
  }
  return { code: INVALID_PARAMS, message: 'Invalid params: params do not match the MCP schema' };
}

/**
 * Checks one client message against the MCP SDK's JSON-RPC schemas.
 *
 * A request with a usable id gets its refusal under that id; a message whose id itself is invalid
 * (a fraction, beyond 2^53, null, an object) gets `id: null`, as JSON-RPC 2.0 §5 requires when
 * the id cannot be determined. Notifications and responses are refused with `id: null` (no answer
 * exists for them: the HTTP edge turns that into 400).
 * @see https://www.jsonrpc.org/specification#error_object
 * @see MCP 2025-11-25 basic §Requests: "Unlike base JSON-RPC, the ID MUST NOT be null"
 */
/**
 * The plain request or notification every SDK sends, recognised without running the schemas: a
 * subset of what `JSONRPCRequest` / `JSONRPCNotification` accept (jsonrpc "2.0", a string or
 * safe-integer id, a string method, at most `params` besides, an object whose `_meta`, if any, is
 * an object with at most a string or safe-integer `progressToken` of the members the schema
 * types). Anything else, valid or not, is judged by the SDK's schemas below.
 */
function isPlainMessage(m: Record<string, unknown>): boolean {
  if (typeof m.method !== 'string') return false;
  const hasId = 'id' in m;
  if (hasId && typeof m.id !== 'string' && !Number.isSafeInteger(m.id)) return false;
  let members = 0;
  for (const k in m) {
    if (k !== 'jsonrpc' && k !== 'method' && k !== 'params' && k !== 'id') return false;
    members++;
  }
  if (members !== 2 + (hasId ? 1 : 0) + ('params' in m ? 1 : 0)) return false;
  if (!('params' in m)) return true;
  const params = m.params;
  if (!isJsonObject(params)) return false;
  const meta = params._meta;
  if (meta === undefined) return !('_meta' in params);
  if (!isJsonObject(meta) || RELATED_TASK_META_KEY in meta) return false;
  const token = meta.progressToken;
  return token === undefined ? !('progressToken' in meta) : typeof token === 'string' || Number.isSafeInteger(token);
}

/** A `_meta` member the SDK's schema types (an object with a string `taskId`); left to the schema. */
const RELATED_TASK_META_KEY = 'io.modelcontextprotocol/related-task';

function refuse(id: JsonRpcId | null, code: number, message: string): ClientMessageCheck {
  return { ok: false, refusal: { jsonrpc: '2.0', id, error: { code, message } } };
}

export function checkClientMessage(value: unknown): ClientMessageCheck {
  if (!isJsonObject(value)) return refuse(null, INVALID_REQUEST, 'Invalid Request: a message is a JSON object');
  // Not JSON-RPC 2.0 at all (1.0 has other id rules): nothing in it, its id included, is read.
  if (value.jsonrpc !== '2.0') return refuse(null, INVALID_REQUEST, 'Invalid Request: jsonrpc must be "2.0"');
  if (isPlainMessage(value)) return { ok: true, message: value as unknown as JsonRpcMessage };
  if ('method' in value) {
    if ('id' in value) {
      // MCP basic §Requests: a string or an integer; the SDK's integer is a safe integer.
      if (!isSpecType.RequestId(value.id)) return refuse(null, INVALID_REQUEST, 'Invalid Request: id must be a string or an integer between -(2^53-1) and 2^53-1');
      if (isSpecType.JSONRPCRequest(value)) return { ok: true, message: value as unknown as JsonRpcMessage };
      const why = diagnose(value, REQUEST_MEMBERS);
      return refuse(value.id as JsonRpcId, why.code, why.message);
    }
    if (isSpecType.JSONRPCNotification(value)) return { ok: true, message: value as unknown as JsonRpcMessage };
    const why = diagnose(value, NOTIFICATION_MEMBERS);
    return refuse(null, why.code, why.message);
  }
  if (isSpecType.JSONRPCResponse(value)) return { ok: true, message: value as unknown as JsonRpcMessage };
  // JSON-RPC 2.0 §5: an error response whose request id could not be read carries id null; the
  // SDK's schema spells that as no id. Let it through as the client wrote it.
  if (value.id === null && 'error' in value && isSpecType.JSONRPCErrorResponse({ ...value, id: undefined })) {
    return { ok: true, message: value as unknown as JsonRpcMessage };
  }
  return refuse(null, INVALID_REQUEST, 'Invalid Request: not a JSON-RPC 2.0 request, notification or response');
}
