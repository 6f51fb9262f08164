/**
 * Reading the access token from a request: `Authorization: Bearer` only (RFC 6750 §2.1,
 * MCP authorization "Token Requirements"). A token in the query string is refused (RFC 6750 §2.3
 * is not supported; MCP clients MUST NOT put tokens in the URI).
 */
import type { IncomingMessage } from 'node:http';
import { GatewayError } from './errors.ts';

// RFC 6750 §2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
const B64TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;

/**
 * The last well-formed header and its token. A client sends the same header with every request
 * until its token changes, so the next one is answered by one string comparison, without the
 * regular expression; and the token returned is the same string each time, whose hash V8 keeps,
 * so the verified-token cache finds it without hashing ~1 kB of text again. It holds a token the
 * verified-token cache holds anyway.
 */
let lastHeader: string | undefined;
let lastToken = '';

/**
 * Returns the bearer token, or undefined when the request carries none.
 * @throws GatewayError invalid_request for a malformed header or a token in the query
 * @see https://www.rfc-editor.org/rfc/rfc6750#section-2.1
 */
export function parseBearerToken(req: IncomingMessage, query: string): string | undefined {
  if (query && /(?:^|&)access_token=/.test(query)) {
    throw new GatewayError('invalid_request', 'access tokens are accepted only in the Authorization header', { reason: 'token in query string' });
  }
  const header = req.headers.authorization;
  if (header === undefined) return undefined;
  if (header === lastHeader) return lastToken;
  // The scheme is case-insensitive (RFC 9110 §11.1); exactly one SP separates it from the token.
  const space = header.indexOf(' ');
  const scheme = space === -1 ? header : header.slice(0, space);
  if (scheme.toLowerCase() !== 'bearer') {
    throw new GatewayError('invalid_request', 'the Authorization header must use the Bearer scheme', { reason: `scheme ${scheme.slice(0, 20)}` });
  }
  const token = header.slice(space + 1).trim();
  if (space === -1 || !B64TOKEN.test(token)) {
    throw new GatewayError('invalid_request', 'malformed Bearer credentials', { reason: 'bad b64token' });
  }
  lastHeader = header;
  lastToken = token;
  return token;
}
