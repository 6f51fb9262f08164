/**
 * Opening the authorization URL. MCP Security Best Practices: only `https` (or `http` on
 * loopback) is opened, never through a shell; other schemes (`javascript:`, `file:`, …) are refused.
 */
import { spawn } from 'node:child_process';
import { ClientError } from './errors.ts';
import { isLoopbackHttp } from './canonical-uri.ts';

/** Throws `unsafe_url` unless the URL is https or loopback http. */
export function assertSafeAuthorizationUrl(input: string | URL): URL {
  const url = new URL(String(input));
  if (url.protocol !== 'https:' && !isLoopbackHttp(url)) {
    throw new ClientError('unsafe_url', `refusing to open an authorization URL with scheme ${url.protocol} on host ${url.hostname}: only https (or http on this machine) is opened. The server's authorization server is misconfigured or not trustworthy; tell its administrator.`);
  }
  return url;
}

/** Opens the URL in the user's browser with the platform opener, arguments passed without a shell. */
export async function openInBrowser(input: string | URL): Promise<void> {
  const url = assertSafeAuthorizationUrl(input).href;
  const [command, args] =
    process.platform === 'darwin' ? ['open', [url]] : process.platform === 'win32' ? ['rundll32', ['url.dll,FileProtocolHandler', url]] : ['xdg-open', [url]];
  await new Promise<void>((resolve, reject) => {
    const child = spawn(command, args as string[], { stdio: 'ignore', detached: true, shell: false });
    child.once('error', (err) => reject(new ClientError('login_required', `could not start ${command} (${err.message}); use --no-browser and open the URL yourself`)));
    child.once('spawn', () => {
      child.unref();
      resolve();
    });
  });
}
