/**
 * The embedded authorization server: oidc-provider 9 on our Store, mounted on the gateway's
 * origin. `handles(pathname)` tells the app which requests are ours:
 *   /oauth/*                                  oidc-provider endpoints (authorize, token, register, …)
 *   /interaction/*                            login and consent pages
 *   /.well-known/openid-configuration         OIDC Discovery 1.0
 *   /.well-known/oauth-authorization-server   RFC 8414 (same document)
 * Never /.well-known/oauth-protected-resource* or an MCP server path: those are the gateway's.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createLocalJWKSet, jwtVerify, type JWK } from 'jose';
import type Provider from 'oidc-provider';
import type { KoaContextWithOIDC } from 'oidc-provider';
import type { Config, EmbeddedAuthorizationServerConfig } from '../config/schema.ts';
import { describeError, type Logger } from '../log.ts';
import type { SqliteDatabase } from '../storage/sqlite/database.ts';
import { createSqliteStore } from '../storage/sqlite/store.ts';
import { createSqliteDownstreamStorage } from '../storage/sqlite/downstream-store.ts';
import type { SettingsStore } from '../storage/downstream-store.ts';
import type { ConsentRecord, Store } from '../storage/store.ts';
import type { UserStore } from '../users/user-store.ts';
import { describeScopes } from '../policy/index.ts';
import { createClientRegistry, type ClientRegistry } from './clients.ts';
import { seedDemo } from './demo.ts';
import { createInteractionHandler } from './interactions/routes.ts';
import { createRateLimiter, type RateLimiter, type SharedBackoffFactory } from './rate-limit.ts';
import { createClientAddressResolver } from '../http/client-address.ts';
import { AuthorizationServerError, fromOidcProviderError, renderAuthorizationServerError, sendAuthorizationServerError } from './errors.ts';
import { adoptRequestId, requestIdOf } from './request-id.ts';
import { parseRegistrationRequest } from './registration-request.ts';
import { errors } from './oidc-provider-module.ts';
import { isUnsupportedTokenTypeAnswer, renameGrantTypeRefusal, setMountedUrl } from './oidc-provider-internals.ts';
import { activeSigningKeys, ensureCookieKeys, ensureSigningKeys, longestAccessTokenTtlSeconds, toPublicJwk } from './keys.ts';
import { createRevocationList, revocationHorizonMs, revokeUser, type RevocationBus, type RevocationList } from './revocation.ts';
import { replaceProviderKeys } from './keys-reload.ts';
import type { KeyRecord } from '../storage/store.ts';
import { createProvider, ROUTES } from './provider.ts';
import { createTokenExchangeExtension } from './grants/token-exchange.ts';
import { createResourceResolver, defaultResourceUri, type ExtraResourceResolver, type ResourceInfo } from './resources.ts';

export type { ResourceInfo, ExtraResourceResolver } from './resources.ts';
export { canonicalResourceUri } from './resources.ts';
import type { AuthorizationServerExtension, ExtensionContext } from './extension.ts';

export type { AuthorizationServerExtension, ExtensionContext } from './extension.ts';

export interface AuthorizationServerOptions {
  config: Config;
  /** The SQLite database the Store and settings default to; give `store` and `settings` instead for another backend. */
  db?: SqliteDatabase;
  /** Generated settings (the gateway's token-exchange client secret); default: on `db`. */
  settings?: SettingsStore;
  users: UserStore;
  logger: Logger;
  /** Milliseconds since the epoch, for storage expiry and the refresh grace window. */
  now?: () => number;
  /** Defaults to the SQLite store on `db`. */
  store?: Store;
  extensions?: AuthorizationServerExtension[];
  /** EXTENSION POINT: further RFC 8707 resources beyond the configured MCP servers. */
  extraResources?: ExtraResourceResolver[];
  /** EXTENSION POINT: mcp-warden's own clients (the account page) and the resource each may use without a consent page. */
  firstPartyClients?: Array<{ clientId: string; resources: string[] }>;
  /** Which of a resource's scopes a user may be granted; default all of them. */
  scopesForUser?: (user: { username: string; roles: string[] }, resource: ResourceInfo) => string[];
  /** Where generated demo secrets are printed, once. Default: stderr. */
  announce?: (line: string) => void;
  env?: NodeJS.ProcessEnv;
  /** Timeout of outbound fetches (CIMD documents, jwks_uri). Default 5000 ms. */
  fetchTimeoutMs?: number;
  /** Seed demo users and clients when `embedded.demo` (default true; the admin CLI passes false). */
  seedDemo?: boolean;
  /** Dynamic client registrations allowed per client IP per window. Default 20 per minute. */
  registrationRateLimit?: { max: number; windowMs: number };
  /**
   * Sign-in backoff per account and per client address, separately: `maxFailures` failures are
   * free (default 10), then each doubles the wait from 1 s up to `windowMs` (default 5 minutes);
   * and password verifications (scrypt) run at once (default 4).
   */
  loginRateLimit?: { maxFailures: number; windowMs: number; maxConcurrent?: number };
  /** Carries revocations to the other instances of a deployment (default: this process only). */
  revocationBus?: RevocationBus;
  /**
   * Counts the registration limit across the instances of a deployment (src/cluster/rate-limiter.ts);
   * `local` is this instance's own limiter, for when the shared one cannot answer. Default: `local` alone.
   */
  sharedRateLimiter?: (name: string, limit: { max: number; windowMs: number }, local: RateLimiter) => { hit(key: string): Promise<boolean> };
  /** Keeps the sign-in backoff in state every instance shares (src/cluster/backoff.ts); default: this instance's memory. */
  sharedBackoff?: SharedBackoffFactory;
}

export interface AuthorizationServer {
  issuer: string;
  provider: Provider;
  handles(pathname: string): boolean;
  handle(req: IncomingMessage, res: ServerResponse): void;
  /** The published keys (newest first). The same object until the signing keys change. */
  publicJwks(): { keys: JWK[] };
  /**
   * Re-reads the keys table and, when `mcp-warden keys rotate` changed it, signs with the new
   * key from now on while still publishing the previous one. Runs every
   * `signingKeyCheckSeconds` and on demand (SIGHUP in `mcp-warden start`).
   */
  reloadSigningKeys(): Promise<{ changed: boolean; kids: string[] }>;
  close(): Promise<void>;
  /** Pre-registered clients (CLI, demo). */
  clients: ClientRegistry;
  /** Remembered consents: list and revoke (revoking also revokes the grant's tokens). */
  consents: {
    list(filter?: { accountId?: string; clientId?: string }): Promise<ConsentRecord[]>;
    revoke(accountId: string, clientId?: string): Promise<number>;
  };
  /** Removes a user's consents and grants and refuses every token issued to them so far. */
  revokeUser(accountId: string): Promise<void>;
  /** Revoked grants and tokens; the gateway asks `isRevoked` at every use of an access token. */
  revocations: RevocationList;
  store: Store;
}

function embeddedConfig(config: Config): EmbeddedAuthorizationServerConfig {
  const as = config.authorizationServer;
  if (!('embedded' in as)) throw new Error('the embedded authorization server needs authorizationServer.embedded in the configuration');
  return as.embedded;
}

/** The methods of the endpoints we serve (RFC 6749 §3.1/§3.2, RFC 7591 §3, RFC 7009 §2, RFC 7662 §2). */
const ALLOWED_METHODS = new Map<string, string>([
  [ROUTES.authorization, 'GET, POST'],
  [ROUTES.token, 'POST'],
  [ROUTES.registration, 'POST'],
  [ROUTES.revocation, 'POST'],
  [ROUTES.introspection, 'POST'],
  [ROUTES.pushed_authorization_request, 'POST'],
  [ROUTES.jwks, 'GET, HEAD'],
]);

/**
 * Where a browser is (the sign-in pages, the authorization endpoint it is sent to) errors are
 * the HTML shell; every other OAuth endpoint answers JSON (RFC 6749 §5.2).
 */
function errorFormatFor(pathname: string): 'json' | 'page' {
  return pathname.includes('/interaction/') || pathname.includes(`${ROUTES.authorization}/`) || pathname.split('?')[0]!.endsWith(ROUTES.authorization) ? 'page' : 'json';
}

/** @see RFC 8414 §3, OpenID Connect Discovery 1.0, RFC 6749, RFC 7591, RFC 7009, RFC 7662, RFC 8707, RFC 9068, RFC 9207 */
export async function createAuthorizationServer(options: AuthorizationServerOptions): Promise<AuthorizationServer> {
  const { config, users, logger } = options;
  const now = options.now ?? Date.now;
  const embedded = embeddedConfig(config);
  const issuer = embedded.issuer ?? config.publicUrl;
  const issuerUrl = new URL(issuer);
  const issuerPath = issuerUrl.pathname === '/' ? '' : issuerUrl.pathname.replace(/\/$/, '');
  if (!options.store && !options.db) throw new Error('createAuthorizationServer needs a Store or a SQLite database');
  const store = options.store ?? createSqliteStore(options.db!, now);
  const settings = options.settings ?? createSqliteDownstreamStorage(options.db!).settings;

  let signing = await ensureSigningKeys(store.keys, now);
  const cookieKeys = await ensureCookieKeys(store.keys, now);
  const publishedSet = (records: KeyRecord[]) => Object.freeze({ keys: records.map((k) => Object.freeze(toPublicJwk(k.jwk))) }) as { keys: JWK[] };
  let publicSet = publishedSet(signing);
  let localJwks = createLocalJWKSet(publicSet);

  const resolveResource = createResourceResolver(config, embedded.accessTokenTtlSeconds, options.extraResources);
  const defaultResource = defaultResourceUri(config);
  const revocations = createRevocationList({
    records: store.revocations, now, horizonMs: revocationHorizonMs(longestAccessTokenTtlSeconds(embedded)),
    ...(options.revocationBus ? { bus: options.revocationBus } : {}),
    onSyncState: (state) => {
      if (state.ok) logger.info({ event: 'revocation_sync_recovered' }, 'revocations are read from the database again');
      else logger.warn({ event: 'revocation_sync_failed', err: describeError(state.error) }, 'reading revocations from the database failed; revocations written by other processes are not seen until it works again (retried every 500 ms)');
    },
  });
  // Memory answers isRevoked (revocation.ts): it must hold every unexpired revocation before the
  // first token is checked.
  await revocations.start();
  const env = options.env ?? process.env;
  const provider = createProvider({
    config, embedded, issuer, store, users, now, revocations,
    // Crash tests only (test/authorization-server/refresh-crash.test.ts): the process dies after a
    // refresh rotation committed and before its answer leaves, the one moment no signal from
    // outside can aim at.
    ...(env.WARDEN_TEST_KILL_AFTER_REFRESH_COMMIT === '1' ? { afterRotationCommit: () => process.kill(process.pid, 'SIGKILL') } : {}),
    onRotationError: (err) => logger.error({ err: describeError(err) }, 'could not record that a refresh answer was sent'),
    signingKeys: signing.map((k) => k.jwk),
    cookieKeys,
    resolveResource,
    defaultResource,
    scopesForUser: options.scopesForUser ?? ((_user, resource) => resource.scopes),
    fetchTimeoutMs: options.fetchTimeoutMs ?? 5000,
    basePath: issuerPath,
    firstPartyClients: new Map((options.firstPartyClients ?? []).map((c) => [c.clientId, c.resources])),
  });

  // Every 5xx is logged with the request's id, never silently: oidc-provider's own (its
  // `server_error` event, e.g. a client schema that threw), and anything thrown by a middleware
  // outside its routes (ours, an extension's), which Koa would otherwise print raw to stderr
  // and answer as text/plain. This is the first middleware, so it wraps all the others.
  const logServerError = (ctx: { req: IncomingMessage; method: string; path: string }, err: unknown) => {
    logger.error({ event: 'server_error', request_id: requestIdOf(ctx.req), method: ctx.method, path: ctx.path, err: describeError(err) }, 'authorization server error');
  };
  // Errors oidc-provider did not design (a TypeError in its client schema, an adapter failure)
  // are answered through our renderer below; its own server_error answers (with a description a
  // person can act on, e.g. token exchange's "signing keys are reloaded") stay as they are.
  const unexpected = new WeakSet<IncomingMessage>();
  provider.on('server_error', (ctx, err) => {
    if (!(err instanceof errors.OIDCProviderError)) unexpected.add(ctx.req);
    logServerError(ctx, err);
  });
  // Provider is a Koa application; its typings list only oidc-provider's own events.
  (provider as unknown as NodeJS.EventEmitter).on('error', (err: unknown, ctx?: { req: IncomingMessage; method: string; path: string }) => {
    // Koa reports here what happened after a response was chosen (a client that broke the
    // connection, a malformed chunked body): through the JSON logger, never raw to stderr.
    logger.warn({ event: 'request_error', ...(ctx ? { request_id: requestIdOf(ctx.req), method: ctx.method, path: ctx.path } : {}), err: describeError(err) }, 'authorization server request ended with an error');
  });
  provider.use(async (ctx, next) => {
    try {
      await next();
    } catch (err) {
      const typed = err instanceof AuthorizationServerError ? err : undefined;
      if (!typed || typed.status >= 500) logServerError(ctx, err);
      const out = renderAuthorizationServerError(typed ?? new AuthorizationServerError('server_error', 'unexpected error'), errorFormatFor(ctx.path), requestIdOf(ctx.req));
      ctx.status = out.status;
      ctx.set(out.headers);
      ctx.body = out.body;
      return;
    }
    renameGrantTypeRefusal(ctx as KoaContextWithOIDC);
    // A route oidc-provider has but does not serve here (a feature we leave off) falls through
    // to Koa's text/plain 404: ours instead.
    if (ctx.status === 404 && ctx.body === undefined) {
      // RFC 9110 §15.5.6: an endpoint we serve, asked with another method, is a 405 with Allow.
      // (A feature switched off, e.g. registration, is a 404 whatever the method.)
      const allow = ALLOWED_METHODS.get(ctx.path.slice(issuerPath.length));
      const err = allow && !allow.split(', ').includes(ctx.method)
        ? new AuthorizationServerError('method_not_allowed', `use ${allow} at this endpoint`, { allow })
        : new AuthorizationServerError('not_found', `there is no authorization server endpoint at ${ctx.path}`);
      const out = renderAuthorizationServerError(err, errorFormatFor(ctx.path));
      ctx.status = out.status;
      ctx.set(out.headers);
      ctx.body = out.body;
      return;
    }
    // oidc-provider's JSON answer to an unexpected error ("oops! something went wrong") through
    // our renderer: our text and the request id its log line carries (the event above).
    if (unexpected.has(ctx.req) && ctx.status >= 500 && (ctx.body as { error?: unknown } | undefined)?.error !== undefined) {
      const out = renderAuthorizationServerError(fromOidcProviderError(ctx.body as { error?: unknown }, ctx.status), 'json', requestIdOf(ctx.req));
      ctx.set(out.headers);
      ctx.body = out.body;
    }
  });

  // RFC 7662 / RFC 7009 for our JWT access tokens, which oidc-provider does not persist and so
  // answers with unsupported_token_type: the caller is already authenticated when that error is
  // raised, so we verify the JWT with our own keys and answer ourselves.
  provider.use(async (ctx, next) => {
    await next();
    const route = isUnsupportedTokenTypeAnswer(ctx as KoaContextWithOIDC);
    if (!route) return;
    const oidc = (ctx as KoaContextWithOIDC).oidc;
    const token = String(oidc.params?.token ?? '');
    const caller = oidc.client;
    let claims: Record<string, unknown> | undefined;
    try {
      ({ payload: claims } = await jwtVerify(token, localJwks, { issuer, typ: 'at+jwt', algorithms: ['ES256'] }));
    } catch { claims = undefined; }
    const jti = typeof claims?.jti === 'string' ? claims.jti : undefined;
    // RFC 7009 §2.1: also inactive when its grant, user or client was revoked (revocation.ts).
    const revoked = claims ? revocations.isRevoked(claims) : false;
    ctx.status = 200;
    ctx.set('Cache-Control', 'no-store');
    if (route === 'revocation') {
      // RFC 7009 §2.2: 200 whether or not the token was valid; only the owning client revokes.
      if (claims && jti && caller && claims.client_id === caller.clientId) {
        await revocations.revokeAccessToken(jti, Number(claims.exp) * 1000);
      }
      ctx.body = '';
      return;
    }
    const mayKnow = caller && (caller.clientAuthMethod !== 'none' || claims?.client_id === caller.clientId);
    ctx.body = claims && !revoked && mayKnow ? { active: true, token_type: 'Bearer', ...claims } : { active: false };
  });

  const ext: ExtensionContext = { config, issuer, store, logger, resolveResource, revocations };
  // RFC 8693 token exchange turns itself on when embedded.tokenExchange is configured.
  const builtIn = [createTokenExchangeExtension({ settings, env: options.env ?? process.env })];
  for (const extension of [...builtIn, ...(options.extensions ?? [])]) await extension(provider, ext);

  const clients = createClientRegistry(provider, store);
  if (embedded.demo && options.seedDemo !== false) {
    await seedDemo({
      config, users, clients, env: options.env ?? process.env,
      announce: options.announce ?? ((line) => process.stderr.write(`mcp-warden: ${line}\n`)),
    });
  }

  // Behind a reverse proxy, the limits below key on the client it forwarded for, trusted hops only.
  // Read once per request, before dispatch rewrites the forwarding headers for oidc-provider.
  const resolveAddress = createClientAddressResolver(config.trustProxy);
  const addresses = new WeakMap<IncomingMessage, string>();
  const clientAddress = (req: IncomingMessage): string => {
    let address = addresses.get(req);
    if (address === undefined) addresses.set(req, (address = resolveAddress(req)));
    return address;
  };
  // Names of the clients an administrator registered, re-read at most every 5 s: the sign-in
  // pages warn when a self-asserted name imitates one.
  let preRegistered: { names: Promise<string[]>; until: number } | undefined;
  const preRegisteredClientNames = (): Promise<string[]> => {
    if (!preRegistered || preRegistered.until <= now()) {
      const names = store.models.list('Client').then((rows) => rows
        .filter((r) => r.payload.warden_preregistered === true && typeof r.payload.client_name === 'string' && r.payload.client_name !== '')
        .map((r) => r.payload.client_name as string));
      preRegistered = { names, until: now() + 5_000 };
      names.catch(() => { preRegistered = undefined; });
    }
    return preRegistered.names;
  };
  const interactions = createInteractionHandler({
    clientAddress,
    provider, users, consents: store.consents, cookieSecret: cookieKeys[0]!, issuerOrigin: issuerUrl.origin,
    resolveResource, defaultResource, logger, now, basePath: issuerPath,
    loginRateLimit: options.loginRateLimit ?? { maxFailures: 10, windowMs: 5 * 60_000 },
    ...(options.sharedBackoff ? { sharedBackoff: options.sharedBackoff } : {}),
    preRegisteredClientNames,
    describeScopes: (info, roles) => (info.server ? describeScopes(info.server, roles) : {}),
  });
  const callback = provider.callback();

  // Live key rotation (keys-reload.ts): one reload at a time; a no-op unless the active kids changed.
  let reloading: Promise<void> = Promise.resolve();
  let closed = false;
  function reloadSigningKeys(): Promise<{ changed: boolean; kids: string[] }> {
    const run = async () => {
      const next = await activeSigningKeys(store.keys);
      const kids = next.map((k) => k.kid);
      if (next.length === 0 || kids.join(' ') === signing.map((k) => k.kid).join(' ')) return { changed: false, kids: signing.map((k) => k.kid) };
      await replaceProviderKeys(provider, next.map((k) => k.jwk));
      signing = next;
      publicSet = publishedSet(next);
      localJwks = createLocalJWKSet(publicSet);
      logger.info({ event: 'signing_keys_reloaded', signing_kid: kids[0], published_kids: kids }, 'signing keys reloaded: new tokens use the newest key');
      return { changed: true, kids };
    };
    const result = reloading.then(run);
    reloading = result.then(() => undefined, () => undefined);
    return result;
  }
  const checkSeconds = embedded.signingKeyCheckSeconds;
  const keyCheck = checkSeconds > 0
    ? setInterval(() => {
      reloadSigningKeys().catch((err: unknown) => { if (!closed) logger.error({ err: describeError(err) }, 'signing key check failed; new keys take effect at the next start'); });
    }, checkSeconds * 1000).unref()
    : undefined;
  // RFC 7591 §5 (abuse of open registration): per client address, across instances when shared.
  const registrationLimit = options.registrationRateLimit ?? { max: 20, windowMs: 60_000 };
  const localRegistrationLimiter = createRateLimiter(registrationLimit, now);
  const allowRegistration = options.sharedRateLimiter
    ? options.sharedRateLimiter('registration', registrationLimit, localRegistrationLimiter)
    : { hit: async (key: string) => localRegistrationLimiter.hit(key) };

  const wellKnown = new Set([
    '/.well-known/openid-configuration',
    `/.well-known/oauth-authorization-server${issuerPath}`,
    `${issuerPath}/.well-known/openid-configuration`,
  ]);
  const prefixes = [`${issuerPath}/oauth/`, `${issuerPath}/interaction/`];
  const providerRoutes = new Set<string>(Object.values(ROUTES));

  function handles(pathname: string): boolean {
    return wellKnown.has(pathname) || prefixes.some((p) => pathname.startsWith(p));
  }

  async function dispatch(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', issuerUrl.origin);
    // The public origin is the issuer's, whatever Host the request came with (RFC 8414 §3: the
    // endpoint URLs in metadata are built from it); client-supplied forwarding headers are discarded.
    // The client address is read once, through trusted proxies only (config trustProxy).
    const address = clientAddress(req);
    for (const h of ['x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto', 'x-forwarded-port', 'forwarded']) delete req.headers[h];
    req.headers['x-forwarded-proto'] = issuerUrl.protocol.slice(0, -1);
    req.headers['x-forwarded-host'] = issuerUrl.host;
    req.headers['x-forwarded-for'] = address;

    let pathname = url.pathname;
    if (issuerPath && pathname.startsWith(`${issuerPath}/`) && !pathname.startsWith('/.well-known/')) pathname = pathname.slice(issuerPath.length);

    if (pathname.startsWith('/.well-known/')) {
      if (req.method !== 'GET' && req.method !== 'HEAD' && req.method !== 'OPTIONS') {
        throw new AuthorizationServerError('method_not_allowed', 'metadata is read with GET', { allow: 'GET, HEAD' });
      }
      // RFC 8414 §3: the same document as OIDC discovery, with `issuer` equal to ours.
      req.url = `/.well-known/openid-configuration${url.search}`;
      mountAt(req);
      return callback(req, res);
    }
    if (pathname.startsWith('/interaction/')) return interactions(req, res, pathname);
    // An endpoint oidc-provider does not serve gets our JSON 404, not Koa's text/plain one.
    if (!isProviderRoute(pathname)) throw new AuthorizationServerError('not_found', `there is no authorization server endpoint at ${pathname}`);
    if (pathname === ROUTES.registration && req.method === 'POST' && !(await allowRegistration.hit(address))) {
      // RFC 6585 §4 Retry-After: the window runs from the first registration, so one window from now
      // is never too early, whichever limiter (this instance's or Redis's) counted.
      throw new AuthorizationServerError('too_many_requests', 'too many client registrations from this address; retry later', { retryAfterSeconds: Math.ceil(registrationLimit.windowMs / 1000) });
    }
    if (pathname === ROUTES.authorization && req.method === 'GET') applyDefaultScope(url);
    req.url = `${pathname}${url.search}`;
    if (pathname === ROUTES.registration && req.method === 'POST' && embedded.dynamicClientRegistration) req = adoptRequestId(req, await parseRegistrationRequest(req));
    mountAt(req);
    return callback(req, res);
  }

  function isProviderRoute(pathname: string): boolean {
    // `${authorization}/:uid` is where oidc-provider resumes an authorization after an interaction.
    return providerRoutes.has(pathname) || pathname.startsWith(`${ROUTES.authorization}/`);
  }

  /** oidc-provider derives its mount path (and so every endpoint URL) from `req.originalUrl`. */
  function mountAt(req: IncomingMessage): void {
    setMountedUrl(req, `${issuerPath}${req.url}`);
  }

  /**
   * A client that names no scope of the resource (MCP 2025-11-25 §Scope Selection Strategy: it
   * omits `scope` when neither the challenge nor PRM lists one) is asked for the server's
   * required scopes, or all its scopes when none are required; oidc-provider would otherwise
   * end the request with access_denied because nothing was granted.
   */
  function applyDefaultScope(url: URL): void {
    if (url.searchParams.getAll('scope').length > 1 || url.searchParams.getAll('resource').length > 1) return; // oidc-provider rejects duplicates
    const resourceUri = url.searchParams.get('resource') ?? defaultResource;
    const info = resourceUri ? resolveResource(resourceUri) : undefined;
    if (!info) return;
    const requested = (url.searchParams.get('scope') ?? '').split(' ').filter(Boolean);
    if (requested.some((sc) => info.scopes.includes(sc))) return;
    const defaults = info.server?.requiredScopes.length ? info.server.requiredScopes : info.scopes;
    if (!defaults.length) return;
    url.searchParams.set('scope', [...requested, ...defaults].join(' '));
  }

  return {
    issuer,
    provider,
    handles,
    handle(req, res) {
      const requestId = requestIdOf(req);
      const format = errorFormatFor(req.url ?? '/');
      dispatch(req, res).catch((err: unknown) => {
        if (err instanceof AuthorizationServerError && err.status < 500) {
          // A refusal is the client's business; its log-only reason helps an operator debugging one.
          logger.debug({ event: 'request_refused', request_id: requestId, code: err.code, reason: err.reason }, 'authorization server refused a request');
          return sendAuthorizationServerError(res, err, format);
        }
        logger.error({ event: 'server_error', request_id: requestId, method: req.method, err: describeError(err) }, 'authorization server request failed');
        sendAuthorizationServerError(res, err instanceof AuthorizationServerError ? err : new AuthorizationServerError('server_error', 'unexpected error'), format, requestId);
      });
    },
    // Synchronous: the gateway's token verifier reads it for every request (cache hits included).
    publicJwks() {
      return publicSet;
    },
    reloadSigningKeys,
    async close() {
      // The key check is the only timer; the provider holds no sockets; the database belongs to the caller.
      // A key reload in flight is not waited for, as a revocation read is not (revocation.ts `close`):
      // it only reads, and ends when the storage closes its connections.
      closed = true;
      if (keyCheck) clearInterval(keyCheck);
      await revocations.close();
    },
    clients,
    consents: {
      list: (filter) => store.consents.list(filter),
      async revoke(accountId, clientId) {
        const removed = await store.consents.remove({ accountId, ...(clientId ? { clientId } : {}) });
        // RFC 7009 §2.1: the grant's access tokens die with its refresh tokens.
        for (const r of removed) {
          await revocations.revokeGrant(r.grantId);
          await store.models.revokeByGrantId(r.grantId);
        }
        return removed.length;
      },
    },
    revokeUser: (accountId) => revokeUser(store, revocations, accountId),
    revocations,
    store,
  };
}
