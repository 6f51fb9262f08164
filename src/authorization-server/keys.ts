/**
 * Signing keys and cookie secrets of the embedded authorization server: generated on first
 * start, persisted in the Store, rotated by `mcp-warden keys rotate` and reloaded by a running
 * warden without a restart. Tokens are signed with the newest ES256 key; the previous one stays
 * published so tokens it signed verify until they expire.
 */
import { randomBytes } from 'node:crypto';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK } from 'jose';
import type { EmbeddedAuthorizationServerConfig } from '../config/schema.ts';
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
 * The longest an access token this authorization server signs may be valid, in seconds: a key
 * may be retired only after every token it signed expired (RFC 7517 §5), so the longest TTL
 * counts, not the default. MCP server resources use `accessTokenTtlSeconds` (resources.ts);
 * RFC 8693 token exchange signs with the same key for each downstream audience's own
 * `accessTokenTtlSeconds` (up to 3600 s, grants/token-exchange.ts).
 */
export function longestAccessTokenTtlSeconds(embedded: EmbeddedAuthorizationServerConfig): number {
  const exchange = embedded.tokenExchange?.audiences.map((a) => a.accessTokenTtlSeconds) ?? [];
  return Math.max(embedded.accessTokenTtlSeconds, ...exchange);
}

/**
 * Adds a new signing key and retires those beyond the newest two, once every token they signed
 * has expired: a key stops signing when the next one arrives, so it may go `tokenLifetimeMs`
 * after its successor was created (the caller adds the key-check delay and clock skew). Until
 * then it stays published, so two rotations within one token lifetime cut nothing short.
 * `force` retires every previous key at once, the one that was signing included (a compromised
 * key: tokens it signed must stop verifying now, not after their lifetime). A running warden picks the
 * new set up at its next key check (authorizationServer.embedded.signingKeyCheckSeconds) or at
 * once on SIGHUP (keys-reload.ts).
 * @see https://www.rfc-editor.org/rfc/rfc7517#section-5
 */
export async function rotateSigningKey(
  keys: KeyStore,
  now: () => number,
  { tokenLifetimeMs = 0, force = false }: { tokenLifetimeMs?: number; force?: boolean } = {},
): Promise<{ added: KeyRecord; retired: string[]; kept: Array<{ kid: string; retireAfter: number }> }> {
  const added = await newSigningKey(now());
  await keys.add(added);
  const active = await activeSigningKeys(keys);
  const t = now();
  const retired: string[] = [];
  const kept: Array<{ kid: string; retireAfter: number }> = [];
  for (let i = force ? 1 : PUBLISHED_KEYS; i < active.length; i++) {
    // active is newest first: active[i] stopped signing when active[i - 1] was created.
    const retireAfter = active[i - 1]!.createdAt + tokenLifetimeMs;
    if (force || t >= retireAfter) retired.push(active[i]!.kid);
    else kept.push({ kid: active[i]!.kid, retireAfter });
  }
  for (const kid of retired) await keys.retire(kid, t);
  return { added, retired, kept };
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
