import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { describeError } from '../src/log.ts';

describe('describeError: what an unexpected error may put in the logs', () => {
  it('masks query strings, JWTs and long token-shaped runs, keeps the rest readable', () => {
    const jwt = 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLXBhcnQ';
    const refresh = 'Xk3v9QpL2mN8rT5wZ1yB7cD4fG6hJ0aS';
    const e = new TypeError(`Invalid URL: /oauth/callback?code=abc123&state=s, token ${jwt}, refresh ${refresh}`);
    const d = describeError(e);
    assert.equal(d.name, 'TypeError');
    assert.match(d.message, /^Invalid URL: \/oauth\/callback\?\[redacted\]/);
    for (const secret of ['abc123', jwt, refresh, 'eyJzdWIiOiJhbGljZSJ9']) assert.ok(!d.message.includes(secret), `${secret} is masked`);
    assert.match(d.message, /token \[redacted\], refresh \[redacted\]/);
  });

  it('accepts a non-Error throw without crashing', () => {
    assert.deepEqual(describeError('plain failure'), { name: 'Error', message: 'plain failure' });
  });
});
