/**
 * AES-256-GCM sealing of one secret, bound to where it belongs: the additional authenticated
 * data names the server and the user, so a row copied to another user or server fails to open.
 */
import { aesGcmOpen, aesGcmSeal } from '../crypto/aes-gcm.ts';

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
  const { iv, ciphertext, tag } = aesGcmSeal(key, aadFor(server, user), plaintext);
  return { nonce: iv, ciphertext, tag };
}

/** Decrypts a sealed secret of (server, user); throws when the key, the binding or the bytes are wrong. */
export function openSecret(key: Buffer, server: string, user: string, sealed: SealedSecret): string {
  return aesGcmOpen(key, aadFor(server, user), { iv: sealed.nonce, ciphertext: sealed.ciphertext, tag: sealed.tag }).toString('utf8');
}
