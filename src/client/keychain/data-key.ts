/**
 * The token store's data key: 256 random bits, kept in the OS keychain as one item per store
 * (per state folder), base64url-encoded. Its id is a hash prefix of the key, written in the sealed
 * file's header, so a file sealed under a key that has since been deleted or replaced is told
 * apart from a tampered one.
 */
import { createHash, randomBytes } from 'node:crypto';
import { resolve } from 'node:path';

export interface DataKey {
  kid: string;
  key: Buffer;
}

/** The keychain account of the store in `home`; the path is hashed so it needs no escaping. */
export function dataKeyAccount(home: string): string {
  return `token-store-key-${createHash('sha256').update(resolve(home)).digest('hex').slice(0, 16)}`;
}

function keyId(key: Buffer): string {
  return createHash('sha256').update(key).digest('hex').slice(0, 16);
}

/** The key held in a keychain secret, or undefined when the secret is not one of ours. */
export function parseDataKey(secret: string): DataKey | undefined {
  const trimmed = secret.trim();
  if (!/^[A-Za-z0-9_-]{43}$/.test(trimmed)) return undefined;
  const key = Buffer.from(trimmed, 'base64url');
  return key.length === 32 ? { kid: keyId(key), key } : undefined;
}

export function newDataKey(): { key: DataKey; secret: string } {
  const key = randomBytes(32);
  return { key: { kid: keyId(key), key }, secret: key.toString('base64url') };
}
