/**
 * Signing keys and cookie secrets of the embedded authorization server: generated on first
 * start, persisted in the Store, rotated by `mcp-warden keys rotate` and reloaded by a running
 * warden without a restart. Tokens are signed with the newest ES256 key; the previous one stays
 * published so tokens it signed verify until they expire.
 */
import { randomBytes } from 'node:crypto';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK } from 'jose';
import type { KeyRecord, KeyStore } from '../storage/store.ts';

/** How many signing keys stay published: the current one and the one before it. */
const PUBLISHED_KEYS = 2;

async function newSigningKey(now: number): Promise<KeyRecord> {
  const { privateKey } = await generateKeyPair('ES256', { extractable: true });
  const jwk = await exportJWK(privateKey);
  const kid = await calculateJwkThumbprint(jwk);
  return { kid, use: 'sig', jwk: { ...jwk, kid, alg: 'ES256', use: 'sig' }, createdAt: now };
}

/** The active (published) signing keys, newest first; the first signs. */
export async function activeSigningKeys(keys: KeyStore): Promise<KeyRecord[]> {
  return (await keys.list('sig')).filter((k) => k.retiredAt === undefined);
}

/** The active signing keys (newest first), creating the first one when there is none. */
export async function ensureSigningKeys(keys: KeyStore, now: () => number): Promise<KeyRecord[]> {
  let active = await activeSigningKeys(keys);
  if (active.length === 0) {
    await keys.add(await newSigningKey(now()));
    active = await activeSigningKeys(keys);
  }
  return active;
}

/**
 * Adds a new signing key and retires those beyond the newest two. A running warden picks the
 * new set up at its next key check (authorizationServer.embedded.signingKeyCheckSeconds) or at
 * once on SIGHUP (keys-reload.ts).
 */
export async function rotateSigningKey(keys: KeyStore, now: () => number): Promise<{ added: KeyRecord; retired: string[] }> {
  const added = await newSigningKey(now());
  await keys.add(added);
  const active = (await keys.list('sig')).filter((k) => k.retiredAt === undefined);
  const retired = active.slice(PUBLISHED_KEYS).map((k) => k.kid);
  for (const kid of retired) await keys.retire(kid, now());
  return { added, retired };
}

/** Public part of a private JWK. */
/** @see RFC 7517 §4 */
export function toPublicJwk(jwk: JWK): JWK {
  const { d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, k: _k, ...pub } = jwk;
  return pub;
}

/** Secrets for oidc-provider's signed cookies and our CSRF tokens, created on first start. */
export async function ensureCookieKeys(keys: KeyStore, now: () => number): Promise<string[]> {
  let list = (await keys.list('cookie')).filter((k) => k.retiredAt === undefined);
  if (list.length === 0) {
    const k = randomBytes(32).toString('base64url');
    await keys.add({ kid: `cookie-${randomBytes(6).toString('hex')}`, use: 'cookie', jwk: { kty: 'oct', k }, createdAt: now() });
    list = (await keys.list('cookie')).filter((r) => r.retiredAt === undefined);
  }
  return list.map((r) => r.jwk.k!).filter(Boolean);
}
