/**
 * The redirect URI of a native app: an HTTP listener on the loopback interface (RFC 8252 §7.3),
 * on the port of the previous login when it is free (so the registered redirect URI stays exact),
 * else on an ephemeral port. It accepts one callback whose `state` matches (RFC 6749 §10.12).
 */
import { createServer, type Server, type ServerResponse } from 'node:http';
import { once } from 'node:events';
import { html, sendPage } from '../kernel/html.ts';
import { ClientError } from './errors.ts';

export interface AuthorizationResponse {
  code: string;
  /** RFC 9207 §2: the issuer identifier, when the AS sends one. */
  iss?: string;
}

export interface LoopbackReceiver {
  redirectUrl: string;
  port: number;
  /** Resolves with the code once a callback carrying `expectedState` arrives. */
  waitForCallback(expectedState: string, timeoutMs?: number): Promise<AuthorizationResponse>;
  close(): Promise<void>;
}

/** What the callback that reached the listener turned out to be; each gets its own page. */
type CallbackOutcome =
  | { kind: 'signed-in' }
  | { kind: 'denied' }
  | { kind: 'failed'; error: string; description?: string }
  | { kind: 'not-pending' };

/** At most this many characters of the AS's error text on the page (it is untrusted query input). */
const MAX_SHOWN = 200;
const shorten = (text: string) => (text.length > MAX_SHOWN ? `${text.slice(0, MAX_SHOWN)}…` : text);

/**
 * The page the browser shows after the redirect: what happened and what to do next. RFC 6749
 * §4.1.2.1: `access_denied` means the user (or the AS) said no, which is not a failure to retry
 * blindly; any other error code is shown as the AS sent it, escaped.
 */
function sendOutcomePage(res: ServerResponse, outcome: CallbackOutcome): void {
  switch (outcome.kind) {
    case 'signed-in':
      return sendPage(res, 200, 'Signed in', html`<h1>Signed in</h1><p>You can close this tab and go back to the terminal or application that asked you to sign in; it carries on by itself.</p>`);
    case 'denied':
      return sendPage(res, 200, 'Access denied', html`<h1>Access denied</h1><p>You chose not to allow access, so the application was <strong>not</strong> signed in and received no token.</p><p>You can close this tab. If that was a mistake, start the sign-in again from your application (for example <code>mcp-warden login &lt;server URL&gt;</code>) and choose <strong>Allow</strong>.</p>`);
    case 'failed':
      return sendPage(res, 200, 'Sign-in failed', html`<h1>Sign-in failed</h1><p class="error">The authorization server answered <code>${shorten(outcome.error)}</code>${outcome.description ? html`: ${shorten(outcome.description)}` : html``}.</p><p>The application was not signed in. Close this tab, go back to your application for details, and start the sign-in again; if it keeps failing, show this error code to the server's administrator.</p>`);
    case 'not-pending':
      return sendPage(res, 400, 'No sign-in in progress', html`<h1>No sign-in in progress</h1><p>This response does not belong to a sign-in that is waiting here: it may be old, already used, or not meant for this application.</p><p>Close this tab and start the sign-in again from your application.</p>`);
  }
}

async function listen(server: Server, port: number): Promise<number> {
  server.listen(port, '127.0.0.1');
  await Promise.race([once(server, 'listening'), once(server, 'error').then(([err]) => Promise.reject(err))]);
  const address = server.address();
  if (!address || typeof address === 'string') throw new Error('loopback listener has no port');
  return address.port;
}

/** Starts the listener. `preferredPort` 0 or undefined means an ephemeral port. */
export async function startLoopbackReceiver(preferredPort?: number, path = '/callback'): Promise<LoopbackReceiver> {
  let deliver: ((url: URL) => CallbackOutcome) | undefined;
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    if (req.method !== 'GET' || url.pathname !== path) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      return;
    }
    sendOutcomePage(res, deliver?.(url) ?? { kind: 'not-pending' });
  });
  let port: number;
  try {
    port = await listen(server, preferredPort ?? 0);
  } catch (err) {
    if (!preferredPort || (err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
    port = await listen(server, 0);
  }
  const redirectUrl = `http://127.0.0.1:${port}${path}`;

  return {
    redirectUrl,
    port,
    waitForCallback(expectedState, timeoutMs = 300_000) {
      return new Promise<AuthorizationResponse>((resolve, reject) => {
        const timer = setTimeout(() => {
          deliver = undefined;
          reject(new ClientError('login_required', `no authorization response arrived at ${redirectUrl} within ${Math.round(timeoutMs / 1000)} s`));
        }, timeoutMs);
        timer.unref();
        deliver = (url) => {
          const params = url.searchParams;
          // RFC 6749 §10.12: discard a response whose state is missing or different (CSRF).
          if (params.get('state') !== expectedState) return { kind: 'not-pending' };
          clearTimeout(timer);
          deliver = undefined;
          const iss = params.get('iss') ?? undefined;
          const error = params.get('error');
          if (error) {
            const description = params.get('error_description') ?? undefined;
            const detail = description ? `: ${shorten(description)}` : '';
            reject(new ClientError('access_denied', error === 'access_denied'
              ? `sign-in was refused: access was denied in the browser or by the authorization server (access_denied${detail})`
              : `sign-in failed: the authorization server answered ${shorten(error)}${detail}`));
            return error === 'access_denied' ? { kind: 'denied' } : { kind: 'failed', error, ...(description !== undefined && { description }) };
          }
          const code = params.get('code');
          if (!code) {
            reject(new ClientError('protocol_error', 'the authorization response carried neither code nor error (RFC 6749 §4.1.2)'));
            return { kind: 'failed', error: 'invalid_response', description: 'the response carried neither a code nor an error' };
          }
          resolve(iss === undefined ? { code } : { code, iss });
          return { kind: 'signed-in' };
        };
      });
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
