/**
 * The one configuration of mcp-warden: its shape, defaults and validation.
 *
 * Untrusted input (a YAML/JSON file written by a person) is parsed here, at the edge, into a
 * typed `Config`. Every later module takes the typed value and never re-validates it.
 * Sections owned by other concerns (policy, downstream credentials) keep their schema beside
 * their code and are composed here.
 */
import { z } from 'zod';
import { policySchema } from '../policy/schema.ts';
import { downstreamSchema, tokenExchangeServerSchema } from '../downstream/schema.ts';
import { auditSchema } from '../audit/schema.ts';
import { accountSchema } from '../account/schema.ts';
import { parseHost } from '../http/host.ts';
import { trustProxySchema } from '../http/trust-proxy-schema.ts';
import { parseInstanceUrl } from '../cluster/instance-url.ts';

const serverPath = z
  .string()
  .regex(/^\/[A-Za-z0-9._~\-/]*[A-Za-z0-9._~-]$|^\/$/, 'must be an absolute URL path such as /mcp or /mcp/github, without a trailing slash')
  .refine((p) => !p.startsWith('/.well-known') && !p.startsWith('/oauth') && !p.startsWith('/interaction'), {
    message: 'collides with a path the authorization server or metadata uses; pick another such as /mcp',
  });

const envMap = z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'environment variable names are letters, digits and _'), z.string());

export const stdioUpstreamSchema = z.strictObject({
  command: z.string().min(1, 'must name the program to run, e.g. npx'),
  args: z.array(z.string()).default([]),
  /** Only these variables (plus PATH/HOME/LANG basics) reach the child: never the gateway's own secrets. */
  env: envMap.default({}),
  cwd: z.string().optional(),
  /**
   * `session` (default): one child per MCP session. `per-user`: one child per (user, client)
   * serves all of that caller's sessions (src/gateway/upstreams/stdio-pool.ts); only for servers
   * that keep no state per connection, since the sessions then share one.
   */
  share: z.enum(['session', 'per-user']).optional(),
  /** With share: per-user, the most children this server may run (default 100); a new caller beyond it is refused. */
  maxSharedProcesses: z.number().int().positive().optional(),
  /** With share: per-user, seconds a child without sessions stays before it is stopped (default 30). */
  sharedIdleSeconds: z.number().int().nonnegative().optional(),
});

export const httpUpstreamSchema = z.strictObject({
  url: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL of a Streamable HTTP MCP endpoint' }),
  headers: z.record(z.string(), z.string()).default({}),
});

export const upstreamSchema = z.union([
  z.strictObject({ stdio: stdioUpstreamSchema }),
  z.strictObject({ http: httpUpstreamSchema }),
], { error: 'must be either { stdio: { command, args, env } } or { http: { url } }' });

export const serverSchema = z.strictObject({
  /** A short name used in logs, audit events and CLI commands (`--server notes`). */
  name: z.string().regex(/^[a-z0-9][a-z0-9_-]*$/, 'must be lower-case letters, digits, - or _'),
  path: serverPath,
  upstream: upstreamSchema,
  /** Scopes this server understands, advertised in its protected resource metadata (RFC 9728 §2 scopes_supported). */
  scopes: z.array(z.string().regex(/^[\x21\x23-\x5B\x5D-\x7E]+$/, 'a scope token has no spaces or quotes (RFC 6749 §3.3)')).default([]),
  /**
   * External authorization servers that give each API its own identifier (Entra ID, Auth0,
   * Okta): the `aud` value(s) accepted for this server only, instead of
   * authorizationServer.external.audience. RFC 9728 `resource` stays the canonical URI.
   */
  audience: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]).optional(),
  /** Scopes every request must carry; a missing one gets 403 insufficient_scope. */
  requiredScopes: z.array(z.string()).default([]),
  /** Plain-words descriptions of scopes, shown on the consent page. */
  scopeDescriptions: z.record(z.string(), z.string()).default({}),
  /** Seconds a session may stay idle before its upstream is closed. */
  idleTimeoutSeconds: z.number().int().positive().default(900),
  /** Seconds the upstream may take to answer initialize before the session is given up. */
  initializeTimeoutSeconds: z.number().int().positive().default(60),
  /** Sessions one caller (subject + client) may hold on this server; opening one more ends their least recently used. */
  maxSessionsPerCaller: z.number().int().positive().default(32),
  /**
   * Sessions one user (subject, across every client) may hold on this server; past it a new one is
   * refused with 429. Bounds stdio children of a user who registers client after client.
   */
  maxSessionsPerUser: z.number().int().positive().default(64),
  /** Sessions one client (client_id, across every user) may hold on this server; absent: no bound. Past it, 429. */
  maxSessionsPerClient: z.number().int().positive().optional(),
  /**
   * Seconds the upstream may take to answer a request before the client gets a JSON-RPC error
   * (-32001) and the upstream `notifications/cancelled` (MCP 2025-11-25 lifecycle §Timeouts). Each
   * progress notification for the request restarts the clock. 60 is the MCP SDK client's own
   * default: an SDK client without progress has given up by then, so waiting longer only holds memory.
   */
  requestTimeoutSeconds: z.number().int().positive().default(60),
  /**
   * The deadline progress notifications cannot push past (lifecycle §Timeouts: "SHOULD always
   * enforce a maximum timeout, regardless of progress notifications"); 30 minutes.
   */
  maxRequestTimeoutSeconds: z.number().int().positive().default(1800),
  /** Requests one session may have waiting for the upstream; one more is refused with a JSON-RPC error (429 when it is the whole POST). */
  maxPendingRequests: z.number().int().positive().default(100),
  /** Bytes of request bodies one session may have waiting for the upstream (the only pending request is never refused by it). */
  maxPendingBytes: z.number().int().positive().default(8 * 1024 * 1024),
  /** SSE resumability and backpressure (MCP 2025-11-25 transports §Resumability and Redelivery); docs/configuration.md. */
  sse: z
    .strictObject({
      /** Events kept per session for `Last-Event-ID` replay; the oldest go first. */
      replayMaxEvents: z.number().int().positive().default(500),
      /** Bytes of event data kept per session for replay. */
      replayMaxBytes: z.number().int().positive().default(512 * 1024),
      /** Seconds an event stays replayable. */
      replayRetentionSeconds: z.number().int().positive().default(120),
      /** Bytes a slow SSE client may fall behind before its connection is cut (it resumes with Last-Event-ID); keep it below replayMaxBytes. */
      maxUnreadBytes: z.number().int().positive().default(256 * 1024),
      /** SSE `retry` (ms) sent with the priming event to 2025-11-25 clients. */
      retryMs: z.number().int().nonnegative().default(1000),
      /** A 2025-11-25 request unanswered this long (ms) is answered as a resumable SSE stream; 0: never. */
      streamAfterMs: z.number().int().nonnegative().default(2000),
    })
    .prefault({}),
  policy: policySchema.optional(),
  downstream: downstreamSchema.optional(),
});

/** An origin as `URL.origin` spells it (`http://localhost:3000`): scheme, host and port, nothing else. */
const cimdOrigin = z.string().refine((v) => URL.canParse(v) && /^https?:$/.test(new URL(v).protocol) && new URL(v).origin === v, {
  message: 'must be an origin such as https://client.example or http://localhost:3000: http(s), no path, no trailing slash',
});

export const embeddedAuthorizationServerSchema = z.strictObject({
  /** Defaults to publicUrl: the authorization server shares the gateway's origin. */
  issuer: z.url().optional(),
  accessTokenTtlSeconds: z.number().int().positive().default(900),
  refreshTokenTtlSeconds: z.number().int().positive().default(14 * 24 * 3600),
  /** Seconds a rotated refresh token is still honoured, for clients that refresh twice in parallel. */
  refreshGraceSeconds: z.number().int().min(0).max(300).default(10),
  /**
   * Seconds between checks of the keys table for a signing key added by `mcp-warden keys rotate`
   * (SIGHUP checks at once); 0 checks only on SIGHUP.
   */
  signingKeyCheckSeconds: z.number().int().min(0).max(86_400).default(60),
  dynamicClientRegistration: z.boolean().default(true),
  clientIdMetadataDocuments: z
    .strictObject({
      enabled: z.boolean().default(true),
      /**
       * Origins whose documents may be served over http or from loopback/private addresses
       * (a client under development, an internal client). Every other client ID must be an
       * https URL whose host resolves to public addresses only (CIMD §6, SSRF).
       */
      allowedOrigins: z.array(cimdOrigin).default([]),
      /** Tests only: drop the address guard for every outbound fetch of the AS (CIMD, jwks_uri). */
      allowPrivateAddresses: z.boolean().default(false),
    })
    .prefault({}),
  /** Roles a user may hold; the first is not special. */
  roles: z.array(z.string()).default(['admin', 'member']),
  /** Seed demo users and clients (npm start). */
  demo: z.boolean().default(false),
  /** Clients allowed to use token exchange (RFC 8693), e.g. the gateway's own confidential client. */
  tokenExchange: tokenExchangeServerSchema.optional(),
});

export const externalAuthorizationServerSchema = z.strictObject({
  /** Any RFC 8414 or OpenID Connect issuer; metadata is discovered from it. */
  issuer: z.url(),
  /** For providers that ignore RFC 8707 `resource`: the `aud` value their tokens carry for this gateway. */
  audience: z.string().optional(),
  /** JWS algorithms accepted on access tokens. Never `none`; HS* is refused. */
  algorithms: z.array(z.enum(['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'])).default(['RS256', 'ES256', 'PS256', 'EdDSA']),
  /** For opaque access tokens: RFC 7662 introspection with client authentication. */
  introspection: z
    .strictObject({
      endpoint: z.url().optional(),
      clientId: z.string(),
      clientSecret: z.string(),
    })
    .optional(),
  /** Where roles live in the token, e.g. `roles` or `realm_access.roles` (Keycloak). */
  rolesClaim: z.string().default('roles'),
});

export const authorizationServerSchema = z.union([
  z.strictObject({ embedded: embeddedAuthorizationServerSchema }),
  z.strictObject({ external: externalAuthorizationServerSchema }),
], { error: 'must be either { embedded: {...} } or { external: { issuer } }' });

export const configSchema = z.strictObject({
  listen: z
    .strictObject({
      host: z.string().default('127.0.0.1'),
      port: z.number().int().min(0).max(65535).default(8080),
    })
    .prefault({}),
  /** The public origin clients use (scheme://host[:port]), for canonical resource URIs behind a reverse proxy. */
  publicUrl: z.url({ protocol: /^https?$/ }).refine((u) => URL.canParse(u) && new URL(u).pathname === '/' && !u.endsWith('/'), {
    message: 'must be an origin without a path or trailing slash, e.g. https://mcp.example.com',
  }),
  /**
   * Reverse proxies trusted to report the client's address (X-Forwarded-For or RFC 7239
   * Forwarded), for rate limits and audit. Absent: the socket's peer; forwarding headers ignored.
   */
  trustProxy: trustProxySchema.optional(),
  /** Browser origins allowed to call the MCP endpoints (Streamable HTTP: DNS-rebinding protection). */
  allowedOrigins: z.array(z.string()).default([]),
  /**
   * `Host` values (host[:port]) served besides publicUrl's own (and the loopback names when
   * listening on loopback): DNS-rebinding defence in depth (MCP security best practices). Others
   * get 421 Misdirected Request before authentication.
   */
  allowedHosts: z.array(z.string().refine((v) => parseHost(v) !== undefined, { message: 'must be a host name, IPv4 address or [IPv6] literal, with an optional :port (e.g. mcp.internal:8080)' })).default([]),
  /** Largest accepted POST body, in bytes. */
  maxBodyBytes: z.number().int().positive().default(4 * 1024 * 1024),
  /**
   * Deepest nesting of objects and arrays accepted in a POST body (RFC 8259 §9); deeper gets 400,
   * JSON-RPC -32600. MCP messages are shallow; see src/gateway/json-depth.ts for why 64. At most
   * 1000, well below the depth at which JSON.stringify exhausts the stack.
   */
  maxJsonDepth: z.number().int().min(8).max(1000).default(64),
  storage: z
    .strictObject({
      sqlite: z.strictObject({ path: z.string().default('./data/warden.db') }).prefault({}),
      /**
       * PostgreSQL for every durable store (docs/storage.md), so several instances share one
       * state; when set, `sqlite` is not used. The URL may carry `${ENV}` placeholders.
       */
      postgres: z.strictObject({
        url: z.string().regex(/^postgres(ql)?:\/\//, 'must be a postgres:// or postgresql:// URL'),
        /** A schema for mcp-warden's tables (created when missing); default: the connection's search_path. */
        schema: z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/, 'must be a lower-case SQL identifier').optional(),
        /** Connections per instance. */
        maxConnections: z.number().int().min(1).max(1000).default(10),
        /** Longest wait for one statement's answer (src/storage/postgres/database.ts); migrations wait longer. */
        queryTimeoutMs: z.number().int().min(100).max(600_000).default(15_000),
        /** Longest wait for a connection: a new one, or a free one of the pool. */
        connectTimeoutMs: z.number().int().min(100).max(600_000).default(5_000),
      }).optional(),
    })
    .prefault({}),
  /**
   * What several instances of one deployment share beyond the database (docs/deployment.md,
   * "Scale-out"): the revocation fan-out, shared limits, and the MCP session directory. Absent:
   * one instance, in-process only.
   */
  cluster: z.strictObject({
    redis: z.strictObject({
      /** redis:// or rediss:// (TLS); may carry `${ENV}` placeholders for a password. */
      url: z.string().regex(/^rediss?:\/\//, 'must be a redis:// or rediss:// URL, e.g. redis://127.0.0.1:6379'),
      /** Prefix of every key and channel, so deployments can share one Redis (default `mcp-warden:`). */
      keyPrefix: z.string().regex(/^[A-Za-z0-9._:-]{1,64}$/, 'must be 1-64 letters, digits, ".", "_", ":" or "-", e.g. mcp-warden:').default('mcp-warden:'),
    }),
    /**
     * The key instances prove an instance-to-instance hop with (HMAC-SHA256, src/cluster/instance-hop.ts):
     * a request for a stdio session is forwarded to the instance that holds its child. At least 32
     * characters, the same on every instance; use `${ENV}`. Required with `redis`: the MACs of the
     * session directory's entries and instance URLs are keyed from it too (src/cluster/session-directory.ts),
     * so what Redis holds cannot route a bearer or bind a session to another caller.
     */
    secret: z.string().min(32, 'must be at least 32 characters (e.g. `openssl rand -base64 32`), the same on every instance').optional(),
    /**
     * Where the other instances reach this one (http://host:port, no path), e.g. `http://${POD_IP}:8080`.
     * Default: `http://<listen.host>:<port>`, with a wildcard listen host read as 127.0.0.1 (one host only).
     * Checked as a peer checks the URL this instance announces (src/cluster/instance-url.ts), and kept as its origin.
     */
    instanceUrl: z.string().refine((v) => parseInstanceUrl(v) !== undefined, 'must be http(s)://host:port with no path, query, fragment or user name, e.g. http://10.0.0.5:8080').transform((v) => parseInstanceUrl(v)!).optional(),
  }).superRefine((cluster, ctx) => {
    // Optional in the type only so the message below, not zod's "expected string", names the fix.
    if (cluster.secret === undefined) ctx.addIssue({ code: 'custom', path: ['secret'], message: 'is required with cluster.redis: the key of the instance hop and of the session directory\'s MACs, at least 32 characters, the same on every instance (e.g. `openssl rand -base64 32` in ${WARDEN_CLUSTER_SECRET})' });
  }).optional(),
  authorizationServer: authorizationServerSchema.default({ embedded: embeddedAuthorizationServerSchema.parse({}) }),
  audit: auditSchema,
  log: z.strictObject({ level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info') }).prefault({}),
  /**
   * SIGTERM/SIGINT (`mcp-warden start`): requests already sent upstream get up to `drainSeconds`
   * to be answered before the sessions end (src/http/drain.ts); 0 ends them at once.
   */
  shutdown: z.strictObject({ drainSeconds: z.number().int().min(0).max(3600).default(10) }).prefault({}),
  /** The account area where users store their own downstream credentials (src/account/schema.ts). */
  account: accountSchema.prefault({}),
  servers: z.array(serverSchema).min(1, 'list at least one MCP server to protect'),
});

export type Config = z.infer<typeof configSchema>;
export type ServerConfig = z.infer<typeof serverSchema>;
export type StdioUpstream = z.infer<typeof stdioUpstreamSchema>;
export type HttpUpstream = z.infer<typeof httpUpstreamSchema>;
export type EmbeddedAuthorizationServerConfig = z.infer<typeof embeddedAuthorizationServerSchema>;
export type ExternalAuthorizationServerConfig = z.infer<typeof externalAuthorizationServerSchema>;
