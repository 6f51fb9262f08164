/**
 * Refresh before expiry, coalesced: against our gateway and AS (refresh tokens rotate, no grace),
 * with the clock moved forward through the client's `now()` instead of sleeping.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startDemoWarden, type DemoWarden } from '../helpers/demo-warden.ts';
import { WardenClient } from '../../src/client/session.ts';
import { completeSignIn } from './sign-in.ts';

const PASSWORD = 'client refresh test password';

describe('token refresh against the embedded AS', () => {
  let demo: DemoWarden;
  let dir: string;
  let endpoint: string;
  let offset = 0;
  const grants: string[] = [];

  before(async () => {
    demo = await startDemoWarden({ dirPrefix: 'warden-client-refresh-', password: PASSWORD, clientSecret: 'refresh-test-agent-secret-0123456789' });
    ({ dir, endpoint } = demo);
  });
  after(async () => {
    await demo.close();
  });

  /** A client whose token requests are recorded by grant type. */
  function client(home: string): WardenClient {
    return new WardenClient({
      serverUrl: endpoint,
      home,
      tokenStore: 'file',
      now: () => Date.now() + offset,
      openUrl: async (url) => {
        await completeSignIn(url.href, 'alice', PASSWORD);
      },
      fetch: async (url, init) => {
        if (init?.method === 'POST' && init.body instanceof URLSearchParams) grants.push(init.body.get('grant_type') ?? '');
        else if (init?.method === 'POST' && typeof init.body === 'string' && init.body.includes('grant_type=')) grants.push(new URLSearchParams(init.body).get('grant_type') ?? '');
        return fetch(url, init);
      },
    });
  }

  it('RFC 6749 §6: a token about to expire is refreshed before use; one that is not is reused', async () => {
    const home = join(dir, 'one');
    const c = client(home);
    const first = await c.accessToken();
    assert.equal(await c.accessToken(), first, 'a fresh token is reused');
    assert.deepEqual(grants.filter((g) => g === 'refresh_token'), []);
    offset = 15 * 60_000; // past the 900 s lifetime
    const second = await c.accessToken();
    assert.notEqual(second, first);
    assert.deepEqual(grants.filter((g) => g === 'refresh_token'), ['refresh_token']);
    offset = 0;
  });

  it('OAuth 2.1 §4.3.1: eight clients sharing one store refresh once; the rotated refresh token keeps working', async () => {
    const home = join(dir, 'shared');
    await client(home).accessToken();
    grants.length = 0;
    offset = 15 * 60_000;
    const clients = Array.from({ length: 8 }, () => client(home));
    const tokens = await Promise.all(clients.map((c) => c.accessToken()));
    assert.equal(new Set(tokens).size, 1, 'all got the same new token');
    assert.deepEqual(grants, ['refresh_token'], 'exactly one refresh request reached the AS');
    // With no reuse grace at the AS, a second use of the old refresh token would have revoked the
    // grant; the next refresh succeeding proves the rotated token was kept.
    offset = 30 * 60_000;
    const later = await client(home).accessToken();
    assert.notEqual(later, tokens[0]);
    assert.deepEqual(grants, ['refresh_token', 'refresh_token']);
    offset = 0;
  });
});
