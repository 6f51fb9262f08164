/**
 * The gateway's side of RFC 8693: exchange a caller's access token for one aimed at a
 * downstream API, at the embedded authorization server or an external one (Keycloak standard
 * token exchange v2 speaks the same request). Tokens are cached per (user, audience, scope)
 * until shortly before they expire; the caller's own token never leaves this request.
 */
import { fetch as undiciFetch } from 'undici';
import { clientSecretBasic } from '../kernel/client-secret-basic.ts';

export const TOKEN_EXCHANGE_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
export const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';

export interface ExchangeRequest {
  tokenEndpoint: string;
  clientId: string;
  clientSecret: string;
  subjectToken: string;
  audience?: string;
  resource?: string;
  scopes?: readonly string[];
}

export interface ExchangedToken {
  accessToken: string;
  /** Seconds since the epoch. */
  expiresAt: number;
  scope?: string;
}

/** "The server said no": an RFC 8693 §2.2.2 error response, kept apart from transport failures. */
export class TokenExchangeRefused extends Error {
  override name = 'TokenExchangeRefused';
  constructor(readonly error: string, readonly description: string | undefined, readonly status: number) {
    super(`token exchange refused: ${error}${description ? ` (${description})` : ''}`);
  }
}

/** "The server broke the protocol" or could not be reached. */
export class TokenExchangeFailed extends Error {
  override name = 'TokenExchangeFailed';
}

export type FetchLike = (url: string, init: { method: string; headers: Record<string, string>; body: string; signal: AbortSignal; redirect: 'error' }) => Promise<{ status: number; headers: { get(name: string): string | null }; text(): Promise<string> }>;


/**
 * Performs one token exchange request. @see RFC 8693 §2.1 (request), §2.2 (response)
 */
export async function exchangeToken(request: ExchangeRequest, options: { fetch?: FetchLike; now?: () => number; timeoutMs?: number } = {}): Promise<ExchangedToken> {
  const doFetch = options.fetch ?? (undiciFetch as unknown as FetchLike);
  const now = options.now ?? (() => Math.floor(Date.now() / 1000));
  const body = new URLSearchParams({
    grant_type: TOKEN_EXCHANGE_GRANT,
    subject_token: request.subjectToken,
    subject_token_type: ACCESS_TOKEN_TYPE,
    requested_token_type: ACCESS_TOKEN_TYPE,
  });
  if (request.audience !== undefined) body.set('audience', request.audience);
  if (request.resource !== undefined) body.set('resource', request.resource);
  if (request.scopes && request.scopes.length) body.set('scope', request.scopes.join(' '));

  // expires_in counts from when the AS issued the token, which is no earlier than this moment:
  // counting from here (not from when the answer arrives) never places our expiry after the token's exp.
  const requestedAt = now();
  let response: Awaited<ReturnType<FetchLike>>;
  let text: string;
  try {
    response = await doFetch(request.tokenEndpoint, {
      method: 'POST',
      headers: {
        authorization: clientSecretBasic(request.clientId, request.clientSecret),
        'content-type': 'application/x-www-form-urlencoded',
        accept: 'application/json',
      },
      body: body.toString(),
      signal: AbortSignal.timeout(options.timeoutMs ?? 10_000),
      redirect: 'error',
    });
    text = await response.text();
  } catch (err) {
    throw new TokenExchangeFailed(`token endpoint ${request.tokenEndpoint} unreachable: ${(err as Error).name}`);
  }
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    throw new TokenExchangeFailed(`token endpoint answered HTTP ${response.status} without a JSON body`);
  }
  if (response.status !== 200) {
    if (typeof json.error === 'string') {
      throw new TokenExchangeRefused(json.error, typeof json.error_description === 'string' ? json.error_description : undefined, response.status);
    }
    throw new TokenExchangeFailed(`token endpoint answered HTTP ${response.status}`);
  }
  if (typeof json.access_token !== 'string' || json.access_token === '') throw new TokenExchangeFailed('token response has no access_token');
  if (typeof json.token_type !== 'string' || json.token_type.toLowerCase() !== 'bearer') throw new TokenExchangeFailed('token response is not a Bearer token');
  // RFC 8693 §2.2.1: expires_in is RECOMMENDED; without it, assume a short life rather than forever.
  const expiresIn = typeof json.expires_in === 'number' && json.expires_in > 0 ? json.expires_in : 60;
  return {
    accessToken: json.access_token,
    expiresAt: requestedAt + expiresIn,
    ...(typeof json.scope === 'string' ? { scope: json.scope } : {}),
  };
}

/**
 * Caches exchanged tokens per key until `skew` seconds before expiry; concurrent requests for the
 * same key share one exchange.
 */
export class ExchangedTokenCache {
  readonly #entries = new Map<string, ExchangedToken>();
  readonly #pending = new Map<string, Promise<ExchangedToken>>();
  readonly #now: () => number;
  readonly #maxEntries: number;

  constructor(options: { now?: () => number; maxEntries?: number } = {}) {
    this.#now = options.now ?? (() => Math.floor(Date.now() / 1000));
    this.#maxEntries = options.maxEntries ?? 10_000;
  }

  async get(key: string, skewSeconds: number, make: () => Promise<ExchangedToken>): Promise<ExchangedToken> {
    const hit = this.#entries.get(key);
    if (hit && hit.expiresAt - skewSeconds > this.#now()) return hit;
    if (hit) this.#entries.delete(key);
    const pending = this.#pending.get(key);
    if (pending) return pending;
    const promise = make().then((token) => {
      if (this.#entries.size >= this.#maxEntries) this.#evictExpired();
      if (this.#entries.size >= this.#maxEntries) this.#entries.delete(this.#entries.keys().next().value!);
      this.#entries.set(key, token);
      return token;
    }).finally(() => this.#pending.delete(key));
    this.#pending.set(key, promise);
    return promise;
  }

  get size(): number {
    return this.#entries.size;
  }

  #evictExpired(): void {
    const t = this.#now();
    for (const [k, v] of this.#entries) if (v.expiresAt <= t) this.#entries.delete(k);
  }
}
