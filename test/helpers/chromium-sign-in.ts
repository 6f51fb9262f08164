/**
 * Sign-in and consent in a real headless Chromium (playwright-core driving Debian's
 * /usr/bin/chromium), for OAuth clients whose `redirectToAuthorization` hands over a URL: the
 * page is opened, the login form filled, consent allowed, and the redirect lands on a loopback
 * callback server of this helper (RFC 8252 §7.3), as it would on a native client's.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { chromium, type Browser, type BrowserContext } from 'playwright-core';

export interface ChromiumSignIn {
  context: BrowserContext;
  /** The loopback redirect URI to register: `http://127.0.0.1:<port>/callback`. */
  redirectUri: string;
  /** Opens `url`, signs in and consents; resolves with the redirect to `redirectUri` (code or error). */
  signIn(url: string, o: { username: string; password: string }): Promise<URL>;
  close(): Promise<void>;
}

export async function launchChromium(): Promise<ChromiumSignIn> {
  const browser: Browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  const context = await browser.newContext();
  const callbacks: URL[] = [];
  const server = createServer((req, res) => {
    // Only the redirect itself: Chromium also asks this origin for /favicon.ico.
    const url = new URL(req.url ?? '/', redirectUri);
    if (url.pathname === '/callback') callbacks.push(url);
    res.writeHead(200, { 'content-type': 'text/html' }).end('<h1>Signed in</h1>');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const redirectUri = `http://127.0.0.1:${(server.address() as AddressInfo).port}/callback`;
  return {
    context,
    redirectUri,
    async signIn(url, o) {
      const page = await context.newPage();
      const seen = callbacks.length;
      const landed = () => (callbacks.length > seen ? callbacks.at(-1) : undefined);
      try {
        await page.goto(url);
        for (let i = 0; i < 4 && !landed(); i++) {
          if (await page.locator('#password').count()) {
            await page.fill('#username', o.username);
            await page.fill('#password', o.password);
            await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
          } else if (await page.locator('button[value=allow]').count()) {
            await Promise.all([page.waitForNavigation(), page.click('button[value=allow]')]);
          } else {
            break;
          }
        }
        const callback = landed();
        if (!callback) throw new Error(`the authorization server never redirected to ${redirectUri}; last page ${page.url()}: ${(await page.textContent('body'))?.slice(0, 300)}`);
        return callback;
      } finally {
        await page.close();
      }
    },
    async close() {
      await browser.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
