/**
 * Step 1, the edge: what is decided before any credential is looked at.
 *  - `Origin` (MCP 2025-11-25 transports §Security Warning: servers MUST validate Origin to stop
 *    DNS rebinding): a present, unlisted Origin is 403 and audited.
 *  - CORS (Fetch standard §3.2): the allowed Origin is echoed with the headers browser clients read.
 *  - OPTIONS is a preflight, answered here with 204.
 *  - Any method but POST, GET, DELETE is 405 with `Allow` (RFC 9110 §15.5.6).
 * The `Host` allow-list runs before this, for every route (src/http/host.ts).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { GatewayError } from '../errors.ts';
import type { EndpointContext } from './context.ts';

export const ALLOW = 'GET, POST, DELETE, OPTIONS';
const CORS_REQUEST_HEADERS = 'Authorization, Content-Type, Accept, Mcp-Session-Id, MCP-Protocol-Version, Last-Event-ID';
const CORS_EXPOSED_HEADERS = 'Mcp-Session-Id, WWW-Authenticate, MCP-Protocol-Version';

export type Cors = Readonly<Record<string, string>>;

/** The headers of a request without an allowed Origin: none. Shared, never written to. */
export const NO_CORS: Cors = Object.freeze({});
/** The CORS headers per allowed Origin, built once each (the allow-list is the operator's: few values). */
const corsByOrigin = new Map<string, Cors>();
const MAX_CACHED_ORIGINS = 64;

function corsFor(origin: string): Cors {
  let cors = corsByOrigin.get(origin);
  if (!cors) {
    cors = Object.freeze({ 'Access-Control-Allow-Origin': origin, 'Access-Control-Expose-Headers': CORS_EXPOSED_HEADERS, Vary: 'Origin' });
    if (corsByOrigin.size >= MAX_CACHED_ORIGINS) corsByOrigin.clear();
    corsByOrigin.set(origin, cors);
  }
  return cors;
}

/**
 * Returns the CORS headers every later answer carries, or undefined when the request was fully
 * answered here (a preflight).
 * @throws GatewayError forbidden_origin (403), method_not_allowed (405)
 */
export function checkEdge(ctx: EndpointContext, req: IncomingMessage, res: ServerResponse): Cors | undefined {
  let origin: string | undefined;
  try {
    origin = ctx.checkOrigin(req.headers.origin);
  } catch (err) {
    ctx.record({ method: 'http', decision: 'deny', reason: 'origin not allowed' });
    throw err;
  }
  const cors = origin ? corsFor(origin) : NO_CORS;
  if (req.method === 'OPTIONS') {
    res.writeHead(204, { ...cors, 'Access-Control-Allow-Methods': ALLOW, 'Access-Control-Allow-Headers': CORS_REQUEST_HEADERS, 'Access-Control-Max-Age': '600' }).end();
    return undefined;
  }
  if (req.method !== 'POST' && req.method !== 'GET' && req.method !== 'DELETE') {
    throw new GatewayError('method_not_allowed', 'Method Not Allowed', { allow: ALLOW });
  }
  return cors;
}
