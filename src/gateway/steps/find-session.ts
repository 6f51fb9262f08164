/**
 * Step 7, session (MCP 2025-11-25 transports §Session Management): every request after
 * initialization names its session in `Mcp-Session-Id`. Without it: 400; unknown, ended, or bound
 * to another caller: 404, so the client re-initializes (503 once the endpoint's close has begun:
 * server-endpoint.ts `fail`). A session presented by another caller is audited and logged
 * (session-registry.ts), never served: a session ID is not authentication (MCP security best
 * practices §Session Hijacking).
 */
import type { IncomingMessage } from 'node:http';
import type { Caller } from '../../kernel/caller.ts';
import type { Session } from '../session.ts';
import type { EndpointContext } from './context.ts';

/**
 * The session of this request, held here (the cluster's routing ran before: a session held by
 * another instance is adopted or forwarded by then, src/cluster/session-routing.ts). Its directory
 * entry is refreshed now and then, never per request.
 * @throws GatewayError session_required (400), session_not_found (404)
 */
export function findSession(ctx: EndpointContext, req: IncomingMessage, caller: Caller): Session {
  const session = ctx.sessions.find(req.headers['mcp-session-id'], caller);
  ctx.sharing?.touched(session);
  return session;
}
