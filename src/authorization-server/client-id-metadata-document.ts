/**
 * Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document; MCP 2025-11-25
 * §Client ID Metadata Documents). oidc-provider 9 implements the document handling natively
 * (features.clientIdMetadataDocument): https-only client IDs without dot segments, fragments or
 * userinfo; no redirects (redirect: manual, non-200 refused); a 5 KB body limit; the document's
 * client_id compared to the URL exactly; no shared-secret auth methods; a bounded LRU cache
 * (100 entries) honouring Cache-Control within [min, max].
 *
 * What we add: the `enabled` switch; the fetch itself (every outbound request of the AS: CIMD,
 * `jwks_uri`, `sector_identifier_uri`) through a dispatcher that checks the resolved addresses
 * *before* connecting (src/http/guarded-dispatcher.ts; the library's own guard checks the peer
 * after connecting, when the TCP handshake and TLS ClientHello already reached it), our own
 * timeout; `allowedOrigins`, the explicit list of origins whose documents may be served over
 * http or from loopback/private addresses (development and internal clients); and
 * `allowPrivateAddresses`, which drops the address guard for every outbound fetch (tests only).
 */
import type Provider from 'oidc-provider';
import { createGuardedDispatcher } from '../http/guarded-dispatcher.ts';
import { Agent, fetch as undiciFetch } from 'undici';
import { addClientFallback, loadCimdResolver } from './oidc-provider-internals.ts';

export interface CimdOptions {
  enabled: boolean;
  /** Origins (`scheme://host[:port]`, as `URL.origin` spells them) exempt from https-only and the address guard. */
  allowedOrigins: readonly string[];
  allowPrivateAddresses: boolean;
}

/**
 * A client_id URL whose origin is in `allowedOrigins`, with no userinfo, fragment or dot segments
 * (the same shape rules the library applies to https client IDs).
 * @see draft-ietf-oauth-client-id-metadata-document §3
 */
export function isAllowedOriginClientId(id: string, allowedOrigins: readonly string[]): boolean {
  if (allowedOrigins.length === 0 || !/^https?:\/\//i.test(id) || id.includes('#')) return false;
  const url = URL.parse(id);
  if (!url || !allowedOrigins.includes(url.origin)) return false;
  // The raw text, not the parsed URL: parsing already removed the `..` segments and empty userinfo it would hide.
  const afterScheme = id.slice(id.indexOf('//') + 2);
  const slash = afterScheme.indexOf('/');
  if (slash === -1 || afterScheme.slice(0, slash).includes('@')) return false;
  const rawPath = afterScheme.slice(slash).split('?')[0]!;
  return !rawPath.split('/').some((seg) => /^(\.|%2e){1,2}$/i.test(seg));
}

/** Is this client_id a URL, i.e. a CIMD client (as opposed to a registered one)? @see draft-ietf-oauth-client-id-metadata-document §3 */
export function isUrlClientId(id: string): boolean {
  return /^https?:\/\//i.test(id);
}

/**
 * May the AS fetch this client_id as a metadata document? https ones (the library validates their
 * shape), and http ones only at an allowed origin.
 * @see draft-ietf-oauth-client-id-metadata-document §3 (https required)
 */
export function isFetchableClientId(options: CimdOptions, id: string): boolean {
  return options.enabled && (id.startsWith('https://') || isAllowedOriginClientId(id, options.allowedOrigins));
}

/**
 * The `fetch` oidc-provider uses for outbound requests (CIMD documents, `jwks_uri`,
 * `sector_identifier_uri`). Every URL goes through the connect-time address guard except those at
 * an allowed origin (or all of them when `allowPrivateAddresses`); never follows redirects; gives
 * up after `timeoutMs`; and a URL whose fetch failed is answered with that failure for 5 s,
 * whichever of these it is (below).
 * @see draft-ietf-oauth-client-id-metadata-document §6 (SSRF)
 */
export function createOutboundFetch(options: CimdOptions, timeoutMs: number): (url: URL | string, init: RequestInit & { dispatcher?: unknown }) => Promise<Response> {
  const guarded = createGuardedDispatcher({ connectTimeoutMs: timeoutMs });
  let open: Agent | undefined;
  const trusted = (url: URL | string) => {
    if (options.allowPrivateAddresses) return true;
    const origin = URL.parse(String(url))?.origin;
    return origin !== undefined && options.allowedOrigins.includes(origin);
  };
  const failed = new Map<string, { error: Error; until: number }>();
  return async (url, init) => {
    const key = String(url);
    const now = Date.now();
    // oidc-provider looks a client up twice when its authorization request fails (the endpoint,
    // then its error handler), so a document that times out held the request for two timeouts and
    // cost its host two requests: a URL that failed within FAILED_FOR_MS fails again at once.
    const recent = failed.get(key);
    if (recent && recent.until > now) throw new Error(recent.error.message, { cause: recent.error });
    if (recent) failed.delete(key);
    // The library passes its own after-connect dispatcher; ours replaces it.
    const dispatcher = trusted(url) ? (open ??= new Agent({ keepAliveTimeout: 1000, keepAliveMaxTimeout: 1000 })) : guarded;
    const next = { ...init, dispatcher, signal: AbortSignal.timeout(timeoutMs), redirect: 'manual' as const };
    try {
      return await (undiciFetch(url, next as Parameters<typeof undiciFetch>[1]) as unknown as Promise<Response>);
    } catch (err) {
      if (failed.size >= MAX_FAILED) failed.delete(failed.keys().next().value!);
      // From when it failed, not when it started: a timeout takes as long as FAILED_FOR_MS by default.
      failed.set(key, { error: err instanceof Error ? err : new Error(String(err)), until: Date.now() + FAILED_FOR_MS });
      throw err;
    }
  };
}

/** How long a fetch that failed (timeout, refused address, network error) is not tried again. */
const FAILED_FOR_MS = 5_000;
/** Failed URLs remembered at most (the oldest forgotten first): client IDs are attacker-chosen. */
const MAX_FAILED = 1_000;

/**
 * Lets http client IDs at an allowed origin (which the library refuses outright: https only) go
 * through the same library resolver, with its cache and document checks, as https ones. Only
 * origins listed in `allowedOrigins`; none by default.
 */
export function enableAllowedOriginClientIds(provider: Provider, options: CimdOptions): void {
  if (!options.enabled || !options.allowedOrigins.some((o) => o.startsWith('http://'))) return;
  // oidc-provider's own CIMD resolver (not in its package exports: oidc-provider-internals.ts).
  addClientFallback(provider, (id) => (id.startsWith('http://') && isAllowedOriginClientId(id, options.allowedOrigins) ? loadCimdResolver().then((resolve) => resolve(provider, id)) : undefined));
}
