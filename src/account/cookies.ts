/**
 * The account session cookie (RFC 6265bis): HttpOnly, SameSite=Lax (the authorization server's
 * redirect back is a top-level GET, which Lax lets through), Path=/account. On https it is
 * Secure with the `__Host-` prefix, which RFC 6265bis §4.1.3.2 allows only with `Path=/`: there
 * the prefix's guarantee (no Domain, so no sibling subdomain can plant or shadow it) is worth more
 * than narrowing the path inside one origin, which is no security boundary.
 */
import type { IncomingMessage } from 'node:http';
import { ACCOUNT_PATH } from './settings.ts';

export interface CookieSettings {
  secure: boolean;
}

/** `__Host-warden-account` on https, `warden-account` on http. @see RFC 6265bis §4.1.3.2 */
export function sessionCookieName(c: CookieSettings): string {
  return c.secure ? '__Host-warden-account' : 'warden-account';
}

/**
 * The value of the cookie `name`, when the browser sent it exactly once; a name sent twice (a
 * planted cookie beside ours) counts as none. @see RFC 6265bis §5.6 (Cookie header)
 */
export function readCookie(req: IncomingMessage, name: string): string | undefined {
  let found: string | undefined;
  let count = 0;
  for (const pair of (req.headers.cookie ?? '').split(';')) {
    const eq = pair.indexOf('=');
    if (eq === -1 || pair.slice(0, eq).trim() !== name) continue;
    count += 1;
    found = pair.slice(eq + 1).trim();
  }
  return count === 1 && found ? found : undefined;
}

/** The session id the browser sent, or undefined (also when malformed or sent twice). */
export function readSessionId(req: IncomingMessage, c: CookieSettings): string | undefined {
  const found = readCookie(req, sessionCookieName(c));
  return found && /^[A-Za-z0-9_-]{43}$/.test(found) ? found : undefined;
}

/** Set-Cookie for the session id; `undefined` clears it. */
export function sessionCookie(c: CookieSettings, id: string | undefined): string {
  const attributes = [
    `${sessionCookieName(c)}=${id ?? ''}`,
    `Path=${c.secure ? '/' : ACCOUNT_PATH}`,
    'HttpOnly',
    'SameSite=Lax',
    ...(c.secure ? ['Secure'] : []),
    ...(id === undefined ? ['Max-Age=0'] : []),
  ];
  return attributes.join('; ');
}
