import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { discoverAuthorizationServer, IssuerMetadataError } from '../../src/http/authorization-server-metadata.ts';
import { exchangeToken, TokenExchangeFailed, TokenExchangeRefused, ExchangedTokenCache } from '../../src/downstream/token-exchange-client.ts';
import { createIntrospector } from '../../src/gateway/introspection.ts';

interface Seen { method: string; url: string; headers: IncomingMessage['headers']; body: string }

/** A raw authorization server: each test sets what the next request gets. */
async function startRawAs(): Promise<{ base: string; server: Server; seen: Seen[]; answer: (handler: (req: Seen, res: ServerResponse) => void) => void }> {
  const seen: Seen[] = [];
  let handler: (req: Seen, res: ServerResponse) => void = (_req, res) => void res.writeHead(404).end();
  const server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      const r = { method: req.method!, url: req.url!, headers: req.headers, body };
      seen.push(r);
      handler(r, res);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server, seen, answer: (h) => (handler = h) };
}

const json = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) =>
  void res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body));

describe('outbound OAuth with oauth4webapi', () => {
  let as: Awaited<ReturnType<typeof startRawAs>>;
  before(async () => {
    as = await startRawAs();
  });
  after(async () => {
    as.server.closeAllConnections();
    await new Promise<void>((r) => as.server.close(() => r()));
  });

  describe('RFC 8414 discovery', () => {
    it('RFC 8414 §3.1: the well-known path is inserted before the issuer path; OIDC Discovery §4 (appended) is the fallback', async () => {
      const issuer = `${as.base}/tenant/a`;
      as.seen.length = 0;
      as.answer((req, res) => {
        if (req.url === '/tenant/a/.well-known/openid-configuration') return json(res, 200, { issuer, jwks_uri: `${issuer}/jwks`, introspection_endpoint: `${issuer}/introspect` });
        json(res, 404, {});
      });
      const meta = await discoverAuthorizationServer(issuer);
      assert.equal(meta.jwks_uri, `${issuer}/jwks`);
      assert.deepEqual(as.seen.map((r) => r.url), ['/.well-known/oauth-authorization-server/tenant/a', '/tenant/a/.well-known/openid-configuration']);
    });

    it('RFC 8414 §3.3: a document naming another issuer is refused, a trailing slash included', async () => {
      const issuer = `${as.base}/tenant/b`;
      as.answer((_req, res) => json(res, 200, { issuer: `${issuer}/` }));
      await assert.rejects(discoverAuthorizationServer(issuer), IssuerMetadataError);
      as.answer((_req, res) => json(res, 200, { issuer: 'https://elsewhere.example' }));
      await assert.rejects(discoverAuthorizationServer(issuer), IssuerMetadataError);
    });

    it('RFC 8414 §3: a redirect is not followed (the metadata must come from the issuer itself)', async () => {
      const issuer = `${as.base}/tenant/c`;
      as.seen.length = 0;
      as.answer((req, res) => {
        if (req.url!.startsWith('/elsewhere')) return json(res, 200, { issuer });
        res.writeHead(302, { location: `${as.base}/elsewhere` }).end();
      });
      await assert.rejects(discoverAuthorizationServer(issuer), IssuerMetadataError);
      assert.ok(as.seen.every((r) => !r.url.startsWith('/elsewhere')), 'the redirect target was never requested');
    });
  });

  describe('RFC 8693 token exchange request', () => {
    const request = (overrides: Record<string, unknown> = {}) => ({ tokenEndpoint: `${as.base}/token`, clientId: 'gateway:one', clientSecret: 's3cr+t value', subjectToken: 'subject-token', audience: 'https://api.example', scopes: ['a', 'b'], ...overrides });

    it('RFC 8693 §2.1 and RFC 6749 §2.3.1: the request is a form POST with client_secret_basic (id and secret form-urlencoded first)', async () => {
      as.seen.length = 0;
      as.answer((_req, res) => json(res, 200, { access_token: 'exchanged', token_type: 'Bearer', expires_in: 300, issued_token_type: 'urn:ietf:params:oauth:token-type:access_token', scope: 'a' }));
      const token = await exchangeToken(request(), { nowSeconds: () => 1000 });
      assert.deepEqual(token, { accessToken: 'exchanged', expiresAt: 1300, scope: 'a' });
      const [seen] = as.seen;
      assert.equal(seen!.method, 'POST');
      const basic = Buffer.from(seen!.headers.authorization!.replace(/^Basic /, ''), 'base64').toString();
      const [id, secret] = basic.split(':').map((v) => decodeURIComponent(v.replace(/\+/g, ' ')));
      assert.deepEqual([id, secret], ['gateway:one', 's3cr+t value']);
      const form = new URLSearchParams(seen!.body);
      assert.equal(form.get('grant_type'), 'urn:ietf:params:oauth:grant-type:token-exchange');
      assert.equal(form.get('subject_token'), 'subject-token');
      assert.equal(form.get('subject_token_type'), 'urn:ietf:params:oauth:token-type:access_token');
      assert.equal(form.get('requested_token_type'), 'urn:ietf:params:oauth:token-type:access_token');
      assert.equal(form.get('audience'), 'https://api.example');
      assert.equal(form.get('scope'), 'a b');
      assert.equal(form.get('client_secret'), null, 'the secret is not in the body');
    });

    const refusals: Array<[string, number, Record<string, string>]> = [
      ['RFC 8693 §2.2.2: a 400 OAuth error response is "refused" with its code', 400, {}],
      ['RFC 6749 §5.2: a 401 invalid_client behind a WWW-Authenticate challenge is still "refused"', 401, { 'www-authenticate': 'Basic realm="as"' }],
      ['RFC 6749 §5.2: a 503 temporarily_unavailable error body is "refused", not a transport failure', 503, {}],
    ];
    for (const [name, status, headers] of refusals) {
      it(name, async () => {
        const error = status === 401 ? 'invalid_client' : status === 503 ? 'temporarily_unavailable' : 'invalid_grant';
        as.answer((_req, res) => json(res, status, { error, error_description: 'no' }, headers));
        const err = await exchangeToken(request()).catch((e: unknown) => e);
        assert.ok(err instanceof TokenExchangeRefused, String(err));
        assert.equal(err.error, error);
        assert.equal(err.status, status);
      });
    }

    const failures: Array<[string, (req: Seen, res: ServerResponse) => void]> = [
      ['a redirect is not followed', (_req, res) => void res.writeHead(307, { location: `${as.base}/other` }).end()],
      ['a 500 without a JSON error', (_req, res) => void res.writeHead(500, { 'content-type': 'text/html' }).end('<h1>oops</h1>')],
      ['a 200 that is not JSON', (_req, res) => void res.writeHead(200, { 'content-type': 'text/plain' }).end('hello')],
      ['a 200 without access_token', (_req, res) => json(res, 200, { token_type: 'Bearer' })],
      ['RFC 6750: a token that is not a Bearer token', (_req, res) => json(res, 200, { access_token: 'x', token_type: 'DPoP', expires_in: 60 })],
    ];
    for (const [name, handler] of failures) {
      it(`"the server broke the protocol": ${name} is "failed", never "refused"`, async () => {
        as.answer(handler);
        const err = await exchangeToken(request()).catch((e: unknown) => e);
        assert.ok(err instanceof TokenExchangeFailed, String(err));
      });
    }

    it('an unreachable token endpoint is "failed", and the message carries no token', async () => {
      const err = await exchangeToken(request({ tokenEndpoint: 'http://127.0.0.1:1/token' })).catch((e: unknown) => e);
      assert.ok(err instanceof TokenExchangeFailed, String(err));
      assert.doesNotMatch(err.message, /subject-token|s3cr/);
    });

    it('an injected fetch that answers a plain object (status, headers, text) is used for the request', async () => {
      let calls = 0;
      const fetchLike = async (url: string, init: { method: string; headers: Record<string, string>; body: string }) => {
        calls++;
        assert.equal(url, `${as.base}/token`);
        assert.match(init.headers.authorization!, /^Basic /);
        return { status: 200, headers: new Headers({ 'content-type': 'application/json' }), text: async () => JSON.stringify({ access_token: 'via-fetch', token_type: 'bearer' }) };
      };
      const token = await exchangeToken(request(), { fetch: fetchLike as never, nowSeconds: () => 0 });
      assert.equal(calls, 1);
      assert.deepEqual(token, { accessToken: 'via-fetch', expiresAt: 60 });
    });

    it('the exchanged-token cache is bounded: the least recently used entry goes first', async () => {
      let now = 0;
      const cache = new ExchangedTokenCache({ nowSeconds: () => now, maxEntries: 2 });
      const make = (name: string) => async () => ({ accessToken: name, expiresAt: 1000 });
      await cache.get('a', 10, make('a'));
      await cache.get('b', 10, make('b'));
      await cache.get('a', 10, make('a2'));
      await cache.get('c', 10, make('c'));
      assert.equal(cache.size, 2);
      assert.equal((await cache.get('a', 10, make('a3'))).accessToken, 'a', 'a was used recently and stayed');
      assert.equal((await cache.get('b', 10, make('b2'))).accessToken, 'b2', 'b was evicted and exchanged again');
      now = 995;
      assert.equal((await cache.get('a', 10, make('a4'))).accessToken, 'a4', 'not reused within the skew of its expiry');
    });
  });

  describe('RFC 7662 introspection', () => {
    it('RFC 7662 §2.1: a form POST with token and token_type_hint, client_secret_basic', async () => {
      as.seen.length = 0;
      as.answer((_req, res) => json(res, 200, { active: true, sub: 'alice', exp: 2_000_000_000 }));
      const intro = createIntrospector({ endpoint: `${as.base}/introspect`, clientId: 'gw', clientSecret: 'pw' });
      assert.deepEqual(await intro.introspect('opaque-1'), { active: true, claims: { active: true, sub: 'alice', exp: 2_000_000_000 } });
      const form = new URLSearchParams(as.seen[0]!.body);
      assert.equal(form.get('token'), 'opaque-1');
      assert.equal(form.get('token_type_hint'), 'access_token');
      assert.equal(as.seen[0]!.headers.authorization, `Basic ${Buffer.from('gw:pw').toString('base64')}`);
    });

    it('RFC 7662 §2.2: an answer without a boolean "active" is refused, and the error names no token', async () => {
      as.answer((_req, res) => json(res, 200, { active: 'yes', sub: 'alice' }));
      const intro = createIntrospector({ endpoint: `${as.base}/introspect`, clientId: 'gw', clientSecret: 'pw' });
      const err = await intro.introspect('opaque-2').catch((e: unknown) => e as Error);
      assert.ok(err instanceof Error);
      assert.match(err.message, /RFC 7662 §2\.2/);
      assert.doesNotMatch(err.message, /opaque-2/);
    });

    it('RFC 7662 §2.1: a failed client authentication is reported with its status for the log', async () => {
      as.answer((_req, res) => json(res, 401, { error: 'invalid_client' }));
      const intro = createIntrospector({ endpoint: `${as.base}/introspect`, clientId: 'gw', clientSecret: 'wrong' });
      await assert.rejects(intro.introspect('opaque-3'), /401 invalid_client/);
    });
  });
});
