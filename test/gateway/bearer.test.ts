import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { parseBearerToken } from '../../src/gateway/bearer.ts';
import { GatewayError } from '../../src/gateway/errors.ts';

const req = (authorization?: string) => ({ headers: authorization === undefined ? {} : { authorization } }) as IncomingMessage;
const refused = (fn: () => unknown) => assert.throws(fn, (e: unknown) => e instanceof GatewayError && e.code === 'invalid_request');

describe('Bearer credentials (RFC 6750 §2.1)', () => {
  it('the token of a well-formed header, the scheme in any case; the same header again gives the same token', () => {
    assert.equal(parseBearerToken(req('Bearer abc.DEF-_~+/=='), ''), 'abc.DEF-_~+/==');
    assert.equal(parseBearerToken(req('Bearer abc.DEF-_~+/=='), ''), 'abc.DEF-_~+/==');
    assert.equal(parseBearerToken(req('bEaReR xyz'), ''), 'xyz');
    assert.equal(parseBearerToken(req(), ''), undefined);
  });

  it('a malformed header is refused also right after a well-formed one was accepted', () => {
    assert.equal(parseBearerToken(req('Bearer good'), ''), 'good');
    refused(() => parseBearerToken(req('Bearer go od'), ''));
    refused(() => parseBearerToken(req('Bearer good=x'), ''));
    refused(() => parseBearerToken(req('Basic good'), ''));
    refused(() => parseBearerToken(req('Bearer'), ''));
    assert.equal(parseBearerToken(req('Bearer good'), ''), 'good');
  });

  it('RFC 6750 §2.3 is not supported: a token in the query is refused, also with a remembered header', () => {
    assert.equal(parseBearerToken(req('Bearer good'), ''), 'good');
    refused(() => parseBearerToken(req('Bearer good'), 'a=1&access_token=x'));
  });
});
