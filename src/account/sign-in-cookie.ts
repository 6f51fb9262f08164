/**
 * A sign-in in progress lives in the browser, not in server memory: its state, nonce, PKCE
 * verifier and return path are sealed (AES-256-GCM) into a cookie of their own. An anonymous
 * request therefore costs the server nothing it has to keep, so no flood of sign-in starts can
 * push out another browser's sign-in in progress (review finding: a bounded in-memory table of
 * pending sign-ins let anyone evict real users' sign-ins).
 *
 * The key is random per process (a restart only means "sign in again"), the expiry is inside the
 * sealed payload (the browser's Max-Age is a hint, not a check), and the purpose is the GCM
 * additional data, so a value sealed for anything else never opens here.
 * @see RFC 6749 §10.12 (state bound to the user agent), RFC 7636 §4 (verifier kept by the client)
 */
import { randomBytes } from 'node:crypto';
import { aesGcmOpen, aesGcmSeal, IV_BYTES, TAG_BYTES } from '../crypto/aes-gcm.ts';
import type { IncomingMessage } from 'node:http';
import { readCookie, type CookieSettings } from './cookies.ts';
import type { PendingSignIn } from './sessions.ts';
import { ACCOUNT_PATH } from './settings.ts';

/** A sign-in still in progress after this long is refused ("Sign-in expired"). */
export const SIGN_IN_MS = 10 * 60_000;
const PURPOSE = Buffer.from('mcp-warden account sign-in v1');
/** Far above a real value (~300 characters); anything longer is not ours and is not decrypted. */
const MAX_VALUE = 2048;

/** `__Host-warden-account-signin` on https, `warden-account-signin` on http. @see RFC 6265bis §4.1.3.2 */
export function signInCookieName(c: CookieSettings): string {
  return c.secure ? '__Host-warden-account-signin' : 'warden-account-signin';
}

/** Seals and opens sign-ins in progress under one key. */
export function createSignInSealer(key: Buffer = randomBytes(32)) {
  if (key.length !== 32) throw new Error('the sign-in cookie key must be 32 bytes (AES-256)');
  return {
    /** The cookie value for this sign-in, valid for SIGN_IN_MS from `now`. */
    seal(pending: PendingSignIn, now: number): string {
      const { iv, ciphertext, tag } = aesGcmSeal(key, PURPOSE, JSON.stringify({ ...pending, exp: now + SIGN_IN_MS }));
      return Buffer.concat([iv, ciphertext, tag]).toString('base64url');
    },
    /** The sign-in sealed in `value`, or undefined when it is missing, altered, not ours or expired. */
    open(value: string | undefined, now: number): PendingSignIn | undefined {
      if (value === undefined || value.length > MAX_VALUE || !/^[A-Za-z0-9_-]+$/.test(value)) return undefined;
      const raw = Buffer.from(value, 'base64url');
      if (raw.length <= IV_BYTES + TAG_BYTES) return undefined;
      let parsed: unknown;
      try {
        const sealed = { iv: raw.subarray(0, IV_BYTES), ciphertext: raw.subarray(IV_BYTES, raw.length - TAG_BYTES), tag: raw.subarray(raw.length - TAG_BYTES) };
        parsed = JSON.parse(aesGcmOpen(key, PURPOSE, sealed).toString('utf8'));
      } catch {
        return undefined;
      }
      if (typeof parsed !== 'object' || parsed === null) return undefined;
      const p = parsed as Record<string, unknown>;
      const strings = ['state', 'nonce', 'codeVerifier', 'returnTo'] as const;
      if (!strings.every((k) => typeof p[k] === 'string') || typeof p.exp !== 'number') return undefined;
      if (now >= p.exp) return undefined;
      return { state: p.state as string, nonce: p.nonce as string, codeVerifier: p.codeVerifier as string, returnTo: p.returnTo as string };
    },
  };
}

export type SignInSealer = ReturnType<typeof createSignInSealer>;

/** The sealed value the browser sent (exactly once), or undefined. @see RFC 6265bis §5.6 */
export function readSignInCookie(req: IncomingMessage, c: CookieSettings): string | undefined {
  return readCookie(req, signInCookieName(c));
}

/** Set-Cookie for a sealed sign-in; `undefined` clears it. Same attributes as the session cookie. */
export function signInCookie(c: CookieSettings, value: string | undefined): string {
  return [
    `${signInCookieName(c)}=${value ?? ''}`,
    `Path=${c.secure ? '/' : ACCOUNT_PATH}`,
    'HttpOnly',
    'SameSite=Lax',
    ...(c.secure ? ['Secure'] : []),
    value === undefined ? 'Max-Age=0' : `Max-Age=${SIGN_IN_MS / 1000}`,
  ].join('; ');
}
