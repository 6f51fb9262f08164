/**
 * The token file at rest in keychain mode: the record's JSON sealed with AES-256-GCM (NIST SP
 * 800-38D) under the store's data key. The header (format, alg, key id) and the server URL are
 * bound as additional authenticated data, so a file edited, truncated, or copied over another
 * server's file fails authentication instead of decrypting to something else.
 */
import { aesGcmOpen, aesGcmSeal } from '../../crypto/aes-gcm.ts';
import { z } from 'zod';
import type { DataKey } from './data-key.ts';

export const SEALED_FORMAT = 'mcp-warden-sealed-token-store';

const SealedSchema = z.object({
  format: z.literal(SEALED_FORMAT),
  version: z.literal(1),
  alg: z.literal('A256GCM'),
  kid: z.string().min(1),
  iv: z.string().min(1),
  ciphertext: z.string(),
  tag: z.string().min(1),
  /**
   * The server the record belongs to, sealed on its own under the same key (its own AAD), so
   * `mcp-warden status` can list sealed files without the URL ever being on disk in clear. Files
   * written by older versions lack it.
   */
  server: z.string().optional(),
});

export type Sealed = z.infer<typeof SealedSchema>;

/** Is this parsed JSON a sealed file (as opposed to a plaintext record from file mode or an older version)? */
export function isSealed(value: unknown): boolean {
  return typeof value === 'object' && value !== null && (value as { format?: unknown }).format === SEALED_FORMAT;
}

/** The sealed header, or undefined when the fields are not those of a sealed file. */
export function parseSealed(value: unknown): Sealed | undefined {
  const parsed = SealedSchema.safeParse(value);
  return parsed.success ? parsed.data : undefined;
}

function aad(kid: string, serverUrl: string): Buffer {
  return Buffer.from(JSON.stringify([SEALED_FORMAT, 1, 'A256GCM', kid, serverUrl]));
}

export function seal(key: DataKey, serverUrl: string, plaintext: string): Sealed {
  // SP 800-38D §8.2.2: a random 96-bit IV per message; one key seals few messages, far below 2^32.
  const { iv, ciphertext, tag } = aesGcmSeal(key.key, aad(key.kid, serverUrl), plaintext);
  return {
    format: SEALED_FORMAT,
    version: 1,
    alg: 'A256GCM',
    kid: key.kid,
    iv: iv.toString('base64url'),
    ciphertext: ciphertext.toString('base64url'),
    tag: tag.toString('base64url'),
    server: sealServerName(key, serverUrl),
  };
}

/** AAD of the sealed server name: its own purpose, so it never opens as a record or vice versa. */
function nameAad(kid: string): Buffer {
  return Buffer.from(JSON.stringify([SEALED_FORMAT, 1, 'A256GCM', kid, 'server-name']));
}

function sealServerName(key: DataKey, serverUrl: string): string {
  const { iv, ciphertext, tag } = aesGcmSeal(key.key, nameAad(key.kid), serverUrl);
  return [iv, ciphertext, tag].map((b) => b.toString('base64url')).join('.');
}

/** The server URL a sealed file names, or undefined (older file, other key, tampered). */
export function openServerName(key: DataKey, sealed: Sealed): string | undefined {
  const [iv, ciphertext, tag] = (sealed.server ?? '').split('.');
  if (!iv || ciphertext === undefined || !tag) return undefined;
  try {
    return aesGcmOpen(key.key, nameAad(sealed.kid), { iv: Buffer.from(iv, 'base64url'), ciphertext: Buffer.from(ciphertext, 'base64url'), tag: Buffer.from(tag, 'base64url') }).toString('utf8');
  } catch {
    return undefined;
  }
}

/** The plaintext, or undefined when authentication fails (tampered, truncated, other server, other key). */
export function open(key: DataKey, serverUrl: string, sealed: Sealed): string | undefined {
  try {
    return aesGcmOpen(key.key, aad(sealed.kid, serverUrl), {
      iv: Buffer.from(sealed.iv, 'base64url'),
      ciphertext: Buffer.from(sealed.ciphertext, 'base64url'),
      tag: Buffer.from(sealed.tag, 'base64url'),
    }).toString('utf8');
  } catch {
    return undefined;
  }
}
