/**
 * Discovery of an external authorization server's metadata with oauth4webapi, and the small
 * glue every outbound OAuth request of the gateway shares (timeouts, http issuers in development,
 * an injectable fetch for tests). The protocol work (well-known URLs, issuer comparison, response
 * checks) is oauth4webapi's; this file only decides the order and keeps "the server said no"
 * apart from "the server broke the protocol".
 */
import * as oauth from 'oauth4webapi';

/**
 * The HTTP client an outbound OAuth call may be given (tests count or alter requests). It may
 * answer with a `Response` or with anything that has a status, a header getter and a text body.
 */
export type FetchLike = (url: string, init: { method: string; headers: Record<string, string>; body: string; signal: AbortSignal; redirect: 'error' | 'manual' }) => Promise<{ status: number; headers: { get(name: string): string | null }; text(): Promise<string> }>;

/** Response headers oauth4webapi reads: the body's type and an RFC 6750 §3 challenge. */
const READ_HEADERS = ['content-type', 'www-authenticate'] as const;

/** Turns a FetchLike into the `customFetch` oauth4webapi calls (which must answer a real `Response`). */
type CustomFetch = (url: string, options: oauth.CustomFetchOptions<'GET' | 'POST', URLSearchParams | undefined>) => Promise<Response>;

export function toCustomFetch(fetchLike: FetchLike): CustomFetch {
  return async (url, options) => {
    const headers: Record<string, string> = {};
    new Headers(options.headers as HeadersInit).forEach((value, name) => (headers[name] = value));
    const res = await fetchLike(url, {
      method: options.method,
      headers,
      body: options.body === undefined ? (undefined as never) : String(options.body),
      signal: options.signal as AbortSignal,
      redirect: 'manual',
    });
    if (res instanceof Response) return res;
    const copied = new Headers();
    for (const name of READ_HEADERS) {
      const value = res.headers.get(name);
      if (value !== null) copied.set(name, value);
    }
    const text = await res.text();
    return new Response(res.status === 204 || res.status === 304 ? null : text, { status: res.status, headers: copied });
  };
}

export interface OutboundOAuthOptions {
  /** Longest wait for one request, in ms. Default 10 000. */
  timeoutMs?: number;
  /** For tests: the HTTP client (default: the global fetch). */
  fetch?: FetchLike;
  /** Ends the request early when aborted (the owner is closing), besides the timeout. */
  signal?: AbortSignal | undefined;
}

/**
 * The options every oauth4webapi request of ours carries: a timeout; http URLs accepted (an issuer
 * or endpoint the operator configured as http, as in development: configuration is trusted input,
 * and the gateway refused nothing here before); the injected fetch, if any.
 */
export function requestOptions(options: OutboundOAuthOptions): { signal: AbortSignal; [oauth.allowInsecureRequests]: boolean; [oauth.customFetch]?: CustomFetch } {
  return {
    signal: options.signal ? AbortSignal.any([AbortSignal.timeout(options.timeoutMs ?? 10_000), options.signal]) : AbortSignal.timeout(options.timeoutMs ?? 10_000),
    [oauth.allowInsecureRequests]: true,
    ...(options.fetch ? { [oauth.customFetch]: toCustomFetch(options.fetch) } : {}),
  };
}

/** The issuer's metadata could not be used: not found, not JSON, or naming another issuer. */
export class IssuerMetadataError extends Error {
  override name = 'IssuerMetadataError';
}

/**
 * The authorization server metadata of `issuer`: RFC 8414 §3 (the well-known path inserted before
 * the issuer's path) first, then OpenID Connect Discovery 1.0 §4 (appended). The document's
 * `issuer` must be identical to the configured one (RFC 8414 §3.3), not merely equal after URL
 * normalisation (which oauth4webapi allows): a trailing slash is a different issuer.
 * @see https://www.rfc-editor.org/rfc/rfc8414#section-3
 * @throws IssuerMetadataError when neither document is usable (the last failure in `cause`)
 */
export async function discoverAuthorizationServer(issuer: string, options: OutboundOAuthOptions = {}): Promise<oauth.AuthorizationServer> {
  const url = new URL(issuer);
  let lastError: unknown;
  for (const algorithm of ['oauth2', 'oidc'] as const) {
    options.signal?.throwIfAborted();
    try {
      const response = await oauth.discoveryRequest(url, { algorithm, ...requestOptions(options) });
      const as = await oauth.processDiscoveryResponse(url, response);
      if (as.issuer !== issuer) throw new IssuerMetadataError(`metadata of ${issuer} (${algorithm}) names issuer ${as.issuer}`);
      return as;
    } catch (err) {
      lastError = err;
    }
  }
  const reason = lastError instanceof Error ? lastError.message : String(lastError);
  throw new IssuerMetadataError(`no usable authorization server metadata for ${issuer}: ${reason}`, { cause: lastError });
}
