/**
 * The gateway's verifier and the embedded AS's revocation list together (RFC 7009 §2.1): the list
 * is asked at every use of a token, verified-token cache hits included, and answers from memory,
 * so no verification reaches the Store (counted through a wrapper around it).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { exportJWK, generateKeyPair, SignJWT, type JSONWebKeySet } from 'jose';
import { parseConfig } from '../../src/config/load.ts';
import { createTokenVerifier } from '../../src/gateway/token-verifier.ts';
import { GatewayError } from '../../src/gateway/errors.ts';
import { createRevocationList, revocationHorizonMs } from '../../src/authorization-server/revocation.ts';
import { createMemoryStore } from '../../src/storage/memory/store.ts';
import type { RevocationStore } from '../../src/storage/store.ts';

const ISSUER = 'http://127.0.0.1:9';
const config = parseConfig({ publicUrl: ISSUER, servers: [{ name: 's', path: '/s', upstream: { stdio: { command: 'true' } } }] });
const server = config.servers[0]!;

async function refusal(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof GatewayError, String(err));
    return `${err.code}: ${err.message}`;
  }
  return 'accepted';
}

describe('gateway verifier with the revocation list (RFC 7009 §2.1)', () => {
  it('RFC 7009 §2.1: every use asks the list, cache hits included, and not one verification calls the Store', async () => {
    const { privateKey, publicKey } = await generateKeyPair('ES256');
    const jwks: JSONWebKeySet = Object.freeze({ keys: [{ ...(await exportJWK(publicKey)), kid: 'k', alg: 'ES256', use: 'sig' }] });
    const mint = (jti: string, grantId: string) => new SignJWT({ scope: '', client_id: 'c', jti, grant_id: grantId })
      .setProtectedHeader({ alg: 'ES256', kid: 'k', typ: 'at+jwt' })
      .setSubject('alice').setIssuer(ISSUER).setAudience(`${ISSUER}/s`).setIssuedAt().setExpirationTime('5m')
      .sign(privateKey);

    const store = createMemoryStore();
    const calls: string[] = [];
    const counted: RevocationStore = {
      put: (r) => { calls.push('put'); return store.revocations.put(r); },
      changedSince: (c) => { calls.push('changedSince'); return store.revocations.changedSince(c); },
    };
    const list = createRevocationList({ records: counted, now: Date.now, horizonMs: revocationHorizonMs(300), syncIntervalMs: 3_600_000 });
    await list.start();
    // The embedded AS answers with its key set in memory, synchronously, as src/authorization-server/index.ts does.
    const verifier = createTokenVerifier({ config, publicJwks: () => jwks, isRevoked: (claims) => list.isRevoked(claims) });

    const first = await mint('jti-1', 'grant-1');
    const second = await mint('jti-2', 'grant-2');
    calls.length = 0;
    for (let i = 0; i < 50; i++) {
      await verifier.verify(first, server);
      await verifier.verify(second, server);
    }
    assert.deepEqual(calls, [], 'no Store call for 100 verifications (2 uncached, 98 cache hits)');
    assert.equal(verifier.verifyNow(first, server)?.subject, 'alice', 'a cache hit the list clears is answered at once');

    // Revoked here: the list writes the Store once, then the cached token is refused without a read.
    await list.revokeAccessToken('jti-1', Date.now() + 300_000);
    calls.length = 0;
    assert.equal(verifier.verifyNow(first, server), undefined, 'a revoked token is never answered at once: verify refuses it');
    assert.match(await refusal(verifier.verify(first, server)), /^invalid_token: the access token was revoked/);
    assert.match(await refusal(verifier.verify(first, server)), /^invalid_token/, 'and at every later use');
    await verifier.verify(second, server);
    assert.deepEqual(calls, [], 'refusing needed no Store call either');

    // Revoked by another writer on the same Store (the admin CLI): it takes the list's read of what changed.
    await store.revocations.put({ kind: 'grant', id: 'grant-2', revokedAt: Date.now(), expiresAt: Date.now() + 300_000 });
    assert.equal(await refusal(verifier.verify(second, server)), 'accepted', 'not read yet');
    await list.sync();
    assert.equal(verifier.verifyNow(second, server), undefined);
    assert.match(await refusal(verifier.verify(second, server)), /^invalid_token/);
    await list.close();
  });

  it('a revocation answer still on its way (a promise) is never taken for "not revoked" by the synchronous path', async () => {
    const { privateKey, publicKey } = await generateKeyPair('ES256');
    const jwks: JSONWebKeySet = Object.freeze({ keys: [{ ...(await exportJWK(publicKey)), kid: 'k', alg: 'ES256', use: 'sig' }] });
    const token = await new SignJWT({ scope: '', client_id: 'c', jti: 'j' })
      .setProtectedHeader({ alg: 'ES256', kid: 'k', typ: 'at+jwt' })
      .setSubject('alice').setIssuer(ISSUER).setAudience(`${ISSUER}/s`).setIssuedAt().setExpirationTime('5m')
      .sign(privateKey);
    let answer: boolean | Promise<boolean> = false;
    const verifier = createTokenVerifier({ config, publicJwks: () => jwks, isRevoked: () => answer });
    assert.equal(verifier.verifyNow(token, server), undefined, 'never verified: verify must check the signature');
    await verifier.verify(token, server);
    assert.equal(verifier.verifyNow(token, server)?.subject, 'alice');
    answer = Promise.resolve(true);
    assert.equal(verifier.verifyNow(token, server), undefined);
    assert.match(await refusal(verifier.verify(token, server)), /^invalid_token: the access token was revoked/);
    // A check that fails (its store is down) fails verify, which reports it; the synchronous path
    // leaves its own copy of the promise settled quietly: no unhandled rejection ends the process.
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      let down = false;
      const asking = createTokenVerifier({ config, publicJwks: () => jwks, isRevoked: async () => {
        if (down) throw new Error('revocation store down');
        return false;
      } });
      await asking.verify(token, server);
      down = true;
      assert.equal(asking.verifyNow(token, server), undefined);
      await assert.rejects(asking.verify(token, server), /revocation store down/);
      await new Promise((r) => setImmediate(r));
      assert.deepEqual(unhandled, []);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });
});
