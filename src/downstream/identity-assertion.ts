/**
 * Identity assertions for HTTP upstreams that want to know the caller without OAuth: a short-lived
 * JWT (sub, roles, client_id; aud = the upstream URL) signed with the gateway's own ES256 key,
 * verifiable with the gateway's JWKS at /.well-known/warden-jwks.json. Explicitly typed
 * (`warden-id+jwt`, RFC 8725 §3.11) so it can never pass for an access token.
 */
import { LRUCache } from 'lru-cache';
import { type NowSeconds, systemNowSeconds } from '../kernel/clock.ts';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, SignJWT, type JWK, type JSONWebKeySet } from 'jose';
import type { Caller } from '../kernel/caller.ts';
import type { SettingsStore } from '../storage/downstream-store.ts';

/** Where the gateway's JWKS is served. */
export const WARDEN_JWKS_PATH = '/.well-known/warden-jwks.json';
export const IDENTITY_ASSERTION_TYPE = 'warden-id+jwt';

export interface IdentityAssertionSigner {
  /** The public JWKS that verifies assertions. */
  jwks: JSONWebKeySet;
  /** Signs an assertion of `caller` for the upstream at `audience`. @see RFC 7519 */
  sign(caller: Caller, audience: string, ttlSeconds: number): Promise<string>;
  /**
   * An assertion of `caller` for `audience`: the one signed before for the same facts (subject,
   * client, roles, scopes) while it has more than REUSE_MARGIN_SECONDS (at most half its lifetime)
   * left, else a fresh one. Saves an ES256 signature per upstream request.
   */
  current(caller: Caller, audience: string, ttlSeconds: number): Promise<string>;
}

/** An assertion is reused until this long (at most half its lifetime) before its exp. */
export const REUSE_MARGIN_SECONDS = 30;
/** Assertions remembered (oldest first out). */
const REUSED_ENTRIES = 10_000;

/** Loads the gateway's signing key from the database, generating it the first time. */
export async function createIdentityAssertionSigner(settings: SettingsStore, issuer: string, nowSeconds: NowSeconds = systemNowSeconds): Promise<IdentityAssertionSigner> {
  // Generate before the transaction (it is async); only the first writer's key is kept.
  const { privateKey } = await generateKeyPair('ES256', { extractable: true });
  const candidate = await exportJWK(privateKey);
  candidate.kid = await calculateJwkThumbprint(candidate);
  const stored = JSON.parse(await settings.getOrCreate('identity-assertion-key', () => JSON.stringify(candidate))) as JWK;
  const key = await importJWK({ ...stored, alg: 'ES256' }, 'ES256');
  const { d: _d, ...publicJwk } = stored;
  const signed = new LRUCache<string, { jwt: string; reuseUntil: number }>({ max: REUSED_ENTRIES });
  const signer: IdentityAssertionSigner = {
    jwks: { keys: [{ ...publicJwk, alg: 'ES256', use: 'sig' }] },
    async current(caller, audience, ttlSeconds) {
      // Everything the assertion states is in the key: a caller whose roles or scopes changed gets a new one.
      const key = JSON.stringify([caller.subject, caller.clientId, caller.roles, caller.scopes, audience, ttlSeconds]);
      const t = nowSeconds();
      const hit = signed.get(key);
      if (hit && t < hit.reuseUntil) return hit.jwt;
      const jwt = await signer.sign(caller, audience, ttlSeconds);
      signed.set(key, { jwt, reuseUntil: t + ttlSeconds - Math.min(REUSE_MARGIN_SECONDS, ttlSeconds / 2) });
      return jwt;
    },
    async sign(caller, audience, ttlSeconds) {
      const iat = nowSeconds();
      return new SignJWT({ roles: caller.roles, client_id: caller.clientId, scope: caller.scopes.join(' ') || undefined })
        .setProtectedHeader({ alg: 'ES256', typ: IDENTITY_ASSERTION_TYPE, kid: stored.kid })
        .setIssuer(issuer)
        .setSubject(caller.subject)
        .setAudience(audience)
        .setIssuedAt(iat)
        .setExpirationTime(iat + ttlSeconds)
        .setJti(randomUUID())
        .sign(key);
    },
  };
  return signer;
}

/** A Node request handler that serves `jwks` (RFC 7517 §5) at WARDEN_JWKS_PATH. */
export function createWardenJwksHandler(jwks: JSONWebKeySet): (req: IncomingMessage, res: ServerResponse) => void {
  const body = JSON.stringify(jwks);
  return (req, res) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'application/json', 'cache-control': 'no-store' });
      res.end(JSON.stringify({ error: 'invalid_request', error_description: 'use GET' }));
      return;
    }
    res.writeHead(200, { 'content-type': 'application/jwk-set+json', 'cache-control': 'public, max-age=300', 'access-control-allow-origin': '*' });
    res.end(req.method === 'HEAD' ? undefined : body);
  };
}
