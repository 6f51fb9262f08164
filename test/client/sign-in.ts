/**
 * Test helpers for the client: the sign-in a user would do in a browser, done over HTTP with the
 * shared cookie-keeping Browser (login form, consent, then the redirect to our loopback listener),
 * and a writable that captures a command's output.
 */
import { Writable } from 'node:stream';
import { Browser } from '../helpers/oauth.ts';

export async function completeSignIn(authorizationUrl: string, username: string, password: string, browser = new Browser()): Promise<URL> {
  const origin = new URL(authorizationUrl).origin;
  let step = await browser.follow(authorizationUrl, origin);
  for (let i = 0; i < 4 && new URL(step.url).origin === origin; i++) {
    const html = await step.response.text();
    const field: Record<string, string> | undefined = html.includes('name="password"') ? { username, password } : html.includes('value="allow"') ? { decision: 'allow' } : undefined;
    if (!field) throw new Error(`unexpected page (HTTP ${step.response.status}): ${html.slice(0, 200)}`);
    const r = await browser.submit(step.url, html, field);
    step = await browser.follow(new URL(r.headers.get('location')!, step.url).href, origin);
  }
  const callback = new URL(step.url);
  // The authorization response goes to the client's loopback listener, as a browser would send it.
  const delivered = await fetch(callback);
  await delivered.text();
  if (!delivered.ok) throw new Error(`the loopback listener answered ${delivered.status}`);
  return callback;
}

export class Capture extends Writable {
  text = '';
  private waiters: Array<() => void> = [];
  override _write(chunk: Buffer, _enc: BufferEncoding, done: () => void): void {
    this.text += chunk.toString();
    for (const w of this.waiters.splice(0)) w();
    done();
  }
  /** Resolves with the first match of `pattern` in what was written, waiting for it. */
  async waitFor(pattern: RegExp, timeoutMs = 15_000): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = this.text.match(pattern);
      if (m) return m;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${pattern} in: ${this.text}`);
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 100);
      });
    }
  }
}
