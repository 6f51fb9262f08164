/**
 * Configuration of downstream identity: what an upstream server's traffic carries so
 * the services behind it know who the caller is, and which clients may exchange tokens at the
 * embedded authorization server. Composed into the main schema by src/config/schema.ts.
 *
 * Never passthrough: no option here forwards the caller's own access token (MCP 2025-11-25
 * Security Best Practices, "Token Passthrough").
 */
import { z } from 'zod';

const envName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'an environment variable name: letters, digits and _');
/** RFC 9110 §5.1 field-name (token). */
const headerName = z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, 'an HTTP header name such as X-Api-Key');
const scopeToken = z.string().regex(/^[\x21\x23-\x5B\x5D-\x7E]+$/, 'a scope token has no spaces or quotes (RFC 6749 §3.3)');
const jwsAlgorithms = z
  .array(z.enum(['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA']))
  .default(['RS256', 'ES256', 'PS256', 'EdDSA']);

/**
 * Where a credential goes: an environment variable of a stdio child, or a header of HTTP upstream
 * requests. `prefix` is prepended to the value in a header (e.g. "Bearer ").
 */
const deliverySchema = {
  /** For stdio upstreams: the variable of the session's child that holds the credential. */
  env: envName.optional(),
  /** For HTTP upstreams: the request header that carries the credential. */
  header: headerName.optional(),
  /** Put before the value in the header, e.g. "Bearer " or "token ". */
  headerPrefix: z.string().regex(/^[\x20-\x7E]*$/, 'printable ASCII only').default(''),
  /** For stdio upstreams: a variable that receives the caller's subject (the user), e.g. NOTES_API_USER. */
  userEnv: envName.optional(),
};

/** The gateway's RFC 8693 token exchange for this upstream, at the embedded or an external authorization server. */
export const downstreamTokenExchangeSchema = z.strictObject({
  /** RFC 8693 §2.1 `audience`: the downstream API, as the authorization server names it. */
  audience: z.string().min(1).optional(),
  /** RFC 8693 §2.1 / RFC 8707 `resource`: the downstream API's URI. */
  resource: z.url().optional(),
  /** Scopes to request; the authorization server narrows them to what the caller holds. Default: all the caller may have. */
  scopes: z.array(scopeToken).optional(),
  /**
   * External authorization server (e.g. Keycloak standard token exchange v2): its token endpoint
   * and the gateway's confidential client there. Omit all three for the embedded authorization server.
   */
  tokenEndpoint: z.url({ protocol: /^https?$/ }).optional(),
  clientId: z.string().min(1).optional(),
  clientSecret: z.string().min(1).optional(),
  /** For stdio upstreams: the child's variable for the exchanged token. */
  env: envName.optional(),
  userEnv: envName.optional(),
  /** For HTTP upstreams: default `Authorization` with `Bearer `. */
  header: headerName.default('Authorization'),
  headerPrefix: z.string().regex(/^[\x20-\x7E]*$/).optional(),
  /** Refresh a cached exchanged token this many seconds before it expires. */
  refreshSkewSeconds: z.number().int().min(0).max(600).default(30),
}).refine((t) => t.audience !== undefined || t.resource !== undefined, {
  message: 'name the downstream API with audience or resource',
}).refine((t) => (t.tokenEndpoint === undefined) === (t.clientId === undefined) && (t.clientId === undefined) === (t.clientSecret === undefined), {
  message: 'an external authorization server needs tokenEndpoint, clientId and clientSecret together (omit all three for the embedded one)',
});

/** Where the key that encrypts per-user secrets comes from: base64 of 32 bytes, in an env var or a file. */
export const secretsKeySchema = z.strictObject({
  env: envName.default('WARDEN_SECRETS_KEY'),
  file: z.string().min(1).optional(),
}).prefault({});

/** Each user stores their own credential (`mcp-warden secrets set`); encrypted at rest with AES-256-GCM. */
export const perUserSecretSchema = z.strictObject({
  ...deliverySchema,
  /** A shared credential for users who have not stored their own. Omit to require one per user. */
  fallback: z.string().min(1).optional(),
  key: secretsKeySchema,
});

/** One configured credential for everybody: the plain stdio case of the MCP spec. */
export const staticCredentialSchema = z.strictObject({
  env: z.record(envName, z.string()).default({}),
  headers: z.record(headerName, z.string()).default({}),
});

/** A short-lived JWT asserting the caller, signed with the gateway's key (served at /.well-known/warden-jwks.json). */
export const identityAssertionSchema = z.strictObject({
  header: headerName.default('X-Warden-Identity'),
  ttlSeconds: z.number().int().min(5).max(3600).default(60),
});

export const downstreamSchema = z.strictObject({
  tokenExchange: downstreamTokenExchangeSchema.optional(),
  perUserSecret: perUserSecretSchema.optional(),
  static: staticCredentialSchema.optional(),
  identityAssertion: identityAssertionSchema.optional(),
}).refine((d) => [d.tokenExchange, d.perUserSecret, d.static].filter((x) => x !== undefined).length <= 1, {
  message: 'choose one of tokenExchange, perUserSecret or static (identityAssertion may accompany any)',
});

/** A downstream API the embedded authorization server issues exchanged tokens for. */
export const exchangeAudienceSchema = z.strictObject({
  /** The `aud` of exchanged tokens; requested as `audience` or `resource` (RFC 8693 §2.1). */
  audience: z.string().min(1),
  /** The most this API may receive; the issued scope is the intersection with the subject token's. */
  scopes: z.array(scopeToken).default([]),
  accessTokenTtlSeconds: z.number().int().min(10).max(3600).default(300),
});

/** An external issuer whose access tokens are accepted as `subject_token`. */
export const trustedIssuerSchema = z.strictObject({
  issuer: z.url(),
  jwksUri: z.url({ protocol: /^https?$/ }),
  /** The `aud` its tokens must carry to be exchanged here. */
  audience: z.string().min(1),
  algorithms: jwsAlgorithms,
});

/** The embedded authorization server's RFC 8693 token exchange: who may exchange, for what. */
export const tokenExchangeServerSchema = z.strictObject({
  /** The gateway's own confidential client, provisioned automatically. */
  gatewayClient: z
    .strictObject({
      clientId: z.string().regex(/^[A-Za-z0-9._~-]+$/).default('mcp-warden-gateway'),
      /** Default: $WARDEN_GATEWAY_CLIENT_SECRET, else generated once and kept in the database. */
      clientSecret: z.string().min(32, 'use at least 32 characters').optional(),
    })
    .prefault({}),
  /** Further pre-registered clients allowed to exchange. Every other client gets unauthorized_client. */
  allowedClients: z.array(z.string()).default([]),
  audiences: z.array(exchangeAudienceSchema).min(1, 'list at least one downstream API'),
  trustedIssuers: z.array(trustedIssuerSchema).default([]),
});

export type DownstreamConfig = z.infer<typeof downstreamSchema>;
export type DownstreamTokenExchangeConfig = z.infer<typeof downstreamTokenExchangeSchema>;
export type PerUserSecretConfig = z.infer<typeof perUserSecretSchema>;
export type StaticCredentialConfig = z.infer<typeof staticCredentialSchema>;
export type IdentityAssertionConfig = z.infer<typeof identityAssertionSchema>;
export type SecretsKeyConfig = z.infer<typeof secretsKeySchema>;
export type TokenExchangeServerConfig = z.infer<typeof tokenExchangeServerSchema>;
export type ExchangeAudienceConfig = z.infer<typeof exchangeAudienceSchema>;
export type TrustedIssuerConfig = z.infer<typeof trustedIssuerSchema>;
