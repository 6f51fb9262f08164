/**
 * Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document; MCP 2025-11-25
 * §Client ID Metadata Documents). oidc-provider 9 implements the fetch natively
 * (features.clientIdMetadataDocument): https-only client IDs without dot segments, fragments or
 * userinfo; no redirects (redirect: manual, non-200 refused); a 5 KB body limit; the document's
 * client_id compared to the URL exactly; no shared-secret auth methods; a bounded LRU cache
 * (100 entries) honouring Cache-Control within [min, max]; an SSRF-protected dispatcher that
 * refuses special-use (loopback, private, link-local incl. 169.254.169.254) peer addresses.
 *
 * What we add: the `enabled` switch, `allowPrivateAddresses` (drop the SSRF dispatcher, for
 * development and tests), `allowHttpLocalhost` (accept `http://localhost[:port]/…` client IDs,
 * which the library refuses outright, and fetch them from loopback) and our own fetch timeout.
 */
import type Provider from 'oidc-provider';
import { addClientFallback, loadCimdResolver } from './oidc-provider-internals.ts';

export interface CimdOptions {
  enabled: boolean;
  allowHttpLocalhost: boolean;
  allowPrivateAddresses: boolean;
}

/** `http://localhost[:port]/path` with no userinfo, fragment, or dot segments. @see draft-ietf-oauth-client-id-metadata-document §3 */
export function isHttpLocalhostClientId(id: string): boolean {
  if (!/^http:\/\/localhost(:\d{1,5})?\//.test(id)) return false;
  const url = URL.parse(id);
  if (!url || url.hostname !== 'localhost' || url.username || url.password || id.includes('#')) return false;
  return !url.pathname.split('/').some((seg) => /^(\.|%2e){1,2}$/i.test(seg));
}

/** Is this client_id a URL, i.e. a CIMD client (as opposed to a registered one)? @see draft-ietf-oauth-client-id-metadata-document §3 */
export function isUrlClientId(id: string): boolean {
  return /^https?:\/\//i.test(id);
}

/**
 * The `fetch` oidc-provider uses for outbound requests (CIMD, jwks_uri). Keeps the library's
 * SSRF-protected dispatcher unless private addresses are explicitly allowed.
 */
export function createOutboundFetch(options: CimdOptions, timeoutMs: number): (url: URL | string, init: RequestInit & { dispatcher?: unknown }) => Promise<Response> {
  return (url, init) => {
    const next = { ...init, signal: AbortSignal.timeout(timeoutMs), redirect: 'manual' as const };
    // allowHttpLocalhost opts into documents served on this machine, which are loopback by
    // definition; every other URL keeps the special-use address guard unless allowPrivateAddresses.
    const localDocument = options.allowHttpLocalhost && isHttpLocalhostClientId(String(url));
    if (options.allowPrivateAddresses || localDocument) delete next.dispatcher;
    return globalThis.fetch(url, next as RequestInit);
  };
}

/**
 * With `allowHttpLocalhost`, lets `http://localhost…` client IDs go through the same library
 * resolver (and guards) as https ones. Development only; off by default.
 */
export function enableHttpLocalhostClientIds(provider: Provider, options: CimdOptions): void {
  if (!options.enabled || !options.allowHttpLocalhost) return;
  // oidc-provider's own CIMD resolver (not in its package exports: oidc-provider-internals.ts).
  addClientFallback(provider, (id) => (isHttpLocalhostClientId(id) ? loadCimdResolver().then((resolve) => resolve(provider, id)) : undefined));
}
