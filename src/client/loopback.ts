/**
 * The redirect URI of a native app: an HTTP listener on the loopback interface (RFC 8252 §7.3),
 * on the port of the previous login when it is free (so the registered redirect URI stays exact),
 * else on an ephemeral port. It accepts one callback whose `state` matches (RFC 6749 §10.12).
 */
import { createServer, type Server } from 'node:http';
import { once } from 'node:events';
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

const PAGE = (title: string, text: string) =>
  `<!doctype html><meta charset="utf-8"><title>${title}</title><body style="font-family:sans-serif"><h1>${title}</h1><p>${text}</p></body>`;

async function listen(server: Server, port: number): Promise<number> {
  server.listen(port, '127.0.0.1');
  await Promise.race([once(server, 'listening'), once(server, 'error').then(([err]) => Promise.reject(err))]);
  const address = server.address();
  if (!address || typeof address === 'string') throw new Error('loopback listener has no port');
  return address.port;
}

/** Starts the listener. `preferredPort` 0 or undefined means an ephemeral port. */
export async function startLoopbackReceiver(preferredPort?: number, path = '/callback'): Promise<LoopbackReceiver> {
  let deliver: ((url: URL) => boolean) | undefined;
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    if (req.method !== 'GET' || url.pathname !== path) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      return;
    }
    const accepted = deliver?.(url) ?? false;
    res.writeHead(accepted ? 200 : 400, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
    res.end(accepted ? PAGE('Signed in', 'You can close this window and return to your application.') : PAGE('Sign-in failed', 'This callback did not match a pending sign-in.'));
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
          // RFC 6749 §10.12 / MCP C-16: discard a response whose state is missing or different.
          if (params.get('state') !== expectedState) return false;
          clearTimeout(timer);
          deliver = undefined;
          const iss = params.get('iss') ?? undefined;
          const error = params.get('error');
          if (error) {
            const description = params.get('error_description');
            reject(new ClientError('access_denied', `the authorization server answered ${error}${description ? `: ${description}` : ''}`));
            return true;
          }
          const code = params.get('code');
          if (!code) {
            reject(new ClientError('protocol_error', 'the authorization response carried neither code nor error'));
            return true;
          }
          resolve(iss === undefined ? { code } : { code, iss });
          return true;
        };
      });
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
