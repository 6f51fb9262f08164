/**
 * RFC 8693 OAuth 2.0 Token Exchange at the embedded authorization server, as an oidc-provider
 * custom grant. The gateway exchanges a caller's access token (the `subject_token`) for a token
 * aimed at one configured downstream API: `sub` stays the user, `act.sub` names the gateway,
 * `aud` is the downstream, and the scope is never wider than what the caller already holds.
 *
 * The token endpoint has already authenticated the client (RFC 6749 §2.3) and checked that its
 * metadata lists this grant; the checks here, in order: the client is one configured to exchange
 * (else unauthorized_client), the request parameters (invalid_request), the target
 * (invalid_target), the subject token (invalid_grant), `may_act` (invalid_grant), the scope
 * (invalid_scope). Errors are oidc-provider errors, rendered as JSON with Cache-Control: no-store.
 */
import { type NowSeconds, systemNowSeconds } from '../../kernel/clock.ts';
import { randomUUID, type KeyObject } from 'node:crypto';
import type { CryptoKey, JWTPayload, JSONWebKeySet } from 'jose';
import { createLocalJWKSet, createRemoteJWKSet, importJWK, jwtVerify, SignJWT, errors as joseErrors } from 'jose';
import type Provider from 'oidc-provider';
import { errors, type KoaContextWithOIDC, type TokenEndpointGrantContext } from 'oidc-provider';
import type { ExchangeAudienceConfig, TokenExchangeServerConfig, TrustedIssuerConfig } from '../../downstream/schema.ts';
import { resolveGatewayClient, TOKEN_EXCHANGE_GRANT } from '../../downstream/gateway-client.ts';
import type { SettingsStore } from '../../storage/downstream-store.ts';
import type { AuthorizationServerExtension } from '../extension.ts';
import { ensureFirstPartyClient } from '../first-party-client.ts';
import { toPublicJwk } from '../keys.ts';
import { publishedKids } from '../keys-reload.ts';
import { canonicalResourceUri } from '../resources.ts';

export { TOKEN_EXCHANGE_GRANT };

/** RFC 8693 §3 token type identifiers. */
export const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';
const JWT_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:jwt';

/** RFC 8693 §2.1 request parameters (besides grant_type and client authentication). */
const PARAMETERS = ['subject_token', 'subject_token_type', 'actor_token', 'actor_token_type', 'requested_token_type', 'audience', 'resource', 'scope'] as const;

export interface TokenExchangeGrantOptions {
  config: TokenExchangeServerConfig;
  /** The gateway's own client id (always allowed to exchange). */
  gatewayClientId: string;
  /**
   * Public keys of this authorization server, to verify subject tokens it issued as JWTs
   * (RFC 9068). Called per exchange, so rotated keys are picked up.
   */
  localJwks: () => JSONWebKeySet | Promise<JSONWebKeySet>;
  /**
   * The authorization server's current signing key (the one oidc-provider signs access tokens
   * with), so exchanged tokens verify with the same JWKS as every other token it issues.
   */
  signingKey: () => Promise<{ key: CryptoKey | KeyObject | Uint8Array; kid?: string; alg: string }>;
  /**
   * The MCP servers' canonical resource URIs (RFC 8707 §2): a subject token this server issued
   * must name one of them in `aud`. A token issued for anything else (a downstream API, another
   * exchange's result) is not exchangeable (invalid_grant, RFC 8693 §2.2.2).
   */
  mcpResources: readonly string[];
  /** Whether a token this server issued was revoked (RFC 7009), by its claims. Default: never. */
  isRevoked?: (claims: JWTPayload) => boolean | Promise<boolean>;
  /** For tests: the clock, in seconds. */
  nowSeconds?: NowSeconds;
}

/** The verified facts of a subject token. */
interface SubjectFacts {
  sub: string;
  scopes: Set<string>;
  claims: JWTPayload;
}

/** Registers the grant on `provider`. Call once, after constructing the provider. @see RFC 8693 §2 */
export function registerTokenExchangeGrant(provider: Provider, options: TokenExchangeGrantOptions): void {
  const { config, gatewayClientId } = options;
  const allowed = new Set([gatewayClientId, ...config.allowedClients]);
  const nowSeconds = options.nowSeconds ?? systemNowSeconds;
  const mcpResources = new Set(options.mcpResources);
  const remoteSets = new Map<string, ReturnType<typeof createRemoteJWKSet>>(
    config.trustedIssuers.map((t) => [t.issuer, createRemoteJWKSet(new URL(t.jwksUri), { timeoutDuration: 5000, cooldownDuration: 30_000 })]),
  );

  async function verifySubjectToken(token: string): Promise<SubjectFacts> {
    // RFC 8725 §2.1 / RFC 9068 §4: verify with named issuer, algorithms and typ; never decode and trust.
    let issuer: string | undefined;
    try {
      const [, body] = token.split('.');
      issuer = JSON.parse(Buffer.from(body ?? '', 'base64url').toString('utf8')).iss;
    } catch {
      issuer = undefined;
    }
    if (typeof issuer !== 'string') throw invalidGrant('subject_token is not a JWT access token');
    const currentDate = new Date(nowSeconds() * 1000);
    try {
      let payload: JWTPayload;
      if (issuer === provider.issuer) {
        ({ payload } = await jwtVerify(token, createLocalJWKSet(await options.localJwks()), {
          issuer: provider.issuer,
          typ: 'at+jwt',
          algorithms: ['RS256', 'PS256', 'ES256', 'EdDSA'],
          currentDate,
          requiredClaims: ['sub', 'exp'],
        }));
        // RFC 8693 §2.2.2 / RFC 8707 §2: only a token meant for one of our MCP servers may be
        // exchanged; a token a downstream API received must not buy a token for another one.
        const aud = typeof payload.aud === 'string' ? [payload.aud] : Array.isArray(payload.aud) ? payload.aud : [];
        if (!aud.some((a) => mcpResources.has(a))) throw invalidGrant('subject_token was not issued for an MCP server of this gateway');
        if (options.isRevoked && await options.isRevoked(payload)) throw invalidGrant('subject_token was revoked');
      } else {
        const trusted = config.trustedIssuers.find((t: TrustedIssuerConfig) => t.issuer === issuer);
        if (!trusted) throw invalidGrant('subject_token was not issued by this server or a trusted issuer');
        ({ payload } = await jwtVerify(token, remoteSets.get(trusted.issuer)!, {
          issuer: trusted.issuer,
          audience: trusted.audience,
          algorithms: trusted.algorithms,
          currentDate,
          requiredClaims: ['sub', 'exp'],
        }));
      }
      const scopes = new Set(typeof payload.scope === 'string' ? payload.scope.split(' ').filter(Boolean) : []);
      return { sub: payload.sub!, scopes, claims: payload };
    } catch (err) {
      if (err instanceof errors.CustomOIDCProviderError) throw err;
      if (err instanceof joseErrors.JWTExpired) throw invalidGrant('subject_token is expired');
      // The reason (signature, audience, typ) stays in the detail for logs, not the description.
      throw invalidGrant('subject_token is invalid', `subject_token failed verification: ${(err as Error).name}`);
    }
  }

  async function handler(ctx: TokenEndpointGrantContext<Record<string, unknown>>): Promise<void> {
    const { client } = ctx.oidc;
    // RFC 6749 §5.2 unauthorized_client: only the configured clients may exchange, even if a
    // dynamically registered client listed this grant type in its metadata.
    if (!allowed.has(client.clientId)) {
      throw new errors.UnauthorizedClient('this client is not allowed to use token exchange');
    }

    const params = ctx.oidc.params as Record<string, unknown>;
    const subjectToken = single(params, 'subject_token', true)!;
    const subjectTokenType = single(params, 'subject_token_type', true)!;
    if (subjectTokenType !== ACCESS_TOKEN_TYPE && subjectTokenType !== JWT_TOKEN_TYPE) {
      throw new errors.InvalidRequest(`subject_token_type must be ${ACCESS_TOKEN_TYPE}`);
    }
    if (params.actor_token !== undefined || params.actor_token_type !== undefined) {
      // RFC 8693 §2.1: the authenticated client is the actor here; a separate actor token is not supported.
      throw new errors.InvalidRequest('actor_token is not supported: the authenticated client is the actor');
    }
    const requestedType = single(params, 'requested_token_type', false);
    if (requestedType !== undefined && requestedType !== ACCESS_TOKEN_TYPE && requestedType !== JWT_TOKEN_TYPE) {
      throw new errors.InvalidRequest(`requested_token_type must be ${ACCESS_TOKEN_TYPE}`);
    }

    const target = resolveTarget(config.audiences, params);
    const subject = await verifySubjectToken(subjectToken);

    // RFC 8693 §4.4: a subject token naming who may act for it admits no other actor.
    const mayAct = subject.claims.may_act;
    if (mayAct !== undefined) {
      const m = mayAct as { sub?: unknown; iss?: unknown };
      if (typeof m !== 'object' || m === null || m.sub !== client.clientId || (m.iss !== undefined && m.iss !== provider.issuer)) {
        throw invalidGrant('the subject token\'s may_act does not name this client');
      }
    }

    // Scope: the intersection of the subject token's scopes and what the downstream allows;
    // asking for more than that is invalid_scope (RFC 8693 §2.2.2, RFC 6749 §5.2), never widened.
    const permitted = target.scopes.filter((s) => subject.scopes.has(s));
    let granted: string[];
    const requestedScope = single(params, 'scope', false);
    if (requestedScope !== undefined) {
      const requested = [...new Set(requestedScope.split(' ').filter(Boolean))];
      const excess = requested.filter((s) => !permitted.includes(s));
      if (excess.length > 0) {
        throw new errors.InvalidScope('requested scope exceeds the subject token\'s scope or what the downstream API allows', excess.join(' '));
      }
      granted = requested;
    } else {
      granted = permitted;
    }

    const iat = nowSeconds();
    const ttl = Math.max(1, Math.min(target.accessTokenTtlSeconds, subject.claims.exp! - iat));
    // RFC 8693 §4.1: `act` names the current actor; a prior actor chain nests inside it.
    const act: Record<string, unknown> = { sub: client.clientId };
    if (subject.claims.act && typeof subject.claims.act === 'object') act.act = subject.claims.act;
    const local = subject.claims.iss === provider.issuer;
    // RFC 9068 §2.2 claims; roles carry over only from our own (verified) tokens.
    const payload: JWTPayload = {
      client_id: client.clientId,
      ...(granted.length ? { scope: granted.join(' ') } : {}),
      act,
      ...(local && Array.isArray(subject.claims.roles) ? { roles: subject.claims.roles } : {}),
      ...(local ? {} : { subject_issuer: subject.claims.iss }),
    };
    const signing = await options.signingKey();
    const accessToken = await new SignJWT(payload)
      .setProtectedHeader({ alg: signing.alg, typ: 'at+jwt', kid: signing.kid })
      .setIssuer(provider.issuer)
      .setSubject(subject.sub)
      .setAudience(target.audience)
      .setIssuedAt(iat)
      .setExpirationTime(iat + ttl)
      .setJti(randomUUID())
      .sign(signing.key);

    // RFC 8693 §2.2.1 successful response (the token endpoint already set Cache-Control: no-store).
    ctx.body = {
      access_token: accessToken,
      issued_token_type: ACCESS_TOKEN_TYPE,
      token_type: 'Bearer',
      expires_in: ttl,
      ...(granted.length ? { scope: granted.join(' ') } : {}),
    };
  }

  provider.registerGrantType(TOKEN_EXCHANGE_GRANT, handler, PARAMETERS, ['audience', 'resource']);

  // oidc-provider answers a client whose metadata lacks this grant with invalid_request; RFC 6749
  // §5.2 names that unauthorized_client, so the response is renamed here (same status, no-store).
  provider.use(async (ctx, next) => {
    await next();
    const oidc = (ctx as KoaContextWithOIDC).oidc as KoaContextWithOIDC['oidc'] | undefined;
    const body = ctx.body as { error?: string; error_description?: string } | undefined;
    if (
      oidc?.route === 'token'
      && (oidc.params as Record<string, unknown> | undefined)?.grant_type === TOKEN_EXCHANGE_GRANT
      && body?.error === 'invalid_request'
      && body.error_description === 'requested grant type is not allowed for this client'
    ) {
      ctx.body = { error: 'unauthorized_client', error_description: 'this client is not allowed to use token exchange' };
    }
  });
}

/** RFC 6749 §5.2 invalid_grant with a description the client sees (oidc-provider's InvalidGrant has a fixed one). */
function invalidGrant(description: string, detail?: string): Error {
  return new errors.CustomOIDCProviderError('invalid_grant', description, detail ? { detail } as never : undefined);
}

/**
 * RFC 6749 §5.2 / §4.1.2.1 server_error with our own description (oidc-provider replaces the
 * description of any 5xx error with a generic one unless it is marked as safe to expose; this one
 * names no key and no internal detail).
 */
function signingKeyUnavailable(): Error {
  const err = new errors.CustomOIDCProviderError('server_error', 'the authorization server cannot sign tokens until its signing keys are reloaded; try again later');
  return Object.assign(err, { status: 500, statusCode: 500, expose: true });
}

function single(params: Record<string, unknown>, name: string, required: boolean): string | undefined {
  const value = params[name];
  if (value === undefined || value === '') {
    if (required) throw new errors.InvalidRequest(`missing required parameter '${name}'`);
    return undefined;
  }
  if (typeof value !== 'string') throw new errors.InvalidRequest(`'${name}' must be given once`);
  return value;
}

/**
 * RFC 8693 §2.1: `resource` and `audience` name the target; here exactly one configured downstream
 * API, matched exactly. Anything else is invalid_target (§2.2.2).
 */
function resolveTarget(audiences: readonly ExchangeAudienceConfig[], params: Record<string, unknown>): ExchangeAudienceConfig {
  const values = [params.resource, params.audience].flatMap((v) => (v === undefined ? [] : Array.isArray(v) ? v : [v])) as string[];
  const distinct = [...new Set(values)];
  if (distinct.length === 0) throw new errors.InvalidTarget('name the downstream API with resource or audience');
  if (distinct.length > 1) throw new errors.InvalidTarget('only one downstream API per exchange');
  const match = audiences.find((a) => a.audience === distinct[0]);
  if (!match) throw new errors.InvalidTarget('the requested resource or audience is not a downstream API of this server');
  return match;
}

/**
 * The authorization-server extension that turns token exchange on when
 * `authorizationServer.embedded.tokenExchange` is configured: registers the grant and provisions
 * the gateway's confidential client (secret from config, env, or generated once; see
 * src/downstream/gateway-client.ts), replacing a stale registration on every start.
 */
export function createTokenExchangeExtension(deps: { settings: SettingsStore; env: NodeJS.ProcessEnv }): AuthorizationServerExtension {
  return async (provider, ctx) => {
    const as = ctx.config.authorizationServer;
    const config = 'embedded' in as ? as.embedded.tokenExchange : undefined;
    if (!config) return;
    const gateway = await resolveGatewayClient(config, deps.env, deps.settings);
    const activeKeys = async () => (await ctx.store.keys.list('sig')).filter((k) => k.retiredAt === undefined);
    registerTokenExchangeGrant(provider, {
      config,
      gatewayClientId: gateway.clientId,
      mcpResources: ctx.config.servers.map((server) => canonicalResourceUri(ctx.config, server)),
      localJwks: async () => ({ keys: (await activeKeys()).map((k) => toPublicJwk(k.jwk)) }),
      // RFC 7009 revocations of our JWT access tokens are kept by jti (src/authorization-server/index.ts).
      isRevoked: (claims) => ctx.revocations.isRevoked(claims),
      async signingKey() {
        // Sign with the key oidc-provider itself signs with, the first it publishes: after
        // `keys rotate` the newest row in the table is not published until the running provider
        // reloads its keys (keys-reload.ts), and a token signed with it would not verify against
        // our JWKS meanwhile. RFC 7517 §5: when that key was retired in the table (`keys rotate
        // --force`, a compromised key) and the reload has not run yet, or the published set cannot
        // be read, no key is both published and active: refuse rather than sign with one a
        // resource server cannot verify or must not trust. The reload (signingKeyCheckSeconds,
        // SIGHUP) ends the refusal.
        const keys = await activeKeys();
        const published = await publishedKids(provider).catch(() => undefined);
        const signing = published && keys.find((k) => k.kid === published[0]);
        if (!signing) {
          ctx.logger.error(
            { event: 'token_exchange_no_signing_key', published_signing_kid: published?.[0] ?? null, active_kids: keys.map((k) => k.kid) },
            'token exchange refused: the published signing key is retired or unknown; reload the signing keys (SIGHUP) after keys rotate',
          );
          throw signingKeyUnavailable();
        }
        return { key: await importJWK(signing.jwk, 'ES256'), kid: signing.kid, alg: 'ES256' };
      },
    });
    const registered = await ensureFirstPartyClient(provider, ctx.store, {
      clientId: gateway.clientId,
      clientName: 'mcp-warden gateway (token exchange)',
      grantTypes: [TOKEN_EXCHANGE_GRANT],
      redirectUris: [],
      clientSecret: gateway.clientSecret,
    });
    if (!registered) return;
    ctx.logger.info({ clientId: gateway.clientId, audiences: config.audiences.map((a) => a.audience) }, 'token exchange enabled for the gateway client');
  };
}
