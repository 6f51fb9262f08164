/**
 * The oidc-provider configuration of the embedded authorization server: what it allows is
 * decided here, one setting per rule, each citing its clause (OAuth 2.1, RFC 7591, RFC 8707,
 * RFC 9068, RFC 9207, MCP 2025-11-25 authorization).
 */
import type Provider from 'oidc-provider';
import { LRUCache } from 'lru-cache';
import type { Configuration, KoaContextWithOIDC, ClientMetadata, JWK } from 'oidc-provider';
import { errors, interactionPolicy, OidcProvider } from './oidc-provider-module.ts';
import type { Config, EmbeddedAuthorizationServerConfig } from '../config/schema.ts';
import type { UserStore } from '../users/user-store.ts';
import type { Store } from '../storage/store.ts';
import { createAdapterClass } from './adapter.ts';
import { generateClientId } from './client-id.ts';
import { verifyClientSecret } from './client-secret.ts';
import { createOutboundFetch, enableAllowedOriginClientIds, isFetchableClientId, isUrlClientId } from './client-id-metadata-document.ts';
import { AuthorizationServerError, fromOidcProviderError, renderAuthorizationServerError } from './errors.ts';
import { assertClientMetadataTypes } from './client-metadata.ts';
import { requestIdOf } from './request-id.ts';
import { mapFoundClients, replaceClientSecretComparison } from './oidc-provider-internals.ts';
import type { ResourceInfo } from './resources.ts';
import { attachRevocationList, type RevocationList } from './revocation.ts';
import { createRefreshRotation } from './grants/refresh-rotation.ts';

/** Routes of oidc-provider, all under /oauth so the gateway's paths stay free. @see RFC 8414 §2 */
export const ROUTES = {
  authorization: '/oauth/authorize',
  token: '/oauth/token',
  registration: '/oauth/register',
  revocation: '/oauth/revoke',
  introspection: '/oauth/introspect',
  jwks: '/oauth/jwks',
  userinfo: '/oauth/userinfo',
  end_session: '/oauth/logout',
  pushed_authorization_request: '/oauth/par',
  device_authorization: '/oauth/device/auth',
  code_verification: '/oauth/device',
  backchannel_authentication: '/oauth/backchannel',
  challenge: '/oauth/challenge',
  credential: '/oauth/credential',
} as const;

/** Client metadata only an administrator sets (CLI / demo), never DCR or a CIMD document. */
const ADMIN_ONLY_METADATA = ['warden_roles', 'warden_preregistered'] as const;

export interface ProviderOptions {
  config: Config;
  embedded: EmbeddedAuthorizationServerConfig;
  issuer: string;
  store: Store;
  users: UserStore;
  now: () => number;
  signingKeys: JWK[];
  cookieKeys: string[];
  resolveResource: (uri: string) => ResourceInfo | undefined;
  defaultResource: string | undefined;
  /** Which of a resource's scopes this user may hold (default: all). */
  scopesForUser: (user: { username: string; roles: string[] }, resource: ResourceInfo) => string[];
  fetchTimeoutMs: number;
  /** The issuer's path ('' for an origin issuer): prefix of the interaction pages. */
  basePath: string;
  /**
   * Clients that are part of mcp-warden itself (the account page): the user is not asked to
   * consent to them, as they would not be asked to consent to the login page. Never a client an
   * outside party registers. Each maps to the resources it may get a grant for without consent
   * (the account page's own resource, never an MCP server).
   */
  firstPartyClients?: ReadonlyMap<string, readonly string[]>;
  /** Where revoked grants and tokens are remembered (revocation.ts). */
  revocations: RevocationList;
  /** Runs right after a refresh rotation committed, before its answer is sent (crash tests only). */
  afterRotationCommit?: () => void;
  onRotationError?: (err: unknown) => void;
}

const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]']);

/** RFC 7591 §3.2.2 invalid_redirect_uri with our description (oidc-provider's own class has a fixed one). */
function invalidRedirectUri(description: string): Error {
  return new errors.CustomOIDCProviderError('invalid_redirect_uri', description);
}

/**
 * Inside oidc-provider's hooks only its own error classes are rendered as 4xx (anything else is
 * a 500): our typed error crosses that boundary as a CustomOIDCProviderError with the same code
 * and description.
 */
function toOidcProviderError(err: unknown): unknown {
  return err instanceof AuthorizationServerError ? new errors.CustomOIDCProviderError(err.code, err.description) : err;
}

/**
 * MCP / RFC 7591 §2 + RFC 8252 §7.3: web clients register https redirect URIs; native clients
 * loopback http or a private-use scheme. Everything else is invalid_redirect_uri.
 */
export function assertRegistrableRedirectUris(metadata: Record<string, unknown>, applicationTypeSent = true): void {
  const uris = metadata.redirect_uris;
  if (!Array.isArray(uris)) return;
  // Clients older than MCP 2026-07-28 (SEP-837) send no application_type; a loopback redirect
  // tells us they are native, so they are judged as native rather than refused.
  const native = metadata.application_type === 'native' || !applicationTypeSent;
  for (const value of uris) {
    const uri = typeof value === 'string' ? URL.parse(value) : null;
    if (!uri) throw invalidRedirectUri('redirect_uris must contain valid URIs');
    if (uri.hash || value.includes('#')) throw invalidRedirectUri('redirect_uris must not contain fragments');
    if (uri.protocol === 'https:') continue;
    if (uri.protocol === 'http:') {
      if (native && LOOPBACK.has(uri.hostname)) continue;
      throw invalidRedirectUri(native
        ? 'http redirect_uris are only accepted for loopback addresses'
        : 'web clients must use https redirect_uris (loopback http needs application_type native)');
    }
    if (native && /^[a-z][a-z0-9+.-]*\.[a-z0-9+.-]+:$/.test(uri.protocol)) continue; // RFC 8252 §7.1 private-use scheme
    throw invalidRedirectUri('redirect_uris must be https, loopback http (native), or a reverse-domain private-use scheme (native)');
  }
}

/** A client that registered itself (DCR) or describes itself (CIMD): never one an administrator added. */
function isSelfAssertedClient(client: { metadata(): Record<string, unknown> }): boolean {
  return client.metadata().warden_preregistered !== true;
}

/**
 * Fetch Metadata (W3C): the browser says this request is a top-level navigation the user started
 * themselves (typed, bookmarked, clicked on our own pages), not one another site started. All
 * three must hold, as FastMCP's fix for GHSA-6x8h-498w-gv8c requires; a client that does not send
 * them (no browser) gets the consent page.
 */
export function isUserNavigation(headers: Record<string, string | string[] | undefined>): boolean {
  const one = (name: string) => { const v = headers[name]; return typeof v === 'string' ? v.trim().toLowerCase() : undefined; };
  const site = one('sec-fetch-site');
  return (site === 'none' || site === 'same-origin') && one('sec-fetch-user') === '?1' && one('sec-fetch-mode') === 'navigate';
}

function sentApplicationType(ctx: KoaContextWithOIDC): boolean {
  const body = ctx.oidc.body as Record<string, unknown> | undefined;
  return typeof body?.application_type === 'string';
}

/**
 * RFC 8252 §7.3 / §8.4 and MCP 2025-11-25 §Redirect URI validation: redirect URIs of clients that
 * describe themselves (DCR, CIMD) are https or loopback.
 * A CIMD document's raw application_type is not visible here, so it is judged like a client
 * that sent none. Pre-registered clients are the administrator's call.
 */
function assertSelfAssertedRedirects(ctx: KoaContextWithOIDC | undefined, metadata: Record<string, unknown>): void {
  if (ctx?.oidc?.route === 'registration') assertRegistrableRedirectUris(metadata, sentApplicationType(ctx));
  else if (isUrlClientId(String(metadata.client_id))) {
    try {
      assertRegistrableRedirectUris(metadata, false);
    } catch (err) {
      // Client ID Metadata Document §4: a bad document is the client's failure (invalid_client_metadata).
      throw new errors.InvalidClientMetadata(`client ID metadata document: ${(err as { error_description?: string }).error_description ?? 'invalid redirect_uris'}`);
    }
  }
}

/**
 * oidc-provider's default prompts, except that a native client's remembered consent is honoured
 * (consent is remembered per user, client and scopes) instead of asking every time; for DCR and
 * CIMD clients only on the user's own navigation (loadExistingGrant).
 * Native clients registered by DCR are still shown as "unverified" with their redirect host.
 */
function consentPolicy() {
  const policy = interactionPolicy.base();
  policy.get('consent')?.checks.remove('native_client_prompt');
  return policy;
}

/**
 * MCP 2025-11-25 authorization §Scope Challenge Handling and 2026-07-28 SEP-2350 (the client asks
 * for the union of scopes at each step-up): a client that registered itself (DCR) or describes
 * itself (CIMD) names the scopes of its first challenge only, so its `scope` metadata cannot be a
 * ceiling, or step-up would end in invalid_scope. What it may get is decided by the resource
 * (getResourceServerInfo: its scopes, those the user's roles allow) and by the user's consent.
 * A pre-registered client's `scope` stays the administrator's ceiling. oidc-provider enforces a
 * client's `scope` wherever it loads the client, so it is lifted where clients are loaded.
 */
function liftSelfAssertedScopeCeiling(provider: Provider): void {
  mapFoundClients(provider, (client) => {
    if (isSelfAssertedClient(client)) delete client.scope;
  });
}

/** The oidc-provider instance of the embedded authorization server. @see RFC 6749, RFC 7636, RFC 8707, RFC 9068, RFC 9207 */
export function createProvider(o: ProviderOptions): Provider {
  const { embedded, users, store, now } = o;
  const cimd = embedded.clientIdMetadataDocuments;

  // Whether each pending interaction's authorization request was the user's own navigation. The
  // request that resumes after sign-in comes from our own login form, so it is the first
  // request's headers that count. Kept as long as an interaction lives; an interaction this
  // instance does not know (restart, another instance) counts as not started by the user.
  const userStarted = new LRUCache<string, boolean>({ max: 10_000, ttl: 30 * 60_000 });
  function startedByUser(ctx: KoaContextWithOIDC): boolean {
    if (ctx.oidc.route !== 'resume') return isUserNavigation(ctx.headers);
    const uid = ctx.oidc.entities.Interaction?.uid;
    return uid !== undefined && userStarted.get(uid) === true;
  }

  async function accountScopes(ctx: KoaContextWithOIDC, info: ResourceInfo): Promise<string[]> {
    const accountId = ctx.oidc.account?.accountId ?? ctx.oidc.session?.accountId;
    if (!accountId) return info.scopes;
    const user = await users.get(accountId);
    return user ? o.scopesForUser(user, info) : [];
  }

  // OAuth 2.1 §4.3.1: a refresh rotation and its answer commit together (grants/refresh-rotation.ts).
  const rotation = createRefreshRotation({
    models: store.models, now, refreshGraceSeconds: embedded.refreshGraceSeconds, tokenPath: ROUTES.token,
    ...(o.afterRotationCommit ? { afterCommit: o.afterRotationCommit } : {}),
    ...(o.onRotationError ? { onError: o.onRotationError } : {}),
  });

  const configuration: Configuration = {
    adapter: createAdapterClass({ store, now, rotation, revocations: o.revocations }),
    jwks: { keys: o.signingKeys },
    cookies: {
      keys: o.cookieKeys,
      long: { signed: true, httpOnly: true, sameSite: 'lax' },
      short: { signed: true, httpOnly: true, sameSite: 'lax' },
    },
    routes: ROUTES,
    interactions: { url: (_ctx, interaction) => `${o.basePath}/interaction/${interaction.uid}`, policy: consentPolicy() },
    async findAccount(_ctx, sub) {
      // A removed or disabled user has no account: their session and refresh tokens stop working.
      const user = await users.getActive(sub);
      if (!user) return undefined;
      return { accountId: user.username, claims: async () => ({ sub: user.username }) };
    },
    claims: { openid: ['sub'] },
    // Server scopes are listed too, so discovery's scopes_supported names them and a client's
    // `scope` metadata may restrict itself to them; tokens still carry them per resource.
    scopes: ['openid', 'offline_access', ...new Set(o.config.servers.flatMap((s) => s.scopes))],
    responseTypes: ['code'],
    // OAuth 2.1 §4.1.1: PKCE for every client; oidc-provider 9 accepts only S256.
    pkce: { required: () => true },
    // OAuth 2.1 §4.1.1 / RFC 9700 §4.1.3: the redirect_uri is always sent and matched exactly.
    allowOmittingSingleRegisteredRedirectUri: false,
    clientAuthMethods: ['none', 'client_secret_basic', 'client_secret_post', 'private_key_jwt'],
    enabledJWA: {
      clientAuthSigningAlgValues: ['ES256', 'ES384', 'ES512', 'EdDSA', 'PS256', 'RS256'],
      idTokenSigningAlgValues: ['ES256'],
    },
    clientDefaults: {
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
      id_token_signed_response_alg: 'ES256',
    },
    extraClientMetadata: {
      properties: [...ADMIN_ONLY_METADATA],
      validator(ctx, key, value, metadata) {
        // Runs once per property, after oidc-provider copied the recognised metadata and before
        // its client schema reads any of it: the JSON types are checked here first (DCR, CIMD
        // and pre-registered clients alike), so a wrong type is invalid_client_metadata, not a 500.
        if (key === ADMIN_ONLY_METADATA[0]) {
          try {
            assertClientMetadataTypes({ ...metadata });
          } catch (err) {
            throw toOidcProviderError(err);
          }
        }
        const selfAsserted = ctx?.oidc?.route === 'registration' || isUrlClientId(String(metadata.client_id));
        // MCP client credentials extension: machine clients are pre-registered only. A client
        // that registered itself (DCR) or asserts itself (CIMD) never gets tokens without a user.
        if (key === ADMIN_ONLY_METADATA[0] && selfAsserted && Array.isArray(metadata.grant_types) && metadata.grant_types.includes('client_credentials')) {
          throw new errors.InvalidClientMetadata('client_credentials is only available to pre-registered clients');
        }
        if (value === undefined) {
          // Runs once per property; the redirect_uri rule of DCR hangs on the first one.
          if (key === ADMIN_ONLY_METADATA[0]) assertSelfAssertedRedirects(ctx, metadata as Record<string, unknown>);
          return;
        }
        if (selfAsserted) {
          throw new errors.InvalidClientMetadata(`${key} cannot be set by the client`);
        }
        if (key === 'warden_roles' && !(Array.isArray(value) && value.every((r) => typeof r === 'string'))) {
          throw new errors.InvalidClientMetadata('warden_roles must be an array of strings');
        }
        if (key === ADMIN_ONLY_METADATA[0]) assertSelfAssertedRedirects(ctx, metadata as Record<string, unknown>);
      },
    },
    features: {
      devInteractions: { enabled: false },
      rpInitiatedLogout: { enabled: false },
      userinfo: { enabled: false },
      // RFC 7591; MCP 2025-11-25 §Dynamic Client Registration. No RFC 7592 management: secrets are hashed at rest.
      registration: { enabled: embedded.dynamicClientRegistration, initialAccessToken: false, issueRegistrationAccessToken: false, idFactory: () => generateClientId() },
      revocation: { enabled: true },
      introspection: {
        enabled: true,
        // RFC 7662 §2.1: the caller is authenticated; a public client only learns about its own tokens.
        allowedPolicy: async (ctx, client, token) => client.clientAuthMethod !== 'none' || token.clientId === ctx.oidc.client?.clientId,
      },
      // MCP client credentials extension (SEP-1046): client_secret_basic or private_key_jwt.
      clientCredentials: { enabled: true },
      // RFC 8707: `resource` must name a configured MCP server; its URI becomes `aud`.
      resourceIndicators: {
        enabled: true,
        async defaultResource(_ctx, _client, oneOf) {
          // With one MCP server a missing `resource` means that server; with several it is
          // ambiguous, and a token without an audience would be accepted nowhere (RFC 8707 §2).
          const resource = oneOf ?? o.defaultResource;
          if (resource === undefined) throw new errors.InvalidTarget('resource is required: name the MCP server the token is for');
          return resource;
        },
        useGrantedResource: async () => true,
        async getResourceServerInfo(ctx, resourceIndicator) {
          const info = o.resolveResource(resourceIndicator);
          if (!info) throw new errors.InvalidTarget('the resource is not an MCP server protected here');
          const scopes = ctx.oidc.route === 'token' && ctx.oidc.params?.grant_type === 'client_credentials'
            ? info.scopes
            : await accountScopes(ctx, info);
          return {
            scope: scopes.join(' '),
            audience: info.uri,
            accessTokenTTL: info.accessTokenTtlSeconds,
            // RFC 9068: JWT access tokens, typ at+jwt, ES256.
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: 'ES256' } },
          };
        },
      },
      clientIdMetadataDocument: {
        enabled: cimd.enabled,
        ack: 'draft-02',
        async allowFetch(_ctx, clientId) {
          return isFetchableClientId(cimd, clientId);
        },
        async allowClient() { return true; },
        cacheDuration: { min: 30, max: 3600 },
      },
    },
    ttl: {
      AccessToken: (_ctx, token) => token.resourceServer?.accessTokenTTL ?? embedded.accessTokenTtlSeconds,
      ClientCredentials: (_ctx, token) => token.resourceServer?.accessTokenTTL ?? embedded.accessTokenTtlSeconds,
      AuthorizationCode: 60,
      RefreshToken: embedded.refreshTokenTtlSeconds,
      Grant: embedded.refreshTokenTtlSeconds,
      Session: 14 * 24 * 3600,
      Interaction: 30 * 60,
      IdToken: 3600,
    },
    // OAuth 2.1 §4.3.1: rotate on every use; reuse of a rotated token revokes the grant
    // (a retry of a lost answer gets the same successor: grants/refresh-rotation.ts).
    rotateRefreshToken: true,
    // MCP 2026-07-28 (SEP-2207): we list offline_access in scopes_supported so clients know
    // refresh tokens are available, and issue one to every client registered for the
    // refresh_token grant. (oidc-provider drops a requested offline_access unless prompt=consent,
    // per OIDC Core §11, which MCP clients do not send; so the grant type is the signal.)
    async issueRefreshToken(_ctx, client) {
      return client.grantTypeAllowed('refresh_token');
    },
    expiresWithSession: async () => false,
    // The gateway and the policy engine read `roles` (src/gateway/caller.ts). `grant_id` (RFC 9068
    // §2.2 allows further claims) lets the gateway and introspection refuse every access token of
    // a revoked grant with one lookup (RFC 7009 §2.1, revocation.ts), where a jti→grant table
    // would cost a write per token issued. A grant id is a handle, not a credential: it grants
    // nothing without the user's session or a refresh token.
    async extraTokenClaims(ctx, token) {
      const { accountId, grantId } = token as { accountId?: string; grantId?: string };
      const grant = typeof grantId === 'string' ? { grant_id: grantId } : {};
      if (accountId) return { roles: (await users.get(accountId))?.roles ?? [], ...grant };
      const roles = (ctx.oidc.client?.metadata() as Record<string, unknown> | undefined)?.warden_roles;
      return { roles: Array.isArray(roles) ? roles : [], ...grant };
    },
    async loadExistingGrant(ctx) {
      const { client, session, provider, params } = ctx.oidc;
      if (!client || !session?.accountId) return undefined;
      // The user consented in this very interaction.
      const justGranted = (ctx.oidc.result?.consent as { grantId?: string } | undefined)?.grantId;
      if (justGranted) return provider.Grant.find(justGranted);
      // GHSA-6x8h-498w-gv8c: a remembered consent of a client that registered itself (DCR) or
      // describes itself (CIMD) is reused silently only when the user navigated here themselves;
      // a request another site started (an authorization server in the middle) sees the page.
      if (isSelfAssertedClient(client) && !startedByUser(ctx)) return undefined;
      const grantId = session.grantIdFor(client.clientId);
      if (grantId) return provider.Grant.find(grantId);
      const resource = typeof params?.resource === 'string' ? params.resource : o.defaultResource;
      if (!resource) return undefined;
      const remembered = await store.consents.find(session.accountId, client.clientId, resource);
      if (remembered) {
        const grant = await provider.Grant.find(remembered.grantId);
        if (grant && grant.accountId === session.accountId && grant.clientId === client.clientId) return grant;
      }
      if (o.firstPartyClients?.get(client.clientId)?.includes(resource)) return firstPartyGrant(provider, session.accountId, client.clientId, params?.scope, resource);
      return undefined;
    },
    // Errors a browser sees that cannot be redirected (RFC 6749 §4.1.2.1: unknown client,
    // unregistered redirect_uri): our one renderer, in the HTML shell.
    async renderError(ctx, out) {
      const rendered = renderAuthorizationServerError(fromOidcProviderError(out, ctx.status), 'page', requestIdOf(ctx.req));
      ctx.status = rendered.status;
      ctx.set(rendered.headers);
      ctx.body = rendered.body;
    },
    fetch: createOutboundFetch(cimd, o.fetchTimeoutMs) as unknown as Configuration['fetch'],
    acceptQueryParamAccessTokens: false,
  };

  /**
   * OAuth 2.1 §4.1.1 lets the AS decide how consent is obtained: for our own first-party client the
   * grant is what it asked for, limited to `openid` and the resource's own scopes (an unknown
   * resource gets no resource scopes), as oidc-provider's "skip consent" recipe does.
   */
  async function firstPartyGrant(provider: Provider, accountId: string, clientId: string, scope: unknown, resource: string) {
    const requested = new Set(typeof scope === 'string' ? scope.split(' ') : []);
    const grant = new provider.Grant({ accountId, clientId });
    if (requested.has('openid')) grant.addOIDCScope('openid');
    const info = o.resolveResource(resource);
    const scopes = info ? info.scopes.filter((s) => requested.has(s)) : [];
    if (scopes.length) grant.addResourceScope(resource, scopes.join(' '));
    await grant.save();
    return grant;
  }

  const provider: Provider = new OidcProvider(o.issuer, configuration);
  attachRevocationList(provider, o.revocations);
  liftSelfAssertedScopeCeiling(provider);
  provider.use(rotation.middleware);
  provider.use(async (ctx, next) => {
    await next();
    const { route, entities } = (ctx as KoaContextWithOIDC).oidc ?? {};
    const uid = route === 'authorization' ? entities?.Interaction?.uid : undefined;
    if (uid) userStarted.set(uid, isUserNavigation(ctx.headers));
  });
  // We terminate no TLS ourselves; index.ts sets X-Forwarded-* from the configured issuer.
  provider.proxy = true;
  // Client secrets are stored hashed (client-secret.ts); compare against the hash.
  replaceClientSecretComparison(provider, verifyClientSecret);
  enableAllowedOriginClientIds(provider, cimd);
  return provider;
}

export type { ClientMetadata };
