/**
 * The gateway's one error type: a code, its HTTP status, a wire description and a separate
 * internal reason for logs. `sendGatewayError` is the only place an error reaches the wire.
 */
import type { ServerResponse } from 'node:http';
import { renderBearerChallenge } from './challenge.ts';

export type GatewayErrorCode =
  // RFC 6750 §3.1 (and no token at all: a bare challenge)
  | 'unauthorized'
  | 'invalid_request'
  | 'invalid_token'
  | 'insufficient_scope'
  // Streamable HTTP transport (MCP 2025-11-25 basic/transports)
  | 'forbidden_origin'
  | 'unsupported_protocol_version'
  | 'parse_error'
  | 'invalid_message'
  | 'batch_not_allowed'
  | 'session_required'
  | 'session_not_found'
  | 'payload_too_large'
  | 'not_acceptable'
  | 'unsupported_media_type'
  | 'method_not_allowed'
  | 'not_found'
  | 'upstream_unavailable'
  /** Cluster (docs/deployment.md "Scale-out: MCP sessions"): a `Warden-Hop` header that does not verify. */
  | 'forbidden_hop'
  /** Cluster: the session is held by another instance and Redis, which says which, does not answer (503). */
  | 'session_directory_unavailable'
  /** A caller past its session bound (servers[].maxSessionsPerUser): RFC 6585 §4. */
  | 'too_many_sessions'
  /** A session past its pending-request caps (servers[].maxPendingRequests, maxPendingBytes): RFC 6585 §4. */
  | 'too_many_pending_requests'
  /** The issuer's metadata, JWKS or introspection endpoint could not be reached: not the token's fault (503, no challenge). */
  | 'authorization_server_unavailable'
  /** An `initialize` at an instance that is stopping (src/http/drain.ts): another instance, or this one restarted, opens it (503). */
  | 'shutting_down'
  /** The caller's downstream credentials could not be provided (docs/downstream.md): 403 or 502. */
  | 'downstream_credentials'
  | 'internal_error';

const STATUS: Record<GatewayErrorCode, number> = {
  unauthorized: 401,
  invalid_request: 400,
  invalid_token: 401,
  insufficient_scope: 403,
  forbidden_origin: 403,
  unsupported_protocol_version: 400,
  parse_error: 400,
  invalid_message: 400,
  batch_not_allowed: 400,
  session_required: 400,
  session_not_found: 404,
  payload_too_large: 413,
  not_acceptable: 406,
  unsupported_media_type: 415,
  method_not_allowed: 405,
  not_found: 404,
  upstream_unavailable: 502,
  forbidden_hop: 403,
  session_directory_unavailable: 503,
  too_many_sessions: 429,
  too_many_pending_requests: 429,
  authorization_server_unavailable: 503,
  shutting_down: 503,
  downstream_credentials: 403,
  internal_error: 500,
};

/** JSON-RPC 2.0 §5.1 codes for transport errors whose body is a JSON-RPC error without id. */
const JSONRPC_CODE: Partial<Record<GatewayErrorCode, number>> = {
  parse_error: -32700,
  invalid_message: -32600,
  batch_not_allowed: -32600,
  session_required: -32600,
  unsupported_protocol_version: -32600,
  forbidden_origin: -32600,
  session_not_found: -32001,
  payload_too_large: -32600,
  not_acceptable: -32600,
  unsupported_media_type: -32600,
  method_not_allowed: -32600,
  upstream_unavailable: -32603,
  forbidden_hop: -32600,
  session_directory_unavailable: -32603,
  too_many_sessions: -32000,
  too_many_pending_requests: -32000,
  authorization_server_unavailable: -32603,
  shutting_down: -32603,
  downstream_credentials: -32603,
  internal_error: -32603,
};

export interface GatewayErrorOptions {
  /** Why, for logs only; never sent. */
  reason?: string;
  /** Scopes for a Bearer challenge (RFC 6750 §3 `scope`). */
  scope?: string[];
  /** RFC 9110 §15.5.6: methods for a 405. */
  allow?: string;
  /** Overrides the code's usual status (downstream credential failures carry their own). */
  status?: number;
  /** RFC 9110 §10.2.3: seconds after which a 429 or 503 may be retried. */
  retryAfterSeconds?: number;
}

export class GatewayError extends Error {
  override name = 'GatewayError';
  readonly status: number;
  readonly reason: string;
  readonly scope: string[] | undefined;
  readonly allow: string | undefined;
  readonly retryAfterSeconds: number | undefined;

  constructor(readonly code: GatewayErrorCode, readonly description: string, options: GatewayErrorOptions = {}) {
    super(description);
    this.status = options.status ?? STATUS[code];
    this.reason = options.reason ?? description;
    this.scope = options.scope;
    this.allow = options.allow;
    this.retryAfterSeconds = options.retryAfterSeconds;
  }

  get isAuthError(): boolean {
    return this.code === 'unauthorized' || this.code === 'invalid_request' || this.code === 'invalid_token' || this.code === 'insufficient_scope';
  }
}

/** What a stopping instance refuses (src/http/drain.ts): a new session, an adoption after its close, a session its close ended. 503 with Retry-After, so the client tries again and reaches another. */
export function shuttingDown(reason?: string): GatewayError {
  return new GatewayError('shutting_down', 'Service Unavailable: this instance is stopping; retry to reach another', { retryAfterSeconds: 1, ...(reason !== undefined ? { reason } : {}) });
}

export interface RenderContext {
  /** RFC 9728 metadata URL of the server the request was for (challenges need it). */
  resourceMetadata?: string;
  /** Scopes to challenge for on 401 (RFC 6750 §3, MCP Scope Selection Strategy). */
  challengeScope?: string[];
  /** Extra headers (CORS) to send along. */
  headers?: Record<string, string>;
}

/**
 * Writes an error response: Bearer challenges as RFC 6750 §3 with a JSON OAuth error body,
 * transport errors as a JSON-RPC error object without id (MCP transports: "MAY" body).
 * Bodies are never cached (`Cache-Control: no-store`).
 */
export function sendGatewayError(res: ServerResponse, err: GatewayError, ctx: RenderContext = {}): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const headers: Record<string, string> = { 'Content-Type': 'application/json', 'Cache-Control': 'no-store', ...ctx.headers };
  if (err.retryAfterSeconds !== undefined) headers['Retry-After'] = String(err.retryAfterSeconds);
  let body: unknown;
  if (err.isAuthError && ctx.resourceMetadata) {
    const scope = err.scope ?? (err.code === 'insufficient_scope' ? undefined : ctx.challengeScope);
    headers['WWW-Authenticate'] = renderBearerChallenge({
      error: err.code === 'unauthorized' ? undefined : (err.code as 'invalid_request' | 'invalid_token' | 'insufficient_scope'),
      errorDescription: err.code === 'unauthorized' ? undefined : err.description,
      scope: scope && scope.length ? scope.join(' ') : undefined,
      resourceMetadata: ctx.resourceMetadata,
    });
    body = err.code === 'unauthorized' ? { error: 'unauthorized', error_description: err.description } : { error: err.code, error_description: err.description };
  } else if (err.isAuthError) {
    body = { error: err.code, error_description: err.description };
  } else {
    body = { jsonrpc: '2.0', id: null, error: { code: JSONRPC_CODE[err.code] ?? -32600, message: err.description } };
  }
  if (err.allow) headers.Allow = err.allow;
  const payload = JSON.stringify(body);
  headers['Content-Length'] = String(Buffer.byteLength(payload));
  // RFC 9110 §15.5.2: a 401 without a challenge would leave clients guessing (or restarting OAuth).
  res.writeHead(err.status === 401 && !headers['WWW-Authenticate'] ? 403 : err.status, headers);
  res.end(payload);
}
