/**
 * The account page's keys: the HMAC key of its CSRF tokens, the AES-256-GCM key that seals a
 * sign-in in progress into the browser's cookie (sign-in-cookie.ts), and the HMAC key that
 * authenticates a session record kept in Redis (src/cluster/account-sessions.ts). All are derived (HKDF,
 * RFC 5869) from one random secret generated once and kept in the database's settings, so every
 * instance of a deployment holds the same keys: a form rendered by instance A is accepted by
 * instance B, and a sign-in started on A may come back to B. Each key has its own HKDF `info`,
 * so none can stand in for another.
 */
import { hkdfSync, randomBytes } from 'node:crypto';
import type { SettingsStore } from '../storage/downstream-store.ts';

/** The settings entry that holds the secret both keys are derived from. */
export const ACCOUNT_PAGE_SECRET_SETTING = 'account-page-secret';

export interface AccountPageKeys {
  /** For createCsrf (src/kernel/csrf.ts). */
  csrfSecret: string;
  /** 32 bytes, for createSignInSealer. */
  signInKey: Buffer;
  /** 32 bytes: HMAC of a session record kept outside this process (Redis cannot mint sessions). */
  sessionRecordKey: Buffer;
}

/** @see https://www.rfc-editor.org/rfc/rfc5869 (HKDF), OWASP CSRF Cheat Sheet (HMAC-based tokens) */
export function deriveAccountPageKeys(secret: Buffer): AccountPageKeys {
  const derive = (info: string) => Buffer.from(hkdfSync('sha256', secret, Buffer.alloc(0), `mcp-warden account page ${info}`, 32));
  return { csrfSecret: derive('csrf v1').toString('base64url'), signInKey: derive('sign-in cookie v1'), sessionRecordKey: derive('session record v1') };
}

/** The deployment's account page keys, creating their secret on the first start. */
export async function loadAccountPageKeys(settings: SettingsStore): Promise<AccountPageKeys> {
  const secret = await settings.getOrCreate(ACCOUNT_PAGE_SECRET_SETTING, () => randomBytes(32).toString('base64url'));
  return deriveAccountPageKeys(Buffer.from(secret, 'base64url'));
}
