import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { exportJWK, generateKeyPair, SignJWT, type JSONWebKeySet, type JWK } from 'jose';
import { parseConfig } from '../../src/config/load.ts';
import { createTokenVerifier } from '../../src/gateway/token-verifier.ts';
import { GatewayError } from '../../src/gateway/errors.ts';

const ISSUER = 'http://127.0.0.1:9';
const config = parseConfig({ publicUrl: ISSUER, servers: [{ name: 's', path: '/s', upstream: { stdio: { command: 'true' } } }] });
const server = config.servers[0]!;

async function signingKey(kid: string) {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  const jwk: JWK = { ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' };
  let n = 0;
  /** An RFC 9068 access token for the server, signed with this key (as one who holds it would). */
  const mint = () => new SignJWT({ scope: '', client_id: 'c', jti: `${kid}-${n++}` })
    .setProtectedHeader({ alg: 'ES256', kid, typ: 'at+jwt' })
    .setSubject('u').setIssuer(ISSUER).setAudience(`${ISSUER}/s`)
    .setIssuedAt().setExpirationTime('5m')
    .sign(privateKey);
  return { jwk, mint };
}

async function refusal(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof GatewayError, String(err));
    return err.code;
  }
  return 'accepted';
}

describe('gateway verifier: the embedded AS key set is read at every verification (RFC 7517 §5, RFC 9068 §4)', () => {
  it('keys rotate --force: a token naming the retired kid is refused once the AS publishes a set without it', async () => {
    const a = await signingKey('A');
    const b = await signingKey('B');
    // The AS hands out one frozen object per key set (src/authorization-server/index.ts publicJwks).
    let set: JSONWebKeySet = Object.freeze({ keys: [a.jwk] });
    const verifier = createTokenVerifier({ config, publicJwks: async () => set });
    await verifier.verify(await a.mint(), server);
    set = Object.freeze({ keys: [b.jwk] });
    assert.equal(await refusal(verifier.verify(await a.mint(), server)), 'invalid_token', 'a new token signed with the retired key');
    await verifier.verify(await b.mint(), server);
  });

  it('keys rotate --force: a token verified (and cached) before the rotation is refused after it, although its exp is far off', async () => {
    const a = await signingKey('A');
    const b = await signingKey('B');
    let set: JSONWebKeySet = Object.freeze({ keys: [b.jwk, a.jwk] });
    const verifier = createTokenVerifier({ config, publicJwks: async () => set });
    const used = await a.mint();
    await verifier.verify(used, server);
    await verifier.verify(used, server); // served from the cache while A is published
    set = Object.freeze({ keys: [b.jwk] });
    assert.equal(await refusal(verifier.verify(used, server)), 'invalid_token');
  });

  it('a plain rotation (the previous key stays published): cached and new tokens of the previous key still verify', async () => {
    const a = await signingKey('A');
    const b = await signingKey('B');
    let set: JSONWebKeySet = Object.freeze({ keys: [a.jwk] });
    const verifier = createTokenVerifier({ config, publicJwks: async () => set });
    const used = await a.mint();
    await verifier.verify(used, server);
    set = Object.freeze({ keys: [b.jwk, a.jwk] });
    await verifier.verify(used, server);
    await verifier.verify(await a.mint(), server);
    await verifier.verify(await b.mint(), server);
  });

  it('the synchronous path reads the key set too: after a forced rotation a cached token is not answered at once; with keys behind a promise nothing is', async () => {
    const a = await signingKey('A');
    const b = await signingKey('B');
    let set: JSONWebKeySet = Object.freeze({ keys: [b.jwk, a.jwk] });
    const verifier = createTokenVerifier({ config, publicJwks: () => set });
    const used = await a.mint();
    await verifier.verify(used, server);
    assert.equal(verifier.verifyNow(used, server)?.subject, 'u', 'cached, and A still published');
    set = Object.freeze({ keys: [b.jwk] });
    assert.equal(verifier.verifyNow(used, server), undefined, 'the set changed: the cache was cleared');
    assert.equal(await refusal(verifier.verify(used, server)), 'invalid_token');
    const later = createTokenVerifier({ config, publicJwks: async () => set });
    const current = await b.mint();
    await later.verify(current, server);
    assert.equal(later.verifyNow(current, server), undefined, 'a key set that comes as a promise cannot be checked at once');
  });
});
