import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { generateClientId } from '../../src/authorization-server/client-id.ts';

describe('client IDs of dynamically registered clients (RFC 7591 §3.2.1)', () => {
  it('are 128 random bits in base64url, never beginning with "-" or "_" (a command line would read "-…" as an option)', () => {
    // Random bytes whose base64url begins with '-' (0xf8: 111110), then '_' (0xfc: 111111), then 'Q'.
    const draws = [Buffer.alloc(16, 0xf8), Buffer.alloc(16, 0xfc), Buffer.alloc(16, 0x41)];
    let drawn = 0;
    const id = generateClientId((size) => { assert.equal(size, 16); return draws[drawn++]!; });
    assert.equal(drawn, 3, 'drew again while the ID began with - or _');
    assert.equal(id, Buffer.alloc(16, 0x41).toString('base64url'));

    const ids = new Set(Array.from({ length: 2000 }, () => generateClientId()));
    assert.equal(ids.size, 2000);
    for (const x of ids) assert.match(x, /^[A-Za-z0-9][A-Za-z0-9_-]{21}$/);
  });
});
