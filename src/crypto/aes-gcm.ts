/**
 * AES-256-GCM authenticated encryption (NIST SP 800-38D), the one primitive behind everything
 * mcp-warden seals: per-user downstream secrets (src/downstream/secret-box.ts), the client's token
 * files in keychain mode (src/client/keychain/envelope.ts) and the account page's sign-in cookie
 * (src/account/sign-in-cookie.ts). Each caller chooses its own framing and binds its purpose and
 * context as additional authenticated data, so a value sealed for one use never opens in another.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

/** 96-bit IVs: SP 800-38D §8.2.2 allows random ones up to 2^32 messages per key. */
export const IV_BYTES = 12;
/** 128-bit tags: the full strength (SP 800-38D §5.2.1.2). */
export const TAG_BYTES = 16;

export interface AesGcmSealed {
  iv: Buffer;
  ciphertext: Buffer;
  tag: Buffer;
}

/** Encrypts `plaintext` under a 32-byte `key`, authenticating `aad` with it; a fresh random IV each call. */
export function aesGcmSeal(key: Buffer, aad: Buffer, plaintext: Buffer | string): AesGcmSealed {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(aad);
  const ciphertext = Buffer.concat([typeof plaintext === 'string' ? cipher.update(plaintext, 'utf8') : cipher.update(plaintext), cipher.final()]);
  return { iv, ciphertext, tag: cipher.getAuthTag() };
}

/**
 * The plaintext of `sealed`.
 * @throws when the key, the additional data, the IV/tag sizes or any byte are not what was sealed
 */
export function aesGcmOpen(key: Buffer, aad: Buffer, sealed: AesGcmSealed): Buffer {
  if (sealed.iv.length !== IV_BYTES || sealed.tag.length !== TAG_BYTES) throw new Error('not an AES-256-GCM value of ours (IV or tag size)');
  const decipher = createDecipheriv('aes-256-gcm', key, sealed.iv, { authTagLength: TAG_BYTES });
  decipher.setAAD(aad);
  decipher.setAuthTag(sealed.tag);
  return Buffer.concat([decipher.update(sealed.ciphertext), decipher.final()]);
}
