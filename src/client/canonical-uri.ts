/**
 * The canonical URI of an MCP server, used as the RFC 8707 `resource` and as the token-store key.
 * @see MCP 2025-11-25 Authorization §Canonical Server URI; RFC 8707 §2
 */
import { ClientError } from './errors.ts';

/** Lowercase scheme and host (URL does that), no fragment, no trailing slash unless the path is only `/`. */
export function canonicalServerUri(input: string | URL): string {
  let url: URL;
  try {
    url = new URL(String(input));
  } catch {
    throw new ClientError('usage', `not an absolute URL: ${String(input)}`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new ClientError('usage', `an MCP server URL must be http(s), got ${url.protocol}`);
  }
  url.hash = '';
  let text = url.href;
  // RFC 8707 §2 / MCP: SHOULD omit a trailing slash.
  if (url.pathname === '/' && !url.search) text = text.slice(0, -1);
  else if (url.pathname.endsWith('/') && !url.search) text = text.slice(0, -1);
  return text;
}

/** True when the URL is plain http on a loopback host (the only http allowed: RFC 8252 §7.3, MCP SBP). */
export function isLoopbackHttp(url: URL): boolean {
  return url.protocol === 'http:' && (url.hostname === '127.0.0.1' || url.hostname === '[::1]' || url.hostname === 'localhost');
}
