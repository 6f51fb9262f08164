/**
 * Step 3, scope: the scopes every request to this server needs (`servers[].requiredScopes`).
 * A missing one is 403 insufficient_scope (RFC 6750 §3.1) whose `scope` follows the MCP
 * 2025-11-25 authorization §Scope Selection Strategy recommendation: the scopes the caller
 * already holds here plus every required one, so one step-up authorization covers them all.
 */
import type { Caller } from '../../kernel/caller.ts';
import { GatewayError } from '../errors.ts';
import { elapsedUs, type EndpointContext } from './context.ts';

/**
 * @throws GatewayError insufficient_scope (403)
 * @see https://www.rfc-editor.org/rfc/rfc6750#section-3.1
 */
export function checkRequiredScopes(ctx: EndpointContext, caller: Caller, started: number): void {
  const { server } = ctx;
  if (holdsAll(caller.scopes, server.requiredScopes)) return;
  const missing = server.requiredScopes.filter((s) => !caller.scopes.includes(s));
  ctx.record({ caller, method: 'http', decision: 'deny', reason: `missing required scope ${missing.join(' ')}`, latencyUs: elapsedUs(started) });
  const needed = [...new Set([...caller.scopes.filter((s) => server.scopes.includes(s)), ...server.requiredScopes])];
  throw new GatewayError('insufficient_scope', `this server requires the scope ${missing.join(' ')}`, { scope: needed });
}

/** Whether `granted` holds every scope of `required` (a loop: this runs on every request). */
function holdsAll(granted: readonly string[], required: readonly string[]): boolean {
  for (let i = 0; i < required.length; i++) if (!granted.includes(required[i]!)) return false;
  return true;
}
