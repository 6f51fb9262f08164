import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { createLogger } from '../../src/log.ts';
import { startEmbeddedAs, TEST_PASSWORD } from '../helpers/embedded-as.ts';
import { Browser, obtainTokens, refreshTokens } from '../helpers/oauth.ts';

describe('logging', () => {
  it('sign-ins are logged without passwords, codes or tokens', async () => {
    const sink = new PassThrough();
    let logs = '';
    sink.on('data', (d) => { logs += d; });
    const logger = createLogger('trace', sink);
    const s = await startEmbeddedAs({ options: { logger } });
    try {
      const t = await obtainTokens({ issuer: s.issuer, username: 'alice', password: TEST_PASSWORD, resource: s.resource, scope: 'notes:read' });
      const r = await refreshTokens({ issuer: s.issuer, clientId: t.clientId, refreshToken: t.refresh_token!, resource: s.resource });
      // A failed sign-in, too.
      const browser = new Browser();
      const url = `${s.url}/oauth/authorize?` + new URLSearchParams({ client_id: t.clientId, redirect_uri: 'http://127.0.0.1/callback', response_type: 'code', code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256', resource: s.resource, state: 'x' });
      const page = await browser.follow(url, s.url);
      await browser.submit(page.url, await page.response.text(), { username: 'alice', password: 'not the password 42' });
      await new Promise((resolve) => setTimeout(resolve, 50));
      assert.match(logs, /"event":"login"/, 'sign-ins are logged');
      assert.match(logs, /"event":"login_failed"/);
      for (const secret of [TEST_PASSWORD, 'not the password 42', t.access_token, t.refresh_token!, r.access_token, r.refresh_token!]) {
        assert.ok(!logs.includes(secret), 'no secret in the logs');
      }
    } finally { await s.close(); }
  });
});
