import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as oauth from 'oauth4webapi';
import { chromium, type Browser } from 'playwright-core';
import { startEmbeddedAs, TEST_PASSWORD, type EmbeddedAs } from '../helpers/embedded-as.ts';
import { discover } from '../helpers/oauth.ts';

const insecure = { [oauth.allowInsecureRequests]: true } as const;

describe('login and consent in headless Chromium', () => {
  let s: EmbeddedAs;
  let browser: Browser;
  let callback: Server;
  let redirectUri: string;
  before(async () => {
    s = await startEmbeddedAs();
    callback = createServer((_req, res) => { res.setHeader('content-type', 'text/html'); res.end('<!DOCTYPE html><title>callback</title><p>done</p>'); });
    await new Promise<void>((r) => callback.listen(0, '127.0.0.1', r));
    redirectUri = `http://127.0.0.1:${(callback.address() as AddressInfo).port}/callback`;
    browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    });
  });
  after(async () => {
    await browser?.close();
    callback?.closeAllConnections();
    await new Promise<void>((r) => callback.close(() => r()));
    await s.close();
  });

  async function start(clientName: string) {
    const as = await discover(s.issuer);
    const reg = await oauth.dynamicClientRegistrationRequest(as, {
      client_name: clientName, application_type: 'native', redirect_uris: [redirectUri], token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'],
    }, insecure);
    const client = await oauth.processDynamicClientRegistrationResponse(reg);
    const codeVerifier = oauth.generateRandomCodeVerifier();
    const state = oauth.generateRandomState();
    const url = `${as.authorization_endpoint}?` + new URLSearchParams({
      client_id: client.client_id, redirect_uri: redirectUri, response_type: 'code', state, scope: 'notes:read notes:write',
      code_challenge: await oauth.calculatePKCECodeChallenge(codeVerifier), code_challenge_method: 'S256', resource: s.resource,
    });
    return { as, client, codeVerifier, state, url };
  }

  it('signs in, sees the consent page with client, host and scopes, allows, and the client gets a code it can redeem', async () => {
    const { as, client, codeVerifier, state, url } = await start('Chromium Allow Client');
    const page = await browser.newPage();
    try {
      await page.goto(url);
      await page.getByLabel('Username').fill('alice');
      await page.getByLabel('Password').fill(TEST_PASSWORD);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.getByRole('button', { name: 'Allow' }).waitFor();
      assert.equal(await page.locator('#client-name').textContent(), 'Chromium Allow Client');
      assert.equal(await page.locator('#client-origin').textContent(), 'registered itself: unverified');
      assert.match((await page.locator('#client-badge').textContent()) ?? '', /unverified/);
      assert.match((await page.locator('#redirect-host').textContent()) ?? '', new RegExp(new URL(redirectUri).host.replace(/\./g, '\\.')));
      const scopes = (await page.locator('#scopes').textContent()) ?? '';
      assert.match(scopes, /Read your notes/);
      assert.match(scopes, /Create and delete notes/);
      await Promise.all([page.waitForURL((u) => u.href.startsWith(redirectUri)), page.getByRole('button', { name: 'Allow' }).click()]);
      const callbackUrl = new URL(page.url());
      assert.equal(callbackUrl.searchParams.get('iss'), s.issuer);
      const params = oauth.validateAuthResponse(as, client, callbackUrl, state);
      const res = await oauth.authorizationCodeGrantRequest(as, client, oauth.None(), params, redirectUri, codeVerifier, { additionalParameters: { resource: s.resource }, ...insecure });
      const tokens = await oauth.processAuthorizationCodeResponse(as, client, res);
      assert.equal(tokens.scope, 'notes:read notes:write');
    } finally { await page.close(); }
  });

  it('Deny reaches the client as access_denied', async () => {
    const { as, client, state, url } = await start('Chromium Deny Client');
    const page = await browser.newPage();
    try {
      await page.goto(url);
      await page.getByLabel('Username').fill('bob');
      await page.getByLabel('Password').fill(TEST_PASSWORD);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await Promise.all([page.waitForURL((u) => u.href.startsWith(redirectUri)), page.getByRole('button', { name: 'Deny' }).click()]);
      const callbackUrl = new URL(page.url());
      assert.equal(callbackUrl.searchParams.get('error'), 'access_denied');
      assert.throws(() => oauth.validateAuthResponse(as, client, callbackUrl, state), (err: oauth.AuthorizationResponseError) => err.error === 'access_denied');
    } finally { await page.close(); }
  });

  it('the pages cannot be framed (CSP frame-ancestors \'none\')', async () => {
    const { url } = await start('Frame Client');
    const page = await browser.newPage();
    try {
      const response = await page.goto(url);
      assert.match(response?.headers()['content-security-policy'] ?? '', /frame-ancestors 'none'/);
    } finally { await page.close(); }
  });
});
