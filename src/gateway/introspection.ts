/**
 * RFC 7662 token introspection for opaque access tokens, client-authenticated
 * (client_secret_basic, RFC 6749 §2.3.1), with a bounded cache that never outlives a token.
 */
import { createHash } from 'node:crypto';
import { request } from 'undici';
import { clientSecretBasic } from '../kernel/client-secret-basic.ts';

export interface IntrospectionOptions {
  endpoint: string;
  clientId: string;
  clientSecret: string;
  /** Most entries kept; the oldest go first. */
  maxEntries?: number;
  /** Longest an active answer is reused, in seconds (never beyond the token's `exp`). */
  maxAgeSeconds?: number;
  now?: () => number;
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


/**
 * @see https://www.rfc-editor.org/rfc/rfc7662#section-2
 */
export function createIntrospector(options: IntrospectionOptions): Introspector {
  const maxEntries = options.maxEntries ?? 10_000;
  const maxAge = options.maxAgeSeconds ?? 60;
  const now = options.now ?? (() => Date.now() / 1000);
  const authorization = clientSecretBasic(options.clientId, options.clientSecret);
  // Keyed by a hash so the cache never holds a token itself (MCP security: token storage).
  const cache = new Map<string, { until: number; result: IntrospectionResult }>();
  let calls = 0;

  async function fetchIntrospection(token: string): Promise<IntrospectionResult> {
    calls++;
    const res = await request(options.endpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json', authorization },
      body: new URLSearchParams({ token, token_type_hint: 'access_token' }).toString(),
      headersTimeout: 10_000,
      bodyTimeout: 10_000,
    });
    const text = await res.body.text();
    if (res.statusCode !== 200) throw new Error(`introspection endpoint answered ${res.statusCode}`);
    const body = JSON.parse(text) as unknown;
    if (typeof body !== 'object' || body === null || typeof (body as { active?: unknown }).active !== 'boolean') {
      throw new Error('introspection response lacks a boolean "active" (RFC 7662 §2.2)');
    }
    const claims = body as Record<string, unknown>;
    return { active: claims.active === true, claims };
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
      const t = now();
      const hit = cache.get(key);
      if (hit && hit.until > t) return hit.result;
      if (hit) cache.delete(key);
      const result = await fetchIntrospection(token);
      const exp = typeof result.claims.exp === 'number' ? result.claims.exp : t + maxAge;
      // An inactive answer is cached briefly (a burst of retries costs one call); an active one
      // never beyond the token's own expiry.
      const until = result.active ? Math.min(t + maxAge, exp) : t + Math.min(maxAge, 10);
      if (until > t) {
        if (cache.size >= maxEntries) cache.delete(cache.keys().next().value as string);
        cache.set(key, { until, result });
      }
      return result;
    },
  };
}
