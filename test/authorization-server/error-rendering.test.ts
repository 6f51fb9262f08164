import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough, Readable } from 'node:stream';
import { createLogger } from '../../src/log.ts';
import { startEmbeddedAs, type EmbeddedAs } from '../helpers/embedded-as.ts';
import { waitFor } from '../helpers/wait-for.ts';
import { AuthorizationServerError, renderAuthorizationServerError } from '../../src/authorization-server/errors.ts';
import { messagePage, renderPage } from '../../src/kernel/html.ts';

function logLines(sink: PassThrough): () => Array<Record<string, unknown>> {
  let text = '';
  sink.on('data', (c: Buffer) => { text += c.toString('utf8'); });
  return () => text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
}

const PAGE_HEADERS = ['x-content-type-options', 'referrer-policy', 'content-security-policy', 'cache-control', 'x-frame-options'];

describe('the authorization server renders every error in one place', () => {
  let s: EmbeddedAs;
  let lines: () => Array<Record<string, unknown>>;
  before(async () => {
    const sink = new PassThrough();
    lines = logLines(sink);
    s = await startEmbeddedAs({
      options: {
        logger: createLogger('info', sink),
        // A middleware that fails unexpectedly stands for any bug outside oidc-provider's routes.
        extensions: [(provider, { store }) => {
          provider.use(async (ctx, next) => {
            if (ctx.path === '/oauth/jwks' && ctx.query.fail === '1') throw new Error('boom at /internal/path');
            if (ctx.path === '/oauth/jwks' && ctx.query.fail === 'stream') {
              // A body that fails after the headers left: only Koa's error event can report it.
              ctx.body = new Readable({ read() { this.push('{"keys":['); this.destroy(new Error('stream broke mid-response')); } });
              return;
            }
            await next();
          });
          // A storage failure inside an oidc-provider route (fault injection for one client id).
          const find = store.models.find.bind(store.models);
          store.models.find = async (model, id) => {
            if (model === 'Client' && id === 'explode') throw new Error('disk I/O error at /var/lib/warden.db');
            return find(model, id);
          };
        }],
      },
    });
  });
  after(async () => { await s.close(); });

  it('RFC 6749 §4.1.2.1: an unknown client gets the HTML shell with its security headers and a real font stack', async () => {
    const res = await fetch(`${s.url}/oauth/authorize?client_id=nope&response_type=code&redirect_uri=https://x.example/cb`, { headers: { accept: 'text/html' } });
    assert.equal(res.status, 400);
    const body = await res.text();
    assert.match(res.headers.get('content-type')!, /^text\/html/);
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
    assert.equal(res.headers.get('cache-control'), 'no-store');
    assert.match(res.headers.get('content-security-policy')!, /style-src 'nonce-[A-Za-z0-9+/=]+'/);
    const nonce = /nonce-([A-Za-z0-9+/=]+)/.exec(res.headers.get('content-security-policy')!)![1]!;
    assert.ok(body.includes(`<style nonce="${nonce}">`), 'the stylesheet carries the header nonce');
    assert.match(body, /font-family:system-ui,sans-serif/);
    assert.doesNotMatch(body, /undefined/);
    assert.match(body, /<code id="error">invalid_client<\/code>/);
  });

  it('the error page, the sign-in page and an interaction error carry the same security headers', async () => {
    const errorPage = await fetch(`${s.url}/oauth/authorize?client_id=nope&response_type=code`, { headers: { accept: 'text/html' } });
    const notFoundPage = await fetch(`${s.url}/interaction/unknown-uid`);
    assert.match(notFoundPage.headers.get('content-type')!, /^text\/html/);
    for (const h of PAGE_HEADERS) {
      const a = errorPage.headers.get(h)!.replace(/nonce-[^']+/, 'nonce');
      const b = notFoundPage.headers.get(h)!.replace(/nonce-[^']+/, 'nonce');
      assert.equal(a, b, `${h} is the same on every page`);
    }
    await errorPage.arrayBuffer(); await notFoundPage.arrayBuffer();
  });

  it('RFC 9110 §15.5.5: an endpoint oidc-provider does not serve gets JSON not_found with no-store, not text/plain', async () => {
    const res = await fetch(`${s.url}/oauth/nothing-here`);
    assert.equal(res.status, 404);
    assert.equal(res.headers.get('cache-control'), 'no-store');
    assert.deepEqual(await res.json(), { error: 'not_found', error_description: 'there is no authorization server endpoint at /oauth/nothing-here' });
  });

  it('RFC 9110 §15.5.5/§15.5.6: a switched-off oidc-provider feature is a JSON 404; the token endpoint with GET is a 405 with Allow', async () => {
    const off = await fetch(`${s.url}/oauth/userinfo`);
    assert.equal(off.status, 404);
    assert.equal((await off.json() as { error: string }).error, 'not_found');
    const get = await fetch(`${s.url}/oauth/token`);
    assert.equal(get.status, 405);
    assert.equal(get.headers.get('allow'), 'POST');
    assert.equal(get.headers.get('cache-control'), 'no-store');
    assert.equal((await get.json() as { error: string }).error, 'method_not_allowed');
  });

  it('RFC 9110 §15.5.6: metadata with POST gets 405 with Allow, as JSON', async () => {
    const res = await fetch(`${s.url}/.well-known/oauth-authorization-server`, { method: 'POST' });
    assert.equal(res.status, 405);
    assert.equal(res.headers.get('allow'), 'GET, HEAD');
    assert.equal((await res.json() as { error: string }).error, 'method_not_allowed');
  });

  it('a failure outside oidc-provider routes is a JSON server_error without internals, logged with a request id', async () => {
    const res = await fetch(`${s.url}/oauth/jwks?fail=1`);
    assert.equal(res.status, 500);
    assert.equal(res.headers.get('cache-control'), 'no-store');
    const body = await res.text();
    assert.doesNotMatch(body, /boom|internal\/path/);
    assert.equal((JSON.parse(body) as { error: string }).error, 'server_error');
    await waitFor(() => lines().some((l) => l.event === 'server_error'), 'the server_error log line');
    const line = lines().find((l) => l.event === 'server_error')!;
    assert.match(String(line.request_id), /^[0-9a-f-]{36}$/);
    assert.match(JSON.stringify(line.err), /boom/);
  });

  it('a storage failure inside an oidc-provider route is our server_error (JSON and page), with the logged request id', async () => {
    const res = await fetch(`${s.url}/oauth/token`, {
      method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'client_credentials', client_id: 'explode', client_secret: 'x' }),
    });
    assert.equal(res.status, 500);
    const body = await res.json() as { error: string; error_description: string };
    assert.deepEqual(body, { error: 'server_error', error_description: 'Something went wrong on our side. Please try again later.' });
    const id = res.headers.get('x-request-id');
    assert.match(String(id), /^[0-9a-f-]{36}$/);
    await waitFor(() => lines().some((l) => l.request_id === id && l.event === 'server_error'), 'the log line with the same request id');
    assert.match(JSON.stringify(lines().find((l) => l.request_id === id)), /disk I\/O error/);

    const page = await fetch(`${s.url}/oauth/authorize?client_id=explode&response_type=code`, { headers: { accept: 'text/html' } });
    assert.equal(page.status, 500);
    const text = await page.text();
    assert.doesNotMatch(text, /disk I\/O|oops/);
    assert.match(text, /<code id="request-id">[0-9a-f-]{36}<\/code>/);
  });

  it('renderPage gives a page written elsewhere (the client\'s loopback callback) the same shell, headers and escaping', async () => {
    const page = renderPage('Signed in', messagePage('Signed in', 'You can close <this> window.'));
    const served = await fetch(`${s.url}/interaction/unknown-uid`);
    for (const h of PAGE_HEADERS) {
      const header = Object.entries(page.headers).find(([k]) => k.toLowerCase() === h)?.[1];
      assert.equal(header?.replace(/nonce-[^']+/, 'nonce'), served.headers.get(h)!.replace(/nonce-[^']+/, 'nonce'), h);
    }
    await served.arrayBuffer();
    assert.match(page.body, /You can close &lt;this&gt; window\./);
    assert.match(page.body, /^<!DOCTYPE html><html lang="en">/);
  });

  it('an error after the response started (Koa\'s error event) is a JSON log line, not raw stderr', async () => {
    // The client sees a broken response (the connection is cut), whatever it had read.
    await fetch(`${s.url}/oauth/jwks?fail=stream`).then((r) => r.text()).catch(() => undefined);
    await waitFor(() => lines().some((l) => l.event === 'request_error' && /stream broke/.test(JSON.stringify(l.err))), 'the request_error log line');
  });

  it('RFC 6749 §5.2: the renderer never sends a 5xx description, and keeps the retry hint', () => {
    const out = renderAuthorizationServerError(new AuthorizationServerError('server_error', 'db exploded at /var/lib'), 'json');
    assert.equal(out.status, 500);
    assert.doesNotMatch(out.body, /db exploded/);
    const busy = renderAuthorizationServerError(new AuthorizationServerError('temporarily_unavailable', 'starting up', { retryAfterSeconds: 1 }), 'json');
    assert.equal(busy.status, 503);
    assert.equal(busy.headers['Retry-After'], '1');
    assert.equal(busy.headers['Cache-Control'], 'no-store');
  });
});
