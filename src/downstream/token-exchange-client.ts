/**
 * The gateway's side of RFC 8693: exchange a caller's access token for one aimed at a
 * downstream API, at the embedded authorization server or an external one (Keycloak standard
 * token exchange v2 speaks the same request). Tokens are cached per (user, audience, scope)
 * until shortly before they expire; the caller's own token never leaves this request.
 * The request, client authentication and response checks are oauth4webapi's.
 */
import { type NowSeconds, systemNowSeconds } from '../kernel/clock.ts';
import { LRUCache } from 'lru-cache';
import * as oauth from 'oauth4webapi';
import { requestOptions, type FetchLike } from '../http/authorization-server-metadata.ts';

export type { FetchLike } from '../http/authorization-server-metadata.ts';

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

/**
 * An OAuth error response (RFC 6749 §5.2) that oauth4webapi reported otherwise: behind a 401
 * `WWW-Authenticate` challenge (reported first), or with a 5xx status (RFC 6749 §5.2 names
 * `temporarily_unavailable`, which oauth4webapi only reads on 4xx). The JSON body, when it
 * carries `error`, is the AS's answer: "the server said no", as before this used oauth4webapi.
 */
async function refusalIn(response: Response): Promise<TokenExchangeRefused | undefined> {
  if (response.bodyUsed) return undefined;
  try {
    const body = await response.json() as Record<string, unknown>;
    if (typeof body.error === 'string' && body.error !== '') return new TokenExchangeRefused(body.error, typeof body.error_description === 'string' ? body.error_description : undefined, response.status);
  } catch {
    // no JSON body: a protocol failure
  }
  return undefined;
}

/** Maps an oauth4webapi failure onto "refused" (the AS said no) or "failed" (broken or unreachable). */
async function classify(err: unknown, tokenEndpoint: string): Promise<Error> {
  if (err instanceof oauth.ResponseBodyError) return new TokenExchangeRefused(err.error, err.error_description, err.status);
  const response = err instanceof oauth.WWWAuthenticateChallengeError ? err.response : err instanceof oauth.OperationProcessingError && err.cause instanceof Response ? err.cause : undefined;
  if (response) return (await refusalIn(response)) ?? new TokenExchangeFailed(`token endpoint answered HTTP ${response.status} without a JSON error`);
  if (err instanceof oauth.OperationProcessingError || err instanceof oauth.UnsupportedOperationError) return new TokenExchangeFailed(`token response rejected (RFC 8693 §2.2.1): ${err.message}`);
  return new TokenExchangeFailed(`token endpoint ${tokenEndpoint} unreachable: ${err instanceof Error ? err.name : 'error'}`);
}

/**
 * Performs one token exchange request. @see RFC 8693 §2.1 (request), §2.2 (response)
 */
export async function exchangeToken(request: ExchangeRequest, options: { fetch?: FetchLike; nowSeconds?: NowSeconds; timeoutMs?: number } = {}): Promise<ExchangedToken> {
  const nowSeconds = options.nowSeconds ?? systemNowSeconds;
  const parameters = new URLSearchParams({
    subject_token: request.subjectToken,
    subject_token_type: ACCESS_TOKEN_TYPE,
    requested_token_type: ACCESS_TOKEN_TYPE,
  });
  if (request.audience !== undefined) parameters.set('audience', request.audience);
  if (request.resource !== undefined) parameters.set('resource', request.resource);
  if (request.scopes && request.scopes.length) parameters.set('scope', request.scopes.join(' '));
  const as: oauth.AuthorizationServer = { issuer: new URL(request.tokenEndpoint).origin, token_endpoint: request.tokenEndpoint };
  const client: oauth.Client = { client_id: request.clientId };

  // expires_in counts from when the AS issued the token, which is no earlier than this moment:
  // counting from here (not from when the answer arrives) never places our expiry after the token's exp.
  const requestedAt = nowSeconds();
  let token: oauth.TokenEndpointResponse;
  try {
    // RFC 6749 §2.3.1: client_secret_basic, the id and secret form-urlencoded before Basic encoding.
    const response = await oauth.genericTokenEndpointRequest(as, client, oauth.ClientSecretBasic(request.clientSecret), TOKEN_EXCHANGE_GRANT, parameters, requestOptions(options));
    token = await oauth.processGenericTokenEndpointResponse(as, client, response);
  } catch (err) {
    throw await classify(err, request.tokenEndpoint);
  }
  // RFC 8693 §2.2.1: the issued token is used as a Bearer token downstream (RFC 6750).
  if (token.token_type !== 'bearer') throw new TokenExchangeFailed('token response is not a Bearer token');
  if (token.access_token === '') throw new TokenExchangeFailed('token response has no access_token');
  // RFC 8693 §2.2.1: expires_in is RECOMMENDED; without it, assume a short life rather than forever.
  const expiresIn = typeof token.expires_in === 'number' && token.expires_in > 0 ? token.expires_in : 60;
  return {
    accessToken: token.access_token,
    expiresAt: requestedAt + expiresIn,
    ...(typeof token.scope === 'string' ? { scope: token.scope } : {}),
  };
}

/**
 * Caches exchanged tokens per key until `skew` seconds before expiry; concurrent requests for the
 * same key share one exchange.
 */
export class ExchangedTokenCache {
  /** Least recently used out; an entry is reused only until `skew` seconds before its expiry. */
  readonly #entries: LRUCache<string, ExchangedToken>;
  readonly #pending = new Map<string, Promise<ExchangedToken>>();
  readonly #nowSeconds: NowSeconds;

  constructor(options: { nowSeconds?: NowSeconds; maxEntries?: number } = {}) {
    this.#nowSeconds = options.nowSeconds ?? systemNowSeconds;
    this.#entries = new LRUCache({ max: options.maxEntries ?? 10_000 });
  }

  async get(key: string, skewSeconds: number, make: () => Promise<ExchangedToken>): Promise<ExchangedToken> {
    const hit = this.#entries.get(key);
    if (hit && hit.expiresAt - skewSeconds > this.#nowSeconds()) return hit;
    if (hit) this.#entries.delete(key);
    const pending = this.#pending.get(key);
    if (pending) return pending;
    const promise = make().then((token) => {
      this.#entries.set(key, token);
      return token;
    }).finally(() => this.#pending.delete(key));
    this.#pending.set(key, promise);
    return promise;
  }

  get size(): number {
    return this.#entries.size;
  }
}
