import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { clientSecretBasic } from '../../src/kernel/client-secret-basic.ts';

describe('client_secret_basic', () => {
  it('RFC 6749 §2.3.1: client_secret_basic form-urlencodes the client_id and secret before base64', () => {
    const header = clientSecretBasic('my client:1', 'p@ss+w%rd é');
    assert.match(header, /^Basic /);
    const decoded = Buffer.from(header.slice('Basic '.length), 'base64').toString('utf8');
    assert.equal(decoded, 'my+client%3A1:p%40ss%2Bw%25rd+%C3%A9');
    const [id, secret] = decoded.split(':').map((v) => decodeURIComponent(v.replace(/\+/g, ' ')));
    assert.deepEqual([id, secret], ['my client:1', 'p@ss+w%rd é']);
  });
});
