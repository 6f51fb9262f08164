import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { startLoopbackReceiver } from '../../src/client/loopback.ts';
import { isClientError } from '../../src/client/errors.ts';
import { assertSafeAuthorizationUrl } from '../../src/client/browser.ts';
import { canonicalServerUri } from '../../src/client/canonical-uri.ts';

describe('loopback redirect listener', () => {
  it('RFC 8252 §7.3: listens on 127.0.0.1 on an ephemeral port; RFC 6749 §10.12: a wrong state is refused, the right one delivers code and iss', async () => {
    const receiver = await startLoopbackReceiver();
    try {
      assert.match(receiver.redirectUrl, /^http:\/\/127\.0\.0\.1:\d+\/callback$/);
      const waiting = receiver.waitForCallback('expected-state', 5000);
      const wrong = await fetch(`${receiver.redirectUrl}?code=stolen&state=other`);
      assert.equal(wrong.status, 400);
      await wrong.text();
      const missing = await fetch(`${receiver.redirectUrl}?code=stolen`);
      assert.equal(missing.status, 400);
      await missing.text();
      const right = await fetch(`${receiver.redirectUrl}?code=the-code&state=expected-state&iss=https%3A%2F%2Fas.example`);
      assert.equal(right.status, 200);
      assert.match(await right.text(), /Signed in/);
      assert.deepEqual(await waiting, { code: 'the-code', iss: 'https://as.example' });
    } finally {
      await receiver.close();
    }
  });

  it('RFC 6749 §4.1.2.1: after access_denied the page says access was denied and how to try again, never "Signed in"', async () => {
    const receiver = await startLoopbackReceiver();
    try {
      const waiting = receiver.waitForCallback('s', 5000);
      waiting.catch(() => undefined);
      const res = await fetch(`${receiver.redirectUrl}?error=access_denied&error_description=user+said+no&state=s`);
      const page = await res.text();
      assert.match(page, /<h1>Access denied<\/h1>/);
      assert.match(page, /not<\/strong> signed in/);
      assert.match(page, /choose <strong>Allow<\/strong>/);
      assert.doesNotMatch(page, /Signed in/);
      assert.equal(res.headers.get('x-content-type-options'), 'nosniff', 'the shared page shell with its security headers');
      await assert.rejects(waiting, (err) => isClientError(err, 'access_denied') && /refused/.test(err.message) && /user said no/.test(err.message));
    } finally {
      await receiver.close();
    }
  });

  it('RFC 6749 §4.1.2.1: another error code is shown on the page, escaped, with what to do next', async () => {
    const receiver = await startLoopbackReceiver();
    try {
      const waiting = receiver.waitForCallback('s', 5000);
      waiting.catch(() => undefined);
      const res = await fetch(`${receiver.redirectUrl}?error=invalid_scope&error_description=${encodeURIComponent('<script>x</script> not allowed')}&state=s`);
      const page = await res.text();
      assert.match(page, /<h1>Sign-in failed<\/h1>/);
      assert.match(page, /<code>invalid_scope<\/code>: &lt;script&gt;x&lt;\/script&gt; not allowed/);
      assert.match(page, /start the sign-in again/);
      assert.doesNotMatch(page, /<script>/);
      await assert.rejects(waiting, (err) => isClientError(err, 'access_denied') && /sign-in failed: the authorization server answered invalid_scope/.test(err.message));
    } finally {
      await receiver.close();
    }
  });

  it('RFC 6749 §10.12: a response with another state gets a 400 page saying no sign-in is waiting', async () => {
    const receiver = await startLoopbackReceiver();
    try {
      const res = await fetch(`${receiver.redirectUrl}?code=c&state=nobody-asked`);
      assert.equal(res.status, 400);
      assert.match(await res.text(), /No sign-in in progress/);
    } finally {
      await receiver.close();
    }
  });

  it('reuses the previous port when free, and falls back to an ephemeral port when it is taken', async () => {
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const taken = (blocker.address() as { port: number }).port;
    const fallback = await startLoopbackReceiver(taken);
    assert.notEqual(fallback.port, taken);
    await fallback.close();
    await new Promise<void>((r) => blocker.close(() => r()));
    const reused = await startLoopbackReceiver(taken);
    assert.equal(reused.port, taken);
    await reused.close();
  });

  it('times out with login_required when no browser comes back', async () => {
    const receiver = await startLoopbackReceiver();
    await assert.rejects(receiver.waitForCallback('s', 50), (err) => isClientError(err, 'login_required'));
    await receiver.close();
  });
});

describe('authorization URL safety (MCP Security Best Practices)', () => {
  it('opens only https or loopback http; javascript:, data:, file: and remote http are refused', () => {
    assert.equal(assertSafeAuthorizationUrl('https://as.example/authorize?x=1').host, 'as.example');
    assert.equal(assertSafeAuthorizationUrl('http://127.0.0.1:8080/oauth/authorize').port, '8080');
    assert.equal(assertSafeAuthorizationUrl('http://localhost:8080/authorize').hostname, 'localhost');
    for (const bad of ['javascript:alert(1)', 'data:text/html,hi', 'file:///etc/passwd', 'http://as.example/authorize', 'vbscript:x']) {
      assert.throws(() => assertSafeAuthorizationUrl(bad), (err) => isClientError(err, 'unsafe_url'), bad);
    }
  });
});

describe('canonical server URI (MCP §Canonical Server URI, RFC 8707 §2)', () => {
  it('lowercases scheme and host, drops the fragment and a trailing slash, keeps path and port', () => {
    assert.equal(canonicalServerUri('HTTPS://MCP.Example.com/MCP/'), 'https://mcp.example.com/MCP');
    assert.equal(canonicalServerUri('https://mcp.example.com/'), 'https://mcp.example.com');
    assert.equal(canonicalServerUri('https://mcp.example.com:8443/server/mcp#frag'), 'https://mcp.example.com:8443/server/mcp');
    assert.equal(canonicalServerUri('https://mcp.example.com:443/mcp'), 'https://mcp.example.com/mcp');
  });

  it('refuses a relative or non-http(s) URL with a usage error', () => {
    assert.throws(() => canonicalServerUri('mcp.example.com'), (err) => isClientError(err, 'usage'));
    assert.throws(() => canonicalServerUri('ftp://mcp.example.com'), (err) => isClientError(err, 'usage'));
  });
});
