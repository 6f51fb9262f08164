import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { VerifiedCache } from '../../src/gateway/verified-cache.ts';
import type { Caller } from '../../src/kernel/caller.ts';

const caller = (sub: string) => ({ claims: { sub } }) as unknown as Caller;

describe('verified-token cache (RFC 9068 JWTs verified once per protected server)', () => {
  it('a token verified for one server is not a hit for another (audiences differ per server)', () => {
    const cache = new VerifiedCache(10);
    cache.set('/mcp/a', 'tok', caller('alice'));
    assert.equal(cache.get('/mcp/a', 'tok')?.claims.sub, 'alice');
    assert.equal(cache.get('/mcp/b', 'tok'), undefined);
  });

  it('bounded in total entries: the oldest entry of the server being added to leaves first, then other servers\' oldest', () => {
    const cache = new VerifiedCache(3);
    cache.set('/a', 't1', caller('1'));
    cache.set('/a', 't2', caller('2'));
    cache.set('/b', 't3', caller('3'));
    cache.set('/a', 't4', caller('4'));
    assert.equal(cache.count, 3);
    assert.equal(cache.get('/a', 't1'), undefined, 'the oldest of /a went');
    assert.ok(cache.get('/a', 't2') && cache.get('/b', 't3') && cache.get('/a', 't4'));
    cache.delete('/a', 't2');
    cache.delete('/a', 't4');
    cache.set('/c', 't5', caller('5'));
    cache.set('/c', 't6', caller('6'));
    assert.equal(cache.count, 3);
    cache.set('/d', 't7', caller('7'));
    assert.equal(cache.count, 3);
    assert.equal(cache.get('/b', 't3'), undefined, 'a new server with no entries evicts the oldest server\'s oldest');
  });

  it('setting a cached token again replaces it without growing; delete and clear (revocation, key rotation) forget', () => {
    const cache = new VerifiedCache(2);
    cache.set('/a', 't', caller('old'));
    cache.set('/a', 't', caller('new'));
    assert.equal(cache.count, 1);
    assert.equal(cache.get('/a', 't')?.claims.sub, 'new');
    cache.delete('/a', 't');
    assert.equal(cache.get('/a', 't'), undefined);
    cache.set('/a', 'u', caller('u'));
    cache.clear();
    assert.deepEqual([cache.count, cache.get('/a', 'u')], [0, undefined]);
  });
});
