/**
 * The client's one error type, ClientError, and the two errors the stdio bridge's transport throws
 * for failure.ts to word. "The server said no" (an OAuth error response, kept as the SDK's
 * OAuthError) stays apart from the failures below: the server broke the protocol, the local store
 * is unusable, or the user/browser step failed.
 */
export type ClientErrorCode =
  | 'protocol_error' // a server or AS broke the protocol (bad metadata, wrong issuer, no S256)
  | 'pkce_unsupported' // RFC 7636 / MCP: the AS does not advertise S256
  | 'invalid_state' // RFC 6749 §10.12: callback state missing or different
  | 'access_denied' // the AS returned an error to the redirect URI
  | 'login_required' // no usable token and no interactive login allowed
  | 'store_corrupt' // the token store file could not be parsed, decrypted or authenticated
  | 'keychain_unavailable' // the OS keychain the token store needs cannot be reached
  | 'lock_timeout' // another process held the refresh lock too long
  | 'insufficient_scope' // step-up retries exhausted (MCP 2025-11-25 scope challenge handling)
  | 'unsafe_url' // MCP security best practices: authorization URL is not https / loopback http
  | 'unreachable' // no HTTP answer at all: connection refused, unknown host, TLS failure, timeout
  | 'not_mcp_endpoint' // the URL answers HTTP, but not as an MCP Streamable HTTP endpoint
  | 'token_rejected' // RFC 6750 §3.1: the server refused the access token even after a new sign-in
  | 'server_error' // the MCP server answered the request with an HTTP error (status in the message)
  | 'usage'; // a bad argument from the caller

export class ClientError extends Error {
  override name = 'ClientError';
  constructor(
    readonly code: ClientErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export function isClientError(value: unknown, code?: ClientErrorCode): value is ClientError {
  return value instanceof ClientError && (code === undefined || value.code === code);
}

/**
 * An HTTP status the stdio bridge's transport (streamable-http.ts) cannot carry on from (401 and
 * 403 were already the full client's). failure.ts words it as it words the SDK's SdkHttpError.
 */
export class HttpStatusError extends Error {
  override name = 'HttpStatusError';
  constructor(
    readonly status: number,
    readonly statusText: string,
    readonly method: string,
  ) {
    super(`${method} answered HTTP ${status}${statusText ? ` ${statusText}` : ''}`);
  }
}

/** The bridge's transport got a 2xx answer that is neither JSON nor an event stream (transports: one of the two). */
export class UnexpectedContentError extends Error {
  override name = 'UnexpectedContentError';
  constructor(readonly contentType: string) {
    super(`Unexpected content type: ${contentType || 'none'}`);
  }
}
