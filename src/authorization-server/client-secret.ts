/**
 * Client secrets at rest: stored as `sha256$<base64url digest>`, compared in constant time.
 * Our secrets are 256-bit random values (never user-chosen), so a fast hash is enough: there is
 * nothing to brute-force, and the token endpoint stays fast (see docs/benchmarks.md).
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

const PREFIX = 'sha256$';

/** The at-rest form of a client secret. @see RFC 6749 §2.3.1 */
export function hashClientSecret(secret: string): string {
  return PREFIX + createHash('sha256').update(secret, 'utf8').digest('base64url');
}

/** Whether a stored secret is already in its hashed form. */
export function isHashedClientSecret(value: string): boolean {
  return value.startsWith(PREFIX);
}

/** A new client secret: 32 random bytes, base64url. Shown once, then only its hash is kept. */
export function generateClientSecret(): string {
  return randomBytes(32).toString('base64url');
}

/** Constant-time check of a presented secret against the stored (hashed) one. @see RFC 6749 §2.3.1 */
export function verifyClientSecret(stored: string | undefined, presented: string | undefined): boolean {
  if (!stored || typeof presented !== 'string') return false;
  const expected = Buffer.from(isHashedClientSecret(stored) ? stored : hashClientSecret(stored));
  const actual = Buffer.from(hashClientSecret(presented));
  return expected.length === actual.length && timingSafeEqual(expected, actual);
}
