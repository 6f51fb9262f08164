/**
 * The answer to a request that arrives between `listen()` and readiness (storage opening, keys
 * loading): 503 with Retry-After (RFC 9110 §15.6.4, §10.2.3), in the language the endpoint
 * speaks, so a client reconnecting after a restart waits and retries instead of giving up:
 * OAuth JSON (RFC 6749 §5.2 `temporarily_unavailable`) on the authorization server and metadata
 * endpoints, the HTML shell on pages, a JSON-RPC error everywhere else (the MCP endpoints).
 */
import type { ServerResponse } from 'node:http';
import { AuthorizationServerError, sendAuthorizationServerError } from '../authorization-server/errors.ts';
import { GatewayError, sendGatewayError } from '../gateway/errors.ts';

/** Seconds a client is asked to wait; start-up takes about a second. */
export const STARTING_UP_RETRY_AFTER_SECONDS = 1;

const DESCRIPTION = 'the server is starting up; retry shortly';

/** @see RFC 9110 §15.6.4 (503), RFC 6749 §4.1.2.1 (temporarily_unavailable), JSON-RPC 2.0 §5.1 */
export function sendStartingUp(res: ServerResponse, pathname: string): void {
  const retryAfterSeconds = STARTING_UP_RETRY_AFTER_SECONDS;
  if (pathname.startsWith('/.well-known/') || pathname.includes('/oauth/')) {
    return sendAuthorizationServerError(res, new AuthorizationServerError('temporarily_unavailable', DESCRIPTION, { retryAfterSeconds }), 'json');
  }
  if (pathname.includes('/interaction/') || pathname.startsWith('/account')) {
    return sendAuthorizationServerError(res, new AuthorizationServerError('temporarily_unavailable', DESCRIPTION, { retryAfterSeconds, title: 'Starting up' }), 'page');
  }
  sendGatewayError(res, new GatewayError('upstream_unavailable', DESCRIPTION, { status: 503 }), { headers: { 'Retry-After': String(retryAfterSeconds) } });
}
