/**
 * DPoP (RFC 9449) key for one server, kept with its tokens: a refresh token bound to a key
 * (RFC 9449 §5) is useless without it, so the key pair is stored (as JWKs) in the same 0600 file.
 */
import { calculateJwkThumbprint, type JWK } from 'jose';
import { DpopSession, generateDpopKeyPair, type DpopKeyPair } from '@modelcontextprotocol/client';

export interface StoredDpopKey {
  alg: 'ES256';
  privateJwk: JWK;
  publicJwk: JWK;
}

const ES256 = { name: 'ECDSA', namedCurve: 'P-256' } as const;

/** A new extractable ES256 key pair and its storable form. */
export async function createDpopKey(): Promise<{ keyPair: DpopKeyPair; stored: StoredDpopKey }> {
  const keyPair = await generateDpopKeyPair({ alg: 'ES256', extractable: true });
  const privateJwk = (await crypto.subtle.exportKey('jwk', keyPair.privateKey)) as JWK;
  return { keyPair, stored: { alg: 'ES256', privateJwk, publicJwk: keyPair.publicJwk } };
}

/** Rebuilds the SDK's DPoP session from a stored key. */
export async function sessionFromStoredKey(stored: StoredDpopKey): Promise<DpopSession> {
  const privateKey = await crypto.subtle.importKey('jwk', stored.privateJwk as JsonWebKey, ES256, false, ['sign']);
  const publicKey = await crypto.subtle.importKey('jwk', stored.publicJwk as JsonWebKey, ES256, true, ['verify']);
  const thumbprint = await calculateJwkThumbprint(stored.publicJwk, 'sha256');
  return DpopSession.create({ keyPair: { privateKey, publicKey, publicJwk: stored.publicJwk, thumbprint, alg: stored.alg } });
}
