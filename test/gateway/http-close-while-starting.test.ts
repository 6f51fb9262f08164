/**
 * An endpoint that stops while a session's HTTP upstream connection is being made: its downstream
 * credentials can take a while (an RFC 8693 exchange), and the endpoint can close meanwhile. The
 * session ended with the endpoint; what the connect produced is let go of, and the client's
 * `initialize` is answered 503 `shutting_down` (MCP lifecycle §Shutdown; RFC 9110 §15.6.4) rather
 * than sent to an upstream the endpoint has closed.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { DownstreamCredentials } from '../../src/downstream/types.ts';
import { initializeMessage, post } from './fixtures/raw.ts';
import { startBareEndpoint } from './fixtures/bare-endpoint.ts';
import { waitFor } from '../helpers/wait-for.ts';

describe('an endpoint closed while a session\'s HTTP upstream connects', () => {
  it('MCP lifecycle §Shutdown: the initialize is answered 503 shutting_down with Retry-After, and the upstream is never sent it', async () => {
    let release: (() => void) | undefined;
    const slow: DownstreamCredentials = {
      envFor: async () => ({}),
      // As an RFC 8693 exchange that takes its time.
      headersFor: () => new Promise((resolve) => { release = () => resolve({}); }),
    };
    const t = await startBareEndpoint(slow);
    try {
      const sessions = t.upstream.sessions();
      const token = await t.issuer.mint({ aud: t.url });
      const answer = post(t.url, token, initializeMessage());
      await waitFor(() => release !== undefined, 'the upstream connection to be under way');
      assert.equal(t.endpoint.sessionCount, 1);
      // What the instance's close does (src/app.ts): stopping, then every session ends.
      await t.closeEndpoint();
      release!();
      const res = await answer;
      assert.equal(res.status, 503);
      assert.equal(res.headers.get('retry-after'), '1');
      assert.match((await res.json()).error.message, /stopping/);
      assert.equal(t.endpoint.sessionCount, 0);
      assert.equal(t.upstream.sessions(), sessions, 'no initialize reached the upstream');
    } finally {
      await t.close();
    }
  });
});
