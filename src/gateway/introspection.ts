/**
 * RFC 7662 token introspection for opaque access tokens, client-authenticated
 * (client_secret_basic, RFC 6749 §2.3.1), with a bounded cache that never outlives a token.
 * The request and the response checks are oauth4webapi's; the cache and its rules are ours.
 */
import { type NowSeconds } from '../kernel/clock.ts';
import { createHash } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import * as oauth from 'oauth4webapi';
import { requestOptions, type FetchLike } from '../http/authorization-server-metadata.ts';

export interface IntrospectionOptions {
  endpoint: string;
  /** The authorization server's issuer identifier (default: the endpoint's origin). */
  issuer?: string;
  clientId: string;
  clientSecret: string;
  /** Most entries kept; the least recently used go first. */
  maxEntries?: number;
  /** Longest an active answer is reused, in seconds (never beyond the token's `exp`). */
  maxAgeSeconds?: number;
  /** Seconds since the epoch; tests move time. */
  nowSeconds?: NowSeconds;
  /** Longest wait for the endpoint, in ms. Default 10 000. */
  timeoutMs?: number;
  /** For tests: the HTTP client. */
  fetch?: FetchLike;
}

export interface IntrospectionResult {
  active: boolean;
  claims: Record<string, unknown>;
}

export interface Introspector {
  introspect(token: string): Promise<IntrospectionResult>;
  /** Entries held now (for tests and metrics). */
  readonly size: number;
  /** Calls made to the endpoint (for tests and metrics). */
  readonly calls: number;
}

/** The introspection endpoint failed or broke the protocol; the message is for the log (no token in it). */
export class IntrospectionFailed extends Error {
  override name = 'IntrospectionFailed';
}

/** A log line for an oauth4webapi failure: the HTTP status and OAuth error when the endpoint gave them. */
function describeFailure(err: unknown): string {
  if (err instanceof oauth.ResponseBodyError) return `introspection endpoint answered ${err.status} ${err.error}`;
  if (err instanceof oauth.WWWAuthenticateChallengeError) return `introspection endpoint answered ${err.status} with a ${err.cause[0]?.scheme ?? 'WWW-Authenticate'} challenge`;
  if (err instanceof oauth.OperationProcessingError && err.cause instanceof Response) return `introspection endpoint answered ${err.cause.status}`;
  if (err instanceof oauth.OperationProcessingError) return `introspection response rejected (RFC 7662 §2.2): ${err.message}`;
  return `introspection endpoint unreachable: ${err instanceof Error ? err.name : String(err)}`;
}

/**
 * @see https://www.rfc-editor.org/rfc/rfc7662#section-2
 */
export function createIntrospector(options: IntrospectionOptions): Introspector {
  const maxAge = options.maxAgeSeconds ?? 60;
  // Fractional on purpose: a cached answer expires at its `exp`, not up to a second later.
  const nowSeconds = options.nowSeconds ?? (() => Date.now() / 1000);
  const as: oauth.AuthorizationServer = { issuer: options.issuer ?? new URL(options.endpoint).origin, introspection_endpoint: options.endpoint };
  const client: oauth.Client = { client_id: options.clientId };
  const clientAuth = oauth.ClientSecretBasic(options.clientSecret);
  // Keyed by a hash so the cache never holds a token itself (MCP security: token storage).
  // Expiry is checked against `nowSeconds` (the injected clock), so entries carry their own deadline.
  const cache = new LRUCache<string, { until: number; result: IntrospectionResult }>({ max: options.maxEntries ?? 10_000 });
  let calls = 0;

  async function fetchIntrospection(token: string): Promise<IntrospectionResult> {
    calls++;
    try {
      const response = await oauth.introspectionRequest(as, client, clientAuth, token, {
        additionalParameters: { token_type_hint: 'access_token' },
        ...requestOptions(options),
      });
      // RFC 7662 §2.2: `active` is a boolean (oauth4webapi refuses anything else).
      const claims = await oauth.processIntrospectionResponse(as, client, response) as Record<string, unknown>;
      return { active: claims.active === true, claims };
    } catch (err) {
      throw new IntrospectionFailed(describeFailure(err), { cause: err });
    }
  }

  return {
    get size() {
      return cache.size;
    },
    get calls() {
      return calls;
    },
    async introspect(token) {
      const key = createHash('sha256').update(token).digest('base64url');
      const t = nowSeconds();
      const hit = cache.get(key);
      if (hit && hit.until > t) return hit.result;
      if (hit) cache.delete(key);
      const result = await fetchIntrospection(token);
      const exp = typeof result.claims.exp === 'number' ? result.claims.exp : t + maxAge;
      // An inactive answer is cached briefly (a burst of retries costs one call); an active one
      // never beyond the token's own expiry.
      const until = result.active ? Math.min(t + maxAge, exp) : t + Math.min(maxAge, 10);
      if (until > t) cache.set(key, { until, result });
      return result;
    },
  };
}
