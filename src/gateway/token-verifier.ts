/**
 * Access-token verification (MCP authorization §Token Handling, OAuth 2.1 §5.2):
 * JWT access tokens (RFC 9068) with jose, opaque tokens with RFC 7662 introspection.
 * The result is a `Caller`; every failure is a GatewayError `invalid_token` (401).
 */
import { type NowSeconds } from '../kernel/clock.ts';
import { createLocalJWKSet, createRemoteJWKSet, customFetch, decodeProtectedHeader, errors as joseErrors, jwtVerify, type JSONWebKeySet, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import type { Config, ServerConfig } from '../config/schema.ts';
import type { Caller } from '../kernel/caller.ts';
import { GatewayError } from './errors.ts';
import { VerifiedCache } from './verified-cache.ts';
import { readClaim } from '../policy/claim-path.ts';
import { createIntrospector, type Introspector } from './introspection.ts';
import { authorizationServerIssuer } from './protected-resource-metadata.ts';
import { canonicalResourceUri } from '../kernel/resource-uri.ts';
import { discoverAuthorizationServer } from '../http/authorization-server-metadata.ts';

/** Asymmetric JWS algorithms only: never `none`, never HS* (a shared secret the issuer cannot hold alone). */
export const ASYMMETRIC_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'] as const;

/** RFC 9068 §4 leaves skew to the resource server; at most 60 s. */
const CLOCK_TOLERANCE_SECONDS = 60;
/** Embedded AS: least time between keys-table checks caused by an unknown `kid`. */
const KEYS_RELOAD_COOLDOWN_MS = 5_000;
/** Bound on JWKS re-fetches when a token names an unknown `kid`. */
const JWKS_COOLDOWN_MS = 30_000;

export interface TokenVerifier {
  /**
   * Verifies `token` for `server` and returns the caller.
   * @throws GatewayError invalid_token
   */
  verify(token: string, server: ServerConfig): Promise<Caller>;
  /**
   * The caller of a token verified before, answered without a promise: a cache hit still within
   * its exp/nbf, under the current key set, that the revocation check clears synchronously.
   * Undefined whenever `verify` must decide (a miss, an expired or revoked entry, keys or a
   * revocation answer still on their way): it never refuses on its own. Optional: a verifier of
   * one's own (`createGateway({ verifier })`) may have only `verify`.
   */
  verifyNow?(token: string, server: ServerConfig): Caller | undefined;
  /**
   * Fetches now what the first verification would otherwise fetch on a request's path: an
   * external issuer's RFC 8414 metadata, its JWKS, and its introspection endpoint when one is
   * configured (nothing, for the embedded AS). Rejects with why they could not be had; a
   * verification then tries again. Optional, as `verifyNow`.
   */
  warm?(): Promise<void>;
}

export interface TokenVerifierOptions {
  config: Config;
  /**
   * The embedded authorization server's public keys (no HTTP hop). Required in embedded mode.
   * Read at every verification, cache hits included (so keep it a memory read), and compared by
   * identity: return the same object while the keys are unchanged, a new one when they change.
   */
  publicJwks?: () => JSONWebKeySet | Promise<JSONWebKeySet>;
  /**
   * Embedded AS: re-reads its keys table (`reloadSigningKeys`), for a token whose `kid` is not
   * in `publicJwks` yet because another instance on the same database rotated first.
   */
  reloadKeys?: () => Promise<unknown>;
  /** Least time between two `reloadKeys` calls (default 5 s): bounds the work of made-up kids. */
  keysReloadCooldownMs?: number;
  /** Seconds since the epoch (RFC 7519 NumericDate); tests move time. */
  nowSeconds?: NowSeconds;
  /** External issuers: least time between JWKS re-fetches for an unknown `kid` (default 30 s). */
  jwksCooldownMs?: number;
  /** Verified JWTs remembered (the signature is checked once; exp/nbf at every use). Default 10 000; 0 disables. */
  cacheEntries?: number;
  /**
   * RFC 7009 §2.1: true when the authorization server revoked this token, by its `jti` or with
   * its grant (`grant_id`), user (`sub`) or client (`client_id`). Asked at every use, cache hits
   * included: it is on the hot path, so answer synchronously from memory when you can (the
   * embedded AS does, src/authorization-server/revocation.ts); a promise is awaited.
   */
  isRevoked?: (claims: Readonly<Record<string, unknown>>) => boolean | Promise<boolean>;
  /** Aborted when the owner closes: ends an external issuer's metadata and JWKS fetches in flight. */
  signal?: AbortSignal;
}

function stringList(v: unknown): string[] {
  if (typeof v === 'string') return v.split(' ').filter(Boolean);
  if (Array.isArray(v)) return v.filter((x): x is string => typeof x === 'string');
  return [];
}

/** RFC 9068 §2.2 claims (plus common IdP spellings: `scp`, `azp`, `appid`) → Caller. */
function toCaller(claims: Record<string, unknown>, audience: string, token: string, rolesClaim: string, rolesPath: readonly string[]): Caller {
  if (typeof claims.sub !== 'string' || claims.sub.length === 0) {
    throw new GatewayError('invalid_token', 'the access token is not valid for this resource', { reason: 'no sub claim' });
  }
  const clientId = [claims.client_id, claims.azp, claims.appid].find((v): v is string => typeof v === 'string') ?? '';
  const scopes = claims.scope !== undefined ? stringList(claims.scope) : stringList(claims.scp);
  return {
    subject: claims.sub,
    clientId,
    issuer: typeof claims.iss === 'string' ? claims.iss : '',
    audience,
    scopes,
    roles: stringList(readClaim(claims, rolesClaim, rolesPath)),
    claims: Object.freeze({ ...claims }),
    expiresAt: typeof claims.exp === 'number' ? claims.exp : 0,
    accessToken: token,
  };
}

function looksLikeJwt(token: string): boolean {
  if (token.split('.').length !== 3) return false;
  try {
    decodeProtectedHeader(token);
    return true;
  } catch {
    return false;
  }
}

interface DiscoveredMetadata {
  jwks_uri?: string;
  introspection_endpoint?: string;
}

/**
 * RFC 8414 §3 (path-inserted well-known), then OpenID Connect Discovery 1.0 §4; the document's
 * `issuer` must equal the configured issuer (RFC 8414 §3.3). oauth4webapi does the requests and
 * the checks (src/http/authorization-server-metadata.ts).
 */
export async function discoverIssuerMetadata(issuer: string, signal?: AbortSignal): Promise<DiscoveredMetadata> {
  const as = await discoverAuthorizationServer(issuer, { signal });
  return { jwks_uri: as.jwks_uri, introspection_endpoint: as.introspection_endpoint };
}

/**
 * The embedded AS's keys, in process (no HTTP hop). `publicJwks()` is read at every verification:
 * it is a memory read that returns the same frozen object until the AS's keys change (a live
 * rotation, keys-reload.ts, hands out a new object), so comparing identities tells a changed set
 * apart at no cost. The local set is rebuilt on a change, in both directions: the first token of a new key
 * verifies at once, and a key `keys rotate --force` retired (a compromised key, RFC 7517 §5: a
 * key no longer in the set must not be used) stops verifying at once rather than when a token
 * names an unknown kid. `onChange` runs on every rebuild so the verifier forgets what it verified
 * with the old set. When the set is unchanged and a token names an unknown kid, `reloadKeys` (the
 * AS's keys-table check) runs at most once per `reloadCooldownMs`: another instance on the same
 * database may have rotated first.
 */
function embeddedKeyResolver(
  publicJwks: () => JSONWebKeySet | Promise<JSONWebKeySet>,
  reloadKeys: (() => Promise<unknown>) | undefined,
  reloadCooldownMs: number,
  onChange: () => void,
): { getKey: JWTVerifyGetKey; sync: () => Promise<void>; syncNow: () => boolean } {
  let current: { jwks: JSONWebKeySet; getKey: JWTVerifyGetKey } | undefined;
  let lastReload = -Infinity;
  /** Takes `jwks` as the local set; true when it changed. */
  const adopt = (jwks: JSONWebKeySet) => {
    if (current?.jwks === jwks) return false;
    const first = current === undefined;
    current = { jwks, getKey: createLocalJWKSet(jwks) };
    if (!first) onChange();
    return true;
  };
  /** Brings the local set up to date with the AS; true when it changed. */
  const load = async () => adopt(await publicJwks());
  /**
   * The same without a promise, when the AS answers synchronously (the embedded AS holds its set
   * in memory); false when the answer is a promise, which then updates the set when it settles.
   */
  const syncNow = () => {
    const jwks = publicJwks();
    if (jwks instanceof Promise) {
      jwks.then(adopt, () => undefined);
      return false;
    }
    adopt(jwks);
    return true;
  };
  const refresh = async () => {
    if (await load()) return true;
    if (!reloadKeys || Date.now() - lastReload < reloadCooldownMs) return false;
    lastReload = Date.now();
    // A failed check leaves the keys as they were: the token is then refused as unknown-kid.
    await reloadKeys().catch(() => undefined);
    return load();
  };
  // `sync` runs once per verification, before the cache lookup; the lookup itself then uses that
  // set, so a verification reads the AS's keys once (twice for an unknown kid).
  const getKey: JWTVerifyGetKey = async (header, token) => {
    if (!current) await load();
    try {
      return await current!.getKey(header, token);
    } catch (err) {
      if (err instanceof joseErrors.JWKSNoMatchingKey && (await refresh())) return current!.getKey(header, token);
      throw err;
    }
  };
  return { getKey, sync: async () => { await load(); }, syncNow };
}

/**
 * Failures of the key source, not of the token: fetch errors and timeouts of discovery or the
 * JWKS (jose reports a JWKS that is not 200 as a generic JOSEError, a timeout as JWKSTimeout).
 */
function isKeySourceFailure(err: unknown): boolean {
  if (err instanceof joseErrors.JWKSTimeout || err instanceof joseErrors.JWKSInvalid) return true;
  if (err instanceof joseErrors.JOSEError) return err.code === 'ERR_JOSE_GENERIC';
  return true;
}

function unavailable(err: unknown): GatewayError {
  return new GatewayError('authorization_server_unavailable', 'the authorization server could not be reached to verify the access token; try again later', {
    reason: `key source failed: ${err instanceof Error ? err.message : String(err)}`,
  });
}

function describeJoseError(err: unknown): { description: string; reason: string } {
  if (err instanceof joseErrors.JWTExpired) return { description: 'the access token expired', reason: 'exp' };
  if (err instanceof joseErrors.JWTClaimValidationFailed) return { description: 'the access token is not valid for this resource', reason: `claim ${err.claim}: ${err.reason}` };
  if (err instanceof joseErrors.JOSEAlgNotAllowed) return { description: 'the access token is not valid for this resource', reason: 'algorithm not allowed' };
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) return { description: 'the access token is not valid for this resource', reason: 'signature' };
  if (err instanceof joseErrors.JWKSNoMatchingKey) return { description: 'the access token is not valid for this resource', reason: 'no matching key' };
  if (err instanceof joseErrors.JOSEError) return { description: 'the access token is not valid for this resource', reason: err.code };
  return { description: 'the access token could not be verified', reason: err instanceof Error ? err.message : 'unknown' };
}

/**
 * Builds the verifier for the configured authorization server.
 * @see https://www.rfc-editor.org/rfc/rfc9068#section-4
 * @see https://www.rfc-editor.org/rfc/rfc7662#section-2
 */
export function createTokenVerifier(options: TokenVerifierOptions): Required<TokenVerifier> {
  const { config } = options;
  const issuer = authorizationServerIssuer(config);
  const as = config.authorizationServer;
  const external = 'external' in as ? as.external : undefined;
  const algorithms: string[] = external ? [...external.algorithms] : [...ASYMMETRIC_ALGORITHMS];
  const rolesClaim = external ? external.rolesClaim : 'roles';
  const rolesPath = rolesClaim.split('.');
  const nowSeconds = options.nowSeconds;
  const cooldownMs = options.jwksCooldownMs ?? JWKS_COOLDOWN_MS;

  /**
   * The `aud` values a token for `server` may carry (RFC 9068 §4: the resource server checks it
   * identifies itself). Embedded: the canonical URI. External: the server's own `audience` for
   * providers that name each API (Entra ID, Auth0, Okta), else the gateway-wide one for
   * providers that ignore RFC 8707 `resource`, else the canonical URI.
   */
  function acceptedAudiences(server: ServerConfig, resource: string): string[] {
    if (!external) return [resource];
    if (server.audience !== undefined) return [server.audience].flat();
    return [external.audience ?? resource];
  }

  let discovered: Promise<DiscoveredMetadata> | undefined;
  const discover = () => {
    discovered ??= discoverIssuerMetadata(issuer, options.signal).catch((err: unknown) => {
      discovered = undefined;
      throw err;
    });
    return discovered;
  };

  // A JWT is immutable: once its signature and claims verified, later uses only need the time
  // checks. Bounded, least recently used out; entries never outlive the token's exp (checked at
  // every use against the injected clock), nor the key set they were verified with (embedded AS:
  // cleared when its keys change, see embeddedKeyResolver). Oldest out (verified-cache.ts).
  const maxCached = options.cacheEntries ?? 10_000;
  const verified = new VerifiedCache(Math.max(1, maxCached));
  /** Bumped at every key-set change: a verification that straddles one is not cached. */
  let keySetGeneration = 0;

  let getKey: JWTVerifyGetKey;
  /** External issuer: its key set, fetched unless jose holds a fresh one. */
  let warmKeys: (() => Promise<void>) | undefined;
  /** Embedded AS: brings the key set up to date before a cache lookup. */
  let syncKeys: (() => Promise<void>) | undefined;
  /** Embedded AS: the same without a promise; false when that cannot be done now. */
  let syncKeysNow: (() => boolean) | undefined;
  if (external) {
    let remote: ReturnType<typeof createRemoteJWKSet> | undefined;
    const signal = options.signal;
    // The owner's close ends a JWKS fetch in flight too (jose's own timeout still applies).
    const fetchJwks = signal ? { [customFetch]: (url: string, init: RequestInit) => fetch(url, { ...init, signal: init.signal ? AbortSignal.any([init.signal, signal]) : signal }) } : {};
    const remoteKeys = async () => {
      if (remote) return remote;
      const meta = await discover();
      if (!meta.jwks_uri) throw new Error('issuer metadata has no jwks_uri');
      // jose caches the set and re-fetches on an unknown kid no more than once per cooldown.
      remote ??= createRemoteJWKSet(new URL(meta.jwks_uri), { cooldownDuration: cooldownMs, cacheMaxAge: 10 * 60_000, timeoutDuration: 10_000, ...fetchJwks });
      return remote;
    };
    // The set fetched at start stands in for the fetch the first verification would have made:
    // jose's cooldown counts from it, so a key the issuer published in between would be refused
    // as unknown. The first verification after start that names an unknown kid re-fetches once.
    let fetchedOnlyAtStart = false;
    getKey = async (header, token) => {
      const keys = await remoteKeys();
      const first = fetchedOnlyAtStart;
      fetchedOnlyAtStart = false;
      try {
        return await keys(header, token);
      } catch (err) {
        if (!first || !(err instanceof joseErrors.JWKSNoMatchingKey)) throw err;
        await keys.reload();
        return keys(header, token);
      }
    };
    warmKeys = async () => {
      const meta = await discover();
      // RFC 8414 §2: jwks_uri is optional; an issuer whose tokens are all introspected needs none.
      if (!meta.jwks_uri && external.introspection) return;
      const keys = await remoteKeys();
      if (keys.fresh) return;
      await keys.reload();
      fetchedOnlyAtStart = true;
    };
  } else {
    if (!options.publicJwks) throw new Error('embedded authorization server mode needs publicJwks');
    // RFC 7517 §5: a token verified with a key that has since left the set (`keys rotate
    // --force`) is not served from the cache: with a compromised key the attacker chose its exp.
    ({ getKey, sync: syncKeys, syncNow: syncKeysNow } = embeddedKeyResolver(options.publicJwks, options.reloadKeys, options.keysReloadCooldownMs ?? KEYS_RELOAD_COOLDOWN_MS, () => {
      keySetGeneration++;
      verified.clear();
    }));
  }

  let introspector: Promise<Introspector> | undefined;
  const getIntrospector = () => {
    const cfg = external?.introspection;
    if (!cfg) return undefined;
    introspector ??= (async () => {
      const endpoint = cfg.endpoint ?? (await discover()).introspection_endpoint;
      if (!endpoint) throw new Error('no introspection endpoint configured or discovered');
      return createIntrospector({ endpoint, issuer, clientId: cfg.clientId, clientSecret: cfg.clientSecret, ...(nowSeconds ? { nowSeconds } : {}) });
    })().catch((err: unknown) => {
      introspector = undefined;
      throw err;
    });
    return introspector;
  };

  const clock = () => (nowSeconds ? nowSeconds() : Date.now() / 1000);

  const isRevoked = options.isRevoked;
  /**
   * RFC 7009 §2: a revoked token is refused from then on, also when its verification is cached.
   * A synchronous answer (the usual one) is taken without a promise or an await.
   */
  const refuseIfRevoked = (caller: Caller, path: string, token: string): void | Promise<void> => {
    const answer = isRevoked!(caller.claims);
    if (answer === false) return;
    if (answer === true) return revoked(path, token);
    return answer.then((yes) => { if (yes) revoked(path, token); });
  };
  const revoked = (path: string, token: string): never => {
    verified.delete(path, token);
    throw new GatewayError('invalid_token', 'the access token was revoked', { reason: 'revoked' });
  };

  /** RFC 7519 §4.1.4, §4.1.5: a remembered verification is used only while its exp and nbf allow. */
  const stillValid = (hit: Caller) => {
    const t = clock();
    const nbf = hit.claims.nbf;
    return hit.expiresAt + CLOCK_TOLERANCE_SECONDS > t && !(typeof nbf === 'number' && nbf - CLOCK_TOLERANCE_SECONDS > t);
  };

  return {
    async warm() {
      await Promise.all([warmKeys?.(), getIntrospector()]);
    },
    verifyNow(token, server) {
      if (maxCached === 0 || (syncKeysNow && !syncKeysNow())) return undefined;
      const hit = verified.get(server.path, token);
      if (!hit || !stillValid(hit)) return undefined;
      if (isRevoked) {
        const answer = isRevoked(hit.claims);
        // Any answer but a synchronous "not revoked" is verify's to handle; it asks again. A
        // promise is left settled quietly here: verify reports its failure, not this one.
        if (answer instanceof Promise) answer.catch(() => undefined);
        if (answer !== false) return undefined;
      }
      return hit;
    },
    async verify(token, server) {
      const path = server.path;
      if (syncKeys) await syncKeys();
      const generation = keySetGeneration;
      const hit = maxCached > 0 ? verified.get(path, token) : undefined;
      if (hit) {
        if (stillValid(hit)) {
          if (isRevoked) {
            const pending = refuseIfRevoked(hit, path, token);
            if (pending) await pending;
          }
          return hit;
        }
        verified.delete(path, token);
      }
      const jwt = looksLikeJwt(token);
      const caller = await verifyUncached(token, server, jwt);
      if (isRevoked) await refuseIfRevoked(caller, path, token);
      if (maxCached > 0 && jwt && generation === keySetGeneration) verified.set(path, token, caller);
      return caller;
    },
  };

  /** `jwt`: whether the token looks like a JWT (else it is introspected), decided once by the caller. */
  async function verifyUncached(token: string, server: ServerConfig, jwt: boolean): Promise<Caller> {
    {
      const resource = canonicalResourceUri(config, server);
      const expectedAudience = acceptedAudiences(server, resource);
      if (jwt) {
        let payload: JWTPayload;
        try {
          ({ payload } = await jwtVerify(token, getKey, {
            issuer,
            audience: expectedAudience,
            algorithms,
            clockTolerance: CLOCK_TOLERANCE_SECONDS,
            requiredClaims: ['exp', 'sub'],
            ...(external ? {} : { typ: 'at+jwt' }),
            ...(nowSeconds ? { currentDate: new Date(nowSeconds() * 1000) } : {}),
          }));
        } catch (err) {
          // An unreachable issuer is an outage, not a bad token: a 401 would send clients through OAuth again.
          if (isKeySourceFailure(err)) throw unavailable(err);
          const { description, reason } = describeJoseError(err);
          throw new GatewayError('invalid_token', description, { reason });
        }
        return toCaller(payload as Record<string, unknown>, resource, token, rolesClaim, rolesPath);
      }
      const intro = getIntrospector();
      if (!intro) throw new GatewayError('invalid_token', 'the access token is not valid for this resource', { reason: 'not a JWT and no introspection configured' });
      let result;
      try {
        result = await (await intro).introspect(token);
      } catch (err) {
        throw unavailable(err);
      }
      const c = result.claims;
      const t = nowSeconds ? nowSeconds() : Date.now() / 1000;
      if (!result.active) throw new GatewayError('invalid_token', 'the access token is not active', { reason: 'inactive' });
      if (typeof c.exp === 'number' && c.exp + CLOCK_TOLERANCE_SECONDS < t) throw new GatewayError('invalid_token', 'the access token expired', { reason: 'exp' });
      if (typeof c.nbf === 'number' && c.nbf - CLOCK_TOLERANCE_SECONDS > t) throw new GatewayError('invalid_token', 'the access token is not valid yet', { reason: 'nbf' });
      if (c.iss !== undefined && c.iss !== issuer) throw new GatewayError('invalid_token', 'the access token is not valid for this resource', { reason: 'introspection iss' });
      // MCP authorization §Token Handling: the token must prove it was issued for this resource.
      if (!stringList(c.aud).some((aud) => expectedAudience.includes(aud))) throw new GatewayError('invalid_token', 'the access token is not valid for this resource', { reason: 'introspection aud' });
      return toCaller({ iss: issuer, ...c }, resource, token, rolesClaim, rolesPath);
    }
  }
}
