import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Agent, fetch } from 'undici';
import { startEmbeddedAs, TEST_PASSWORD, type EmbeddedAs } from '../helpers/embedded-as.ts';
import { discover, registerPublicClient } from '../helpers/oauth.ts';
import { signInHarness } from '../helpers/sign-in-browser.ts';

async function register(s: EmbeddedAs, address: string, forwarded?: string): Promise<number> {
  const dispatcher = new Agent({ localAddress: address });
  try {
    const res = await fetch(`${s.issuer}/oauth/register`, {
      method: 'POST', dispatcher,
      headers: { 'content-type': 'application/json', ...(forwarded !== undefined ? { 'x-forwarded-for': forwarded } : {}) },
      body: JSON.stringify({ redirect_uris: ['http://127.0.0.1/cb'], token_endpoint_auth_method: 'none', application_type: 'native' }),
    });
    await res.text();
    return res.status;
  } finally {
    await dispatcher.close();
  }
}

describe('trustProxy: rate limits key on the client a trusted proxy forwarded for (RFC 7239 §5.2)', () => {
  let s: EmbeddedAs;
  let clientId: string;
  let authorizationEndpoint: string;
  const h = signInHarness(() => ({ authorizationEndpoint, clientId, resource: s.resource }));
  before(async () => {
    s = await startEmbeddedAs({
      config: { trustProxy: { addresses: ['127.0.0.1'] } },
      options: { loginRateLimit: { maxFailures: 3, windowMs: 60_000 }, registrationRateLimit: { max: 2, windowMs: 60_000 } },
    });
    clientId = await registerPublicClient(s.issuer);
    authorizationEndpoint = (await discover(s.issuer)).authorization_endpoint!;
  });
  after(async () => {
    await h.close();
    await s.close();
  });

  it('a spoofed X-Forwarded-For from an untrusted peer is ignored: it does not dodge the sign-in limit', async () => {
    // 127.0.0.2 is not a trusted proxy; a new made-up address per attempt changes nothing.
    for (let i = 0; i < 3; i++) assert.equal((await h.signIn('127.0.0.2', `198.51.100.${i + 1}`, `nobody-${i}`, 'wrong')).status, 401);
    assert.equal((await h.signIn('127.0.0.2', '198.51.100.200', 'alice', TEST_PASSWORD)).status, 429, 'limited on the socket address');
  });

  it('behind the trusted proxy each real client is limited per address, and the proxy itself is not', async () => {
    for (let i = 0; i < 3; i++) assert.equal((await h.signIn('127.0.0.1', '203.0.113.5', `ghost-${i}`, 'wrong')).status, 401);
    assert.equal((await h.signIn('127.0.0.1', '203.0.113.5', 'alice', TEST_PASSWORD)).status, 429);
    // The client cannot escape by prepending its own entry: the proxy appended the real one last.
    assert.equal((await h.signIn('127.0.0.1', '192.0.2.77, 203.0.113.5', 'alice', TEST_PASSWORD)).status, 429);
    // Another client behind the same proxy signs in.
    assert.equal((await h.signIn('127.0.0.1', '203.0.113.6', 'alice', TEST_PASSWORD)).status, 303);
  });

  it('RFC 7591 registration limit: per forwarded client behind the trusted proxy; spoofing from an untrusted peer does not help', async () => {
    assert.equal(await register(s, '127.0.0.1', '203.0.113.20'), 201);
    assert.equal(await register(s, '127.0.0.1', '203.0.113.20'), 201);
    assert.equal(await register(s, '127.0.0.1', '203.0.113.20'), 429);
    assert.equal(await register(s, '127.0.0.1', '203.0.113.21'), 201, 'another client behind the proxy');
    assert.equal(await register(s, '127.0.0.3', '203.0.113.30'), 201);
    assert.equal(await register(s, '127.0.0.3', '203.0.113.31'), 201);
    assert.equal(await register(s, '127.0.0.3', '203.0.113.32'), 429, 'the untrusted peer is limited on its socket address');
  });
});

describe('trustProxy never derives URLs from forwarding headers (publicUrl defines them)', () => {
  let s: EmbeddedAs;
  before(async () => {
    s = await startEmbeddedAs({ config: { trustProxy: { hops: 1 } } });
  });
  after(async () => s.close());

  it('RFC 8414 §3: X-Forwarded-Host, -Proto and Forwarded from a trusted proxy do not change the issuer or endpoint URLs', async () => {
    const dispatcher = new Agent({ localAddress: '127.0.0.1' });
    try {
      const res = await fetch(`${s.issuer}/.well-known/oauth-authorization-server`, {
        dispatcher,
        headers: { 'x-forwarded-host': 'evil.example', 'x-forwarded-proto': 'https', 'x-forwarded-port': '8443', forwarded: 'host=evil.example;proto=https', 'x-forwarded-for': '203.0.113.9' },
      });
      const doc = (await res.json()) as { issuer: string; token_endpoint: string; authorization_endpoint: string };
      assert.equal(doc.issuer, s.issuer);
      assert.ok(doc.token_endpoint.startsWith(`${s.issuer}/`), doc.token_endpoint);
      assert.ok(doc.authorization_endpoint.startsWith(`${s.issuer}/`), doc.authorization_endpoint);
    } finally {
      await dispatcher.close();
    }
  });
});

describe('trustProxy off (default): forwarding headers are ignored', () => {
  let s: EmbeddedAs;
  let clientId: string;
  let authorizationEndpoint: string;
  const h = signInHarness(() => ({ authorizationEndpoint, clientId, resource: s.resource }));
  before(async () => {
    s = await startEmbeddedAs({ options: { loginRateLimit: { maxFailures: 2, windowMs: 60_000 } } });
    clientId = await registerPublicClient(s.issuer);
    authorizationEndpoint = (await discover(s.issuer)).authorization_endpoint!;
  });
  after(async () => {
    await h.close();
    await s.close();
  });

  it('X-Forwarded-For from any peer, even loopback, does not change the address the limit sees', async () => {
    assert.equal((await h.signIn('127.0.0.1', '198.51.100.1', 'x1', 'wrong')).status, 401);
    assert.equal((await h.signIn('127.0.0.1', '198.51.100.2', 'x2', 'wrong')).status, 401);
    assert.equal((await h.signIn('127.0.0.1', '198.51.100.3', 'alice', TEST_PASSWORD)).status, 429);
  });
});
