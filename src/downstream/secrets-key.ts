/**
 * The key that encrypts per-user downstream secrets: 32 bytes, base64, from an environment
 * variable or a key file, never from the config file itself. A key check value kept in the
 * database tells a wrong key from a right one at start-up, before any secret is needed.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { SecretsKeyError } from './errors.ts';
import type { SecretsKeyConfig } from './schema.ts';

/**
 * Reads the 256-bit key named by `source`: the file when given, else the env variable.
 * @see NIST SP 800-38D (AES-GCM) for the key size.
 */
export function loadSecretsKey(source: SecretsKeyConfig, env: NodeJS.ProcessEnv): Buffer {
  let text: string | undefined;
  let where: string;
  if (source.file !== undefined) {
    where = `key file ${source.file}`;
    try {
      text = readFileSync(source.file, 'utf8');
    } catch (err) {
      throw new SecretsKeyError(`cannot read the secrets ${where} (${(err as NodeJS.ErrnoException).code ?? 'error'}). Create it with: openssl rand -base64 32 > ${source.file}`);
    }
  } else {
    where = `environment variable ${source.env}`;
    text = env[source.env];
    if (text === undefined || text.trim() === '') {
      throw new SecretsKeyError(`the secrets key is missing: set ${source.env} to 32 random bytes in base64 (openssl rand -base64 32), or configure downstream.perUserSecret.key.file`);
    }
  }
  return parseSecretsKey(text, where);
}

/** Parses base64 (standard or url-safe) text into exactly 32 bytes. */
export function parseSecretsKey(text: string, where: string): Buffer {
  const trimmed = text.trim();
  if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(trimmed)) {
    throw new SecretsKeyError(`the secrets key in ${where} is not base64. Generate one with: openssl rand -base64 32`);
  }
  const key = Buffer.from(trimmed.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
  if (key.length !== 32) {
    throw new SecretsKeyError(`the secrets key in ${where} is ${key.length} bytes; AES-256-GCM needs exactly 32 (openssl rand -base64 32)`);
  }
  return key;
}

/** A key check value: HMAC-SHA-256 of a fixed label, so the stored value reveals nothing of the key. */
export function keyCheckValue(key: Buffer): Buffer {
  return createHmac('sha256', key).update('mcp-warden downstream secrets key check v1').digest();
}

export function isKeyCheckValue(key: Buffer, stored: Buffer): boolean {
  const expected = keyCheckValue(key);
  return stored.length === expected.length && timingSafeEqual(stored, expected);
}
