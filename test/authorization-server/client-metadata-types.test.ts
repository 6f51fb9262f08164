import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PassThrough } from 'node:stream';
import { createLogger } from '../../src/log.ts';
import { startEmbeddedAs, type EmbeddedAs } from '../helpers/embedded-as.ts';
import { assertClientMetadataTypes } from '../../src/authorization-server/client-metadata.ts';
import { AuthorizationServerError } from '../../src/authorization-server/errors.ts';

const ALG_FIELDS = [
  'id_token_signed_response_alg', 'token_endpoint_auth_signing_alg', 'request_object_signing_alg',
  'userinfo_signed_response_alg', 'introspection_signed_response_alg', 'authorization_signed_response_alg',
  'id_token_encrypted_response_alg',
];

describe('client metadata is type-checked before oidc-provider reads it (RFC 7591 §2, §3.2.2)', () => {
  let s: EmbeddedAs;
  let log = '';
  // A client ID metadata document server on loopback, allow-listed by origin (CIMD over http is development only).
  let documents: Server;
  let documentsPort: number;
  before(async () => {
    documents = createServer((_req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({
        client_id: `http://localhost:${documentsPort}/client.json`, client_name: 'bad', redirect_uris: ['http://127.0.0.1:9/cb'],
        token_endpoint_auth_method: 'none', id_token_signed_response_alg: { toString: 1 },
      }));
    });
    await new Promise<void>((resolve) => documents.listen(0, '127.0.0.1', resolve));
    documentsPort = (documents.address() as AddressInfo).port;
    const sink = new PassThrough();
    sink.on('data', (c: Buffer) => { log += c.toString('utf8'); });
    s = await startEmbeddedAs({
      embedded: { clientIdMetadataDocuments: { enabled: true, allowedOrigins: [`http://localhost:${documentsPort}`], allowPrivateAddresses: true } },
      options: { logger: createLogger('info', sink), registrationRateLimit: { max: 100, windowMs: 60_000 } },
    });
  });
  after(async () => {
    await s.close();
    documents.closeAllConnections();
    await new Promise<void>((resolve) => documents.close(() => resolve()));
  });

  const register = (metadata: Record<string, unknown>) => fetch(`${s.url}/oauth/register`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ redirect_uris: ['https://app.example/cb'], token_endpoint_auth_method: 'none', ...metadata }),
  });

  for (const field of ALG_FIELDS) {
    it(`RFC 7591 §3.2.2: ${field} given as an object is 400 invalid_client_metadata, not a 500`, async () => {
      const res = await register({ [field]: { toString: 1 } });
      assert.equal(res.status, 400);
      assert.equal(res.headers.get('cache-control'), 'no-store');
      assert.deepEqual(await res.json(), { error: 'invalid_client_metadata', error_description: `${field} must be a string, not an object` });
    });
  }

  const wrong: Array<[string, unknown, RegExp]> = [
    ['redirect_uris', ['https://app.example/cb', 7], /redirect_uris must be an array of strings, not an array containing a number/],
    ['grant_types', 'authorization_code', /grant_types must be an array of strings, not a string/],
    ['client_name', { en: 'x' }, /client_name must be a string/],
    ['client_name#fr', ['x'], /client_name#fr must be a string/],
    ['jwks', { keys: 'nope' }, /jwks must be a JWK Set/],
    ['default_max_age', -1, /default_max_age must be a non-negative integer/],
    ['require_auth_time', 'yes', /require_auth_time must be true or false/],
  ];
  for (const [field, value, description] of wrong) {
    it(`RFC 7591 §2: ${field} of the wrong JSON type is named in the description`, async () => {
      const res = await register({ [field]: value });
      assert.equal(res.status, 400);
      const body = await res.json() as { error: string; error_description: string };
      assert.equal(body.error, 'invalid_client_metadata');
      assert.match(body.error_description, description);
    });
  }

  it('RFC 7591 §3.1: a body that is not a JSON object is invalid_client_metadata; broken JSON is invalid_request', async () => {
    const arr = await fetch(`${s.url}/oauth/register`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '[1]' });
    assert.equal(arr.status, 400);
    assert.equal((await arr.json() as { error: string }).error, 'invalid_client_metadata');
    const broken = await fetch(`${s.url}/oauth/register`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"a":' });
    assert.equal(broken.status, 400);
    assert.equal((await broken.json() as { error: string }).error, 'invalid_request');
  });

  it('RFC 7591 §3.2.1: well-typed metadata still registers through the checked body', async () => {
    const res = await register({ client_name: 'ok', 'client_name#fr': 'bien', grant_types: ['authorization_code'] });
    assert.equal(res.status, 201);
    assert.equal((await res.json() as { client_name: string }).client_name, 'ok');
  });

  it('draft-ietf-oauth-client-id-metadata-document §4.1: a CIMD document with an object in an _alg field is invalid_client_metadata', async () => {
    {
      const clientId = `http://localhost:${documentsPort}/client.json`;
      const res = await fetch(`${s.url}/oauth/authorize?${new URLSearchParams({
        client_id: clientId, response_type: 'code', redirect_uri: 'http://127.0.0.1:9/cb', code_challenge: 'x'.repeat(43), code_challenge_method: 'S256',
      })}`, { redirect: 'manual' });
      // RFC 6749 §4.1.2.1: the client is not valid, so the error is shown, not redirected.
      const page = await res.text();
      assert.equal(res.status, 400);
      assert.match(page, /<code id="error">invalid_client_metadata<\/code>/);
      assert.match(page, /id_token_signed_response_alg must be a string, not an object/);
    }
  });

  it('nothing above was a 5xx: no server_error was logged', () => {
    assert.doesNotMatch(log, /"event":"server_error"/);
  });

  it('the validator names the source and leaves unknown fields alone', () => {
    assert.throws(() => assertClientMetadataTypes('x', 'client ID metadata document'), (e: unknown) => e instanceof AuthorizationServerError && e.description === 'client ID metadata document must be a JSON object');
    assert.doesNotThrow(() => assertClientMetadataTypes({ vendor_extension: { any: 'thing' }, software_statement: 'a.b.c' }));
  });
});
