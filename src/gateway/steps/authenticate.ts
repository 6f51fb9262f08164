/**
 * Step 2, authenticate: the bearer token (RFC 6750 §2.1, MCP 2025-11-25 authorization §Token
 * Requirements) is read and verified (token-verifier.ts: signature, `iss`, `aud` per RFC 8707,
 * expiry, revocation). No token is 401 with a bare challenge (RFC 6750 §3.1); a malformed header
 * 400 invalid_request; a bad token 401 invalid_token. Every refusal here is audited under the
 * client's address, as there is no caller to name.
 */
import type { IncomingMessage } from 'node:http';
import type { Caller } from '../../kernel/caller.ts';
import { parseBearerToken } from '../bearer.ts';
import { GatewayError } from '../errors.ts';
import { elapsedUs, type EndpointContext } from './context.ts';

/**
 * The verified caller of this request.
 * @throws GatewayError unauthorized (401), invalid_request (400), invalid_token (401), authorization_server_unavailable (503)
 * @see https://www.rfc-editor.org/rfc/rfc6750#section-3.1
 */
export function authenticate(ctx: EndpointContext, req: IncomingMessage, query: string, started: number): Caller | Promise<Caller> {
  let token: string | undefined;
  try {
    token = parseBearerToken(req, query);
  } catch (err) {
    deny(ctx, req, 'malformed authorization', 0);
    throw err;
  }
  if (token === undefined) {
    deny(ctx, req, 'no access token', 0);
    throw new GatewayError('unauthorized', 'an access token is required', { reason: 'no token' });
  }
  // A token verified before is answered at once: no promise, no turn of the microtask queue.
  // Whatever the synchronous path cannot answer, or fails on, verify decides (and audits).
  let known: Caller | undefined;
  try {
    known = ctx.verifier.verifyNow?.(token, ctx.server);
  } catch {
    known = undefined;
  }
  return known ?? verify(ctx, req, token, started);
}

async function verify(ctx: EndpointContext, req: IncomingMessage, token: string, started: number): Promise<Caller> {
  try {
    return await ctx.verifier.verify(token, ctx.server);
  } catch (err) {
    deny(ctx, req, `invalid token: ${err instanceof GatewayError ? err.reason : 'verification failed'}`, elapsedUs(started));
    throw err;
  }
}

function deny(ctx: EndpointContext, req: IncomingMessage, reason: string, latencyUs: number): void {
  ctx.record({ method: 'http', decision: 'deny', reason, latencyUs, remoteAddress: ctx.clientAddress(req) });
}
