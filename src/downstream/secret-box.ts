/**
 * AES-256-GCM sealing of one secret, bound to where it belongs: the additional authenticated
 * data names the server and the user, so a row copied to another user or server fails to open.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

export interface SealedSecret {
  /** 96-bit random nonce (NIST SP 800-38D §8.2.2: random IVs, at most 2^32 per key). */
  nonce: Buffer;
  ciphertext: Buffer;
  /** 128-bit authentication tag. */
  tag: Buffer;
}

function aadFor(server: string, user: string): Buffer {
  // Length-prefixed so ("a", "bc") and ("ab", "c") differ.
  return Buffer.from(JSON.stringify(['mcp-warden/downstream-secret/v1', server, user]), 'utf8');
}

/** Encrypts `plaintext` for (server, user). @see NIST SP 800-38D */
export function sealSecret(key: Buffer, server: string, user: string, plaintext: string): SealedSecret {
  const nonce = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, nonce, { authTagLength: 16 });
  cipher.setAAD(aadFor(server, user));
  const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return { nonce, ciphertext, tag: cipher.getAuthTag() };
}

/** Decrypts a sealed secret of (server, user); throws when the key, the binding or the bytes are wrong. */
export function openSecret(key: Buffer, server: string, user: string, sealed: SealedSecret): string {
  const decipher = createDecipheriv('aes-256-gcm', key, sealed.nonce, { authTagLength: 16 });
  decipher.setAAD(aadFor(server, user));
  decipher.setAuthTag(sealed.tag);
  return Buffer.concat([decipher.update(sealed.ciphertext), decipher.final()]).toString('utf8');
}
