/**
 * Step 5, content negotiation (MCP 2025-11-25 transports §Sending Messages to the Server,
 * §Listening for Messages from the Server; RFC 9110 §12.5.1 Accept, §15.5.16 415, §15.5.7 406):
 * a POST carries JSON and accepts JSON or SSE answers; a GET accepts SSE.
 */
import type { IncomingMessage } from 'node:http';
import { accepts, isJsonContentType } from '../accept.ts';
import { GatewayError } from '../errors.ts';

/**
 * Whether a POST's answer may be an SSE stream.
 * @throws GatewayError unsupported_media_type (415), not_acceptable (406)
 */
export function negotiatePost(req: IncomingMessage): { readonly acceptsSse: boolean } {
  if (!isJsonContentType(req.headers['content-type'])) throw new GatewayError('unsupported_media_type', 'Unsupported Media Type: Content-Type must be application/json');
  const accept = req.headers.accept;
  if (accepts(accept, 'text/event-stream')) return SSE;
  if (!accepts(accept, 'application/json')) {
    throw new GatewayError('not_acceptable', 'Not Acceptable: Accept must list application/json and text/event-stream');
  }
  return JSON_ONLY;
}

// The two answers, built once (nothing is allocated per request for them).
const SSE: { readonly acceptsSse: boolean } = Object.freeze({ acceptsSse: true });
const JSON_ONLY: { readonly acceptsSse: boolean } = Object.freeze({ acceptsSse: false });

/**
 * A GET opens an SSE stream: the client must say it accepts one (the clause's "MUST include").
 * @throws GatewayError not_acceptable (406)
 */
export function negotiateGet(req: IncomingMessage): void {
  if (req.headers.accept === undefined || !accepts(req.headers.accept, 'text/event-stream')) {
    throw new GatewayError('not_acceptable', 'Not Acceptable: Accept must list text/event-stream');
  }
}
