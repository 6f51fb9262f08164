/**
 * An endpoint that has closed (the instance's close, after its drain) still receives requests on
 * connections kept alive until the listener lets them go, and requests whose body was still
 * arriving. Their sessions are ending or gone, but they are not unknown: 404 would have the
 * client initialize again (MCP 2025-11-25 transports §Session Management), where a retry reaches
 * an instance that serves the session (a cluster's others adopt it) or answers for itself. So
 * they get 503 `shutting_down` with Retry-After (RFC 9110 §15.6.4; MCP lifecycle §Shutdown).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { openSession, post, postInParts } from './fixtures/raw.ts';
import { startBareEndpoint } from './fixtures/bare-endpoint.ts';
import { waitFor } from '../helpers/wait-for.ts';

const call = (id: number) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'echo', arguments: { message: 'hi' } } });

describe('a closed endpoint', () => {
  it('MCP lifecycle §Shutdown: a request after the close, or one whose session the close ended while its body arrived, is 503 shutting_down, not 404', async () => {
    const t = await startBareEndpoint();
    try {
      const token = await t.issuer.mint({ aud: t.url });
      const sid = await openSession(t.url, token);
      const h = { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' };
      // A request whose body is still arriving when the close begins.
      const arriving = postInParts(t.url, token, call(2), h);
      await waitFor(() => t.endpoint.pendingRequests === 1, 'the request to be in the endpoint', { timeoutMs: 5_000, intervalMs: 5 });
      await t.closeEndpoint();
      assert.equal(t.endpoint.sessionCount, 0, 'the close ended the session');
      arriving.rest();
      const cut = await arriving.answer;
      assert.equal(cut.status, 503);
      assert.equal(cut.headers['retry-after'], '1');
      assert.match(cut.text, /stopping/);
      // A request after the close, which this test's listener still accepts.
      const after = await post(t.url, token, call(3), h);
      assert.equal(after.status, 503);
      assert.equal(after.headers.get('retry-after'), '1');
      assert.match((await after.json()).error.message, /stopping/);
    } finally {
      await t.close();
    }
  });
});
