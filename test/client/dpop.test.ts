import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeProtectedHeader, decodeJwt } from 'jose';
import { WardenClient } from '../../src/client/session.ts';

const home = mkdtempSync(join(tmpdir(), 'warden-client-dpop-'));
after(() => rmSync(home, { recursive: true, force: true }));

describe('DPoP key (RFC 9449)', () => {
  it('RFC 9449 §5: the key is stored with the tokens (0600) and the same key signs proofs in the next process', async () => {
    const first = new WardenClient({ serverUrl: 'https://mcp.example.com/mcp', home, tokenStore: 'file', dpop: true });
    const session = await first.dpopSession();
    const file = join(home, 'servers', readdirSync(join(home, 'servers')).find((f) => f.endsWith('.json'))!);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.equal(JSON.parse(readFileSync(file, 'utf8')).dpopKey.alg, 'ES256');

    const second = new WardenClient({ serverUrl: 'https://mcp.example.com/mcp', home, tokenStore: 'file', dpop: true });
    const again = await second.dpopSession();
    assert.equal(again.thumbprint, session.thumbprint);
    // RFC 9449 §4.2: a proof is a dpop+jwt with the public key in its header and htm/htu/ath claims.
    const proof = await again.buildProof({ htm: 'POST', htu: 'https://mcp.example.com/mcp', accessToken: 'at' });
    const header = decodeProtectedHeader(proof);
    assert.equal(header.typ, 'dpop+jwt');
    assert.equal(header.alg, 'ES256');
    assert.equal((header.jwk as { d?: string }).d, undefined, 'no private key material in the proof');
    const claims = decodeJwt(proof);
    assert.equal(claims.htm, 'POST');
    assert.equal(claims.htu, 'https://mcp.example.com/mcp');
    assert.ok(claims.ath && claims.jti);
  });
});
