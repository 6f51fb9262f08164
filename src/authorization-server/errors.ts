/**
 * The authorization server's one error type and its one renderer.
 *
 * `AuthorizationServerError` carries an RFC error code, its HTTP status, the wire description
 * (what the client or the person reads) apart from the log-only reason, and whether the error
 * may be sent to the client's redirect_uri. `renderAuthorizationServerError` is the only place
 * an AS error becomes a response: a JSON body with `Cache-Control: no-store` on OAuth endpoints
 * (RFC 6749 §5.2), or the HTML shell (src/kernel/html.ts) on pages a browser shows. oidc-provider's
 * own errors reach the wire through here too (its `renderError` hook and the JSON catch-all in
 * index.ts), so a 5xx never shows a library's internal text.
 */
import type { ServerResponse } from 'node:http';
import { html, messagePage, renderPage, type RenderedPage } from '../kernel/html.ts';

export type AuthorizationServerErrorCode =
  // RFC 6749 §4.1.2.1 (authorization endpoint) and §5.2 (token endpoint)
  | 'invalid_request'
  | 'invalid_client'
  | 'invalid_grant'
  | 'unauthorized_client'
  | 'unsupported_grant_type'
  | 'unsupported_response_type'
  | 'unsupported_response_mode'
  | 'invalid_scope'
  | 'access_denied'
  | 'server_error'
  | 'temporarily_unavailable'
  // RFC 7591 §3.2.2 (dynamic client registration, and client ID metadata documents)
  | 'invalid_redirect_uri'
  | 'invalid_client_metadata'
  | 'invalid_software_statement'
  | 'unapproved_software_statement'
  // OpenID Connect Core 1.0 §3.1.2.6 (oidc-provider raises these at the authorization endpoint)
  | 'interaction_required'
  | 'login_required'
  | 'account_selection_required'
  | 'consent_required'
  | 'invalid_request_uri'
  | 'invalid_request_object'
  | 'request_not_supported'
  | 'request_uri_not_supported'
  | 'registration_not_supported'
  // RFC 9449 §5 / §8 (DPoP)
  | 'invalid_dpop_proof'
  | 'use_dpop_nonce'
  // RFC 9396 §5 (rich authorization requests)
  | 'invalid_authorization_details'
  // RFC 8707 §2 (resource indicators)
  | 'invalid_target'
  // RFC 7009 §2.2.1 (revocation)
  | 'unsupported_token_type'
  // RFC 6750 §3.1 (a bearer token presented to the AS, e.g. token exchange's subject_token)
  | 'invalid_token'
  | 'insufficient_scope'
  // RFC 9110 §15.5.5 / §15.5.6: no such endpoint, or not with this method
  | 'not_found'
  | 'method_not_allowed'
  // RFC 6585 §4: rate limits (registrations per address, sign-in attempts)
  | 'too_many_requests';

const STATUS: Record<AuthorizationServerErrorCode, number> = {
  invalid_request: 400,
  // RFC 6749 §5.2: 401 when the client authenticated through the Authorization header.
  invalid_client: 401,
  invalid_grant: 400,
  unauthorized_client: 400,
  unsupported_grant_type: 400,
  unsupported_response_type: 400,
  unsupported_response_mode: 400,
  invalid_scope: 400,
  access_denied: 403,
  server_error: 500,
  temporarily_unavailable: 503,
  invalid_redirect_uri: 400,
  invalid_client_metadata: 400,
  invalid_software_statement: 400,
  unapproved_software_statement: 400,
  interaction_required: 400,
  login_required: 400,
  account_selection_required: 400,
  consent_required: 400,
  invalid_request_uri: 400,
  invalid_request_object: 400,
  request_not_supported: 400,
  request_uri_not_supported: 400,
  registration_not_supported: 400,
  invalid_dpop_proof: 400,
  use_dpop_nonce: 400,
  invalid_authorization_details: 400,
  invalid_target: 400,
  unsupported_token_type: 400,
  invalid_token: 401,
  insufficient_scope: 403,
  not_found: 404,
  method_not_allowed: 405,
  too_many_requests: 429,
};

const CODES = new Set(Object.keys(STATUS));

/** Is `value` one of our codes (e.g. a code oidc-provider rendered)? */
export function isAuthorizationServerErrorCode(value: unknown): value is AuthorizationServerErrorCode {
  return typeof value === 'string' && CODES.has(value);
}

export interface AuthorizationServerErrorOptions {
  /** Why, for logs only; never sent. */
  reason?: string;
  /** Overrides the code's usual status (oidc-provider's own choice, a 401 invalid_client, …). */
  status?: number;
  /**
   * RFC 6749 §4.1.2.1: only once client_id and redirect_uri are validated may an error go to the
   * redirect_uri; everything else is shown to the person (an HTML page) or answered as JSON.
   */
  mayRedirect?: boolean;
  /** Retry-After (seconds) for 429 and 503. RFC 9110 §10.2.3 */
  retryAfterSeconds?: number;
  /** RFC 9110 §15.5.6: the methods a 405 allows. */
  allow?: string;
  /** The heading of the HTML page (default: by code); JSON bodies never carry it. */
  title?: string;
}

/** @see RFC 6749 §5.2, RFC 7591 §3.2.2, RFC 8707 §2, RFC 7009 §2.2.1 */
export class AuthorizationServerError extends Error {
  override name = 'AuthorizationServerError';
  readonly status: number;
  readonly reason: string;
  readonly mayRedirect: boolean;
  readonly retryAfterSeconds: number | undefined;
  readonly allow: string | undefined;
  readonly title: string | undefined;

  constructor(readonly code: AuthorizationServerErrorCode, readonly description: string, options: AuthorizationServerErrorOptions = {}) {
    super(description);
    this.status = options.status ?? STATUS[code];
    this.reason = options.reason ?? description;
    this.mayRedirect = options.mayRedirect ?? false;
    this.retryAfterSeconds = options.retryAfterSeconds;
    this.allow = options.allow;
    this.title = options.title;
  }
}

/** What a person reads on a 5xx: never the library's or the runtime's text. */
const SERVER_ERROR_TEXT = 'Something went wrong on our side. Please try again later.';

/** Page headings by code; the description follows as the page's text. */
const PAGE_TITLE: Partial<Record<AuthorizationServerErrorCode, string>> = {
  not_found: 'Not found',
  method_not_allowed: 'Method not allowed',
  too_many_requests: 'Too many attempts',
  temporarily_unavailable: 'Temporarily unavailable',
  server_error: 'Something went wrong',
};

export interface RenderedError {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/**
 * The one rendering of an AS error. `json`: `{"error","error_description"}` with `no-store`
 * (RFC 6749 §5.1/§5.2). `page`: the HTML shell with the code and the description, for errors
 * that cannot be redirected (RFC 6749 §4.1.2.1: unknown client, unregistered redirect_uri).
 * `requestId` is shown on 5xx so a person can quote it; the log line carries the same id.
 */
export function renderAuthorizationServerError(err: AuthorizationServerError, as: 'json' | 'page', requestId?: string): RenderedError {
  const description = err.code === 'server_error' ? SERVER_ERROR_TEXT : err.description;
  const extra: Record<string, string> = {};
  if (err.retryAfterSeconds !== undefined) extra['Retry-After'] = String(err.retryAfterSeconds);
  if (err.allow) extra.Allow = err.allow;
  // The id the log line of this failure carries, so a report can be matched to it.
  if (err.code === 'server_error' && requestId) extra['X-Request-Id'] = requestId;
  if (as === 'json') {
    return {
      status: err.status,
      headers: { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store', Pragma: 'no-cache', ...extra },
      body: JSON.stringify({ error: err.code, error_description: description }),
    };
  }
  const title = err.title ?? PAGE_TITLE[err.code] ?? 'Authorization error';
  const ref = err.code === 'server_error' && requestId ? html`<p>Reference: <code id="request-id">${requestId}</code></p>` : html``;
  const page: RenderedPage = renderPage(title, html`${messagePage(title, description)}<p>Error code: <code id="error">${err.code}</code></p>${ref}`);
  return { status: err.status, headers: { ...page.headers, ...extra }, body: page.body };
}

/** Writes an AS error to a node:http response (or ends a response already under way). */
export function sendAuthorizationServerError(res: ServerResponse, err: AuthorizationServerError, as: 'json' | 'page', requestId?: string): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  const out = renderAuthorizationServerError(err, as, requestId);
  res.statusCode = out.status;
  for (const [k, v] of Object.entries(out.headers)) res.setHeader(k, v);
  res.end(out.body);
}

/**
 * oidc-provider's `{ error, error_description }` as our error, at the status it chose: its code
 * when it is one of ours; a code of a feature we do not enable is reported as invalid_request
 * (4xx) or server_error (5xx) rather than passed through unchecked.
 */
export function fromOidcProviderError(out: { error?: unknown; error_description?: unknown }, status: number): AuthorizationServerError {
  const code = isAuthorizationServerErrorCode(out.error) ? out.error : status >= 500 ? 'server_error' : 'invalid_request';
  const description = typeof out.error_description === 'string' ? out.error_description : 'the request was refused';
  return new AuthorizationServerError(code, description, { status: status >= 400 ? status : STATUS[code] });
}
