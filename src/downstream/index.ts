/**
 * Downstream identity: what each upstream's traffic carries so the services behind it
 * act for the caller, never with the caller's own token (MCP 2025-11-25 Security Best Practices,
 * "Token Passthrough"). Per server, one of:
 *   tokenExchange  RFC 8693 at the embedded or an external authorization server
 *   perUserSecret  the user's own stored credential (AES-256-GCM at rest), or a shared fallback
 *   static         one configured credential for everybody
 * plus, optionally, a signed identity assertion header for HTTP upstreams.
 *
 * Everything that can be wrong with the configuration or the secrets key fails here, at start-up.
 */
import { type NowSeconds, systemNowSeconds } from '../kernel/clock.ts';
import type { Config, ServerConfig } from '../config/schema.ts';
import type { DownstreamStorage } from '../storage/downstream-store.ts';
import type { Logger } from '../log.ts';
import type { Caller } from '../kernel/caller.ts';
import type { DownstreamCredentials } from './types.ts';
import { DownstreamCredentialError, SecretsKeyError } from './errors.ts';
import { loadSecretsKey } from './secrets-key.ts';
import { openServerSecrets, type ServerSecrets } from './secret-store.ts';
import { resolveGatewayClient } from './gateway-client.ts';
import { ExchangedTokenCache, exchangeToken, TokenExchangeRefused, type ExchangedToken, type FetchLike } from './token-exchange-client.ts';
import { createIdentityAssertionSigner, createWardenJwksHandler, type IdentityAssertionSigner } from './identity-assertion.ts';
import type { DownstreamTokenExchangeConfig } from './schema.ts';
import { ConfigError } from '../config/errors.ts';

export type { DownstreamCredentials } from './types.ts';
export { DownstreamCredentialError, SecretsKeyError } from './errors.ts';
export { WARDEN_JWKS_PATH, createWardenJwksHandler } from './identity-assertion.ts';
export { endAtCredentialExpiry } from './session-expiry.ts';

export interface DownstreamOptions {
  config: Config;
  /** Generated settings and users' sealed secrets (src/storage/downstream-store.ts). */
  storage: DownstreamStorage;
  logger: Logger;
  env: NodeJS.ProcessEnv;
  /**
   * The embedded authorization server's token endpoint as the gateway reaches it. Default: read
   * from the issuer's RFC 8414 metadata on first use.
   */
  embeddedTokenEndpoint?: string;
  /**
   * Where users store their own credentials (src/account/), when that page is on: a user without a
   * per-user secret is sent there rather than told to run an operator's CLI command.
   */
  accountPageUrl?: string;
  /** For tests: HTTP client and clock (seconds). */
  fetch?: FetchLike;
  nowSeconds?: NowSeconds;
}

/** Everything the gateway uses: the DownstreamCredentials contract plus the JWKS it serves. */
export interface WardenDownstream extends DownstreamCredentials {
  /** The gateway's JWKS that verifies identity assertions; serve it at WARDEN_JWKS_PATH. */
  jwks: { keys: object[] };
  jwksHandler: ReturnType<typeof createWardenJwksHandler>;
}

/** A downstream configuration that cannot work: one `ConfigError` naming the key to fix; the old name stays for importers. */
export { ConfigError as DownstreamConfigError };

interface ExchangeTarget {
  tokenEndpoint: () => Promise<string>;
  clientId: string;
  clientSecret: string;
}

/**
 * Builds the downstream credentials of every configured server, checking keys and configuration.
 * @throws SecretsKeyError for a missing or wrong secrets key, ConfigError for an unusable setup
 */
export async function createDownstreamCredentials(options: DownstreamOptions): Promise<WardenDownstream> {
  const { config, storage, env } = options;
  const log = options.logger.child({ component: 'downstream' });
  const nowSeconds = options.nowSeconds ?? systemNowSeconds;
  const cache = new ExchangedTokenCache({ nowSeconds });
  const secrets = new Map<string, ServerSecrets>();
  const exchangeTargets = new Map<string, ExchangeTarget>();
  const expiries = new WeakMap<Caller, Map<string, number>>();

  const embedded = 'embedded' in config.authorizationServer ? config.authorizationServer.embedded : undefined;
  const issuer = embedded?.issuer ?? config.publicUrl;
  let embeddedEndpoint: Promise<string> | undefined;
  const embeddedTokenEndpoint = () => {
    embeddedEndpoint ??= options.embeddedTokenEndpoint !== undefined
      ? Promise.resolve(options.embeddedTokenEndpoint)
      : discoverTokenEndpoint(issuer, options.fetch).catch((err: Error) => {
          embeddedEndpoint = undefined;
          throw err;
        });
    return embeddedEndpoint;
  };

  for (const [i, server] of config.servers.entries()) {
    const d = server.downstream;
    if (!d) continue;
    const at = `servers.${i}.downstream`;
    const isStdio = 'stdio' in server.upstream;
    if (d.tokenExchange) {
      const t = d.tokenExchange;
      if (isStdio && !t.env) throw new ConfigError(`${at}.tokenExchange.env is missing: a stdio server gets the exchanged token in an environment variable; name it, e.g. env: API_TOKEN`, 'invalid_value');
      if (t.tokenEndpoint) {
        exchangeTargets.set(server.name, { tokenEndpoint: async () => t.tokenEndpoint!, clientId: t.clientId!, clientSecret: t.clientSecret! });
      } else {
        if (!embedded?.tokenExchange) {
          throw new ConfigError(`${at}.tokenExchange uses the embedded authorization server, but authorizationServer.embedded.tokenExchange is not configured. Add it with this API under audiences, or set tokenEndpoint, clientId and clientSecret for an external one`, 'conflicting_settings');
        }
        const name = t.audience ?? t.resource!;
        if (!embedded.tokenExchange.audiences.some((a) => a.audience === name)) {
          throw new ConfigError(`${at}.tokenExchange names "${name}", which is not in authorizationServer.embedded.tokenExchange.audiences. Add it there`, 'conflicting_settings');
        }
        const client = await resolveGatewayClient(embedded.tokenExchange, env, storage.settings);
        exchangeTargets.set(server.name, { tokenEndpoint: embeddedTokenEndpoint, ...client });
      }
    }
    if (d.perUserSecret) {
      const p = d.perUserSecret;
      if (isStdio && !p.env) throw new ConfigError(`${at}.perUserSecret.env is missing: name the environment variable that receives the user's secret`, 'invalid_value');
      if (!isStdio && !p.header) throw new ConfigError(`${at}.perUserSecret.header is missing: name the request header that carries the user's secret`, 'invalid_value');
      let key: Buffer;
      try {
        key = loadSecretsKey(p.key, env);
      } catch (err) {
        throw new SecretsKeyError(`server "${server.name}": ${(err as Error).message}`);
      }
      secrets.set(server.name, await openServerSecrets(storage.secrets, server.name, key));
    }
  }

  const signer: IdentityAssertionSigner = await createIdentityAssertionSigner(storage.settings, config.publicUrl, nowSeconds);

  async function exchangeFor(caller: Caller, server: ServerConfig, t: DownstreamTokenExchangeConfig, fresh: boolean): Promise<ExchangedToken> {
    const target = exchangeTargets.get(server.name)!;
    const make = async () => {
      try {
        return await exchangeToken({
          tokenEndpoint: await target.tokenEndpoint(),
          clientId: target.clientId,
          clientSecret: target.clientSecret,
          subjectToken: caller.accessToken,
          ...(t.audience !== undefined ? { audience: t.audience } : {}),
          ...(t.resource !== undefined ? { resource: t.resource } : {}),
          ...(t.scopes !== undefined ? { scopes: t.scopes } : {}),
        }, { ...(options.fetch ? { fetch: options.fetch } : {}), nowSeconds });
      } catch (err) {
        const refused = err instanceof TokenExchangeRefused ? err : undefined;
        log.warn({ server: server.name, user: caller.subject, error: refused?.error, reason: (err as Error).message }, 'token exchange for the downstream API failed');
        const status = refused?.error === 'invalid_grant' ? 401 : refused?.error === 'invalid_scope' ? 403 : 502;
        throw new DownstreamCredentialError(
          'exchange_failed',
          refused
            ? `the authorization server refused a token for server "${server.name}"'s downstream API (${refused.error}); sign in again, or ask an operator to check the token exchange configuration`
            : `the authorization server could not be reached to get a token for server "${server.name}"'s downstream API; try again later`,
          `token exchange failed: ${(err as Error).message}`,
          status,
        );
      }
    };
    if (fresh) return make();
    // Per user, per audience, per the caller's scopes (the exchange narrows to them).
    const key = JSON.stringify([caller.issuer, caller.subject, server.name, [...caller.scopes].sort()]);
    return cache.get(key, t.refreshSkewSeconds, make);
  }

  async function userSecret(caller: Caller, server: ServerConfig): Promise<string> {
    const p = server.downstream!.perUserSecret!;
    let value: string | undefined;
    try {
      value = await secrets.get(server.name)!.get(caller.subject);
    } catch (err) {
      log.error({ server: server.name, user: caller.subject, reason: (err as Error).message }, 'stored downstream secret cannot be decrypted');
      throw new DownstreamCredentialError('secrets_unavailable', `your stored credential for server "${server.name}" cannot be used; store it again`, (err as Error).message, 409);
    }
    if (value !== undefined) {
      // RFC 9110 §5.5: a header value has no CR, LF or NUL; an environment value has no NUL.
      const bad = 'http' in server.upstream ? /[\0\r\n]/ : /\0/;
      if (bad.test(value)) {
        log.warn({ server: server.name, user: caller.subject }, 'stored downstream secret has characters its delivery cannot carry');
        throw new DownstreamCredentialError('secrets_unavailable', `your stored credential for server "${server.name}" contains line breaks or NUL characters and cannot be sent; store it again without them`, 'undeliverable secret', 409);
      }
      return value;
    }
    if (p.fallback !== undefined) return p.fallback;
    log.warn({ server: server.name, user: caller.subject }, 'user has no downstream secret for this server and there is no fallback; refused the session');
    throw new DownstreamCredentialError(
      'credential_missing',
      options.accountPageUrl !== undefined
        ? `you have no credential stored for server "${server.name}". Store one at ${options.accountPageUrl}/secrets/${encodeURIComponent(server.name)}, then connect again`
        : `you have no credential stored for server "${server.name}". Store one with: mcp-warden secrets set --server ${server.name} --user ${caller.subject} (the value is read from standard input)`,
      `no secret for user ${caller.subject} on server ${server.name}`,
      403,
    );
  }

  /** Never passthrough (MCP Security Best Practices §Token Passthrough): whatever the configuration, the caller's own token is not sent on. */
  function withoutInboundToken(values: Record<string, string>, caller: Caller, server: ServerConfig): Record<string, string> {
    if (caller.accessToken.length < 8) return values;
    for (const [name, value] of Object.entries(values)) {
      if (value.includes(caller.accessToken)) {
        log.error({ server: server.name, name }, 'refused to send the caller\'s own access token upstream');
        delete values[name];
      }
    }
    return values;
  }

  return {
    async envFor(caller, server) {
      const d = server.downstream;
      if (!d) return {};
      const env: Record<string, string> = {};
      if (d.static) Object.assign(env, d.static.env);
      if (d.perUserSecret) {
        env[d.perUserSecret.env!] = await userSecret(caller, server);
        if (d.perUserSecret.userEnv) env[d.perUserSecret.userEnv] = caller.subject;
      }
      if (d.tokenExchange) {
        // A child keeps its environment for its whole life, so it gets a fresh token whose
        // expiry the gateway learns through credentialsExpireAt and ends the session at.
        const token = await exchangeFor(caller, server, d.tokenExchange, true);
        env[d.tokenExchange.env!] = token.accessToken;
        if (d.tokenExchange.userEnv) env[d.tokenExchange.userEnv] = caller.subject;
        let perServer = expiries.get(caller);
        if (!perServer) expiries.set(caller, (perServer = new Map()));
        perServer.set(server.name, token.expiresAt);
      }
      return withoutInboundToken(env, caller, server);
    },

    async headersFor(caller, server) {
      const d = server.downstream;
      if (!d) return {};
      const headers: Record<string, string> = {};
      if (d.static) Object.assign(headers, d.static.headers);
      if (d.perUserSecret) headers[d.perUserSecret.header!] = `${d.perUserSecret.headerPrefix}${await userSecret(caller, server)}`;
      if (d.tokenExchange) {
        const token = await exchangeFor(caller, server, d.tokenExchange, false);
        const prefix = d.tokenExchange.headerPrefix ?? (d.tokenExchange.header.toLowerCase() === 'authorization' ? 'Bearer ' : '');
        headers[d.tokenExchange.header] = `${prefix}${token.accessToken}`;
      }
      if (d.identityAssertion && 'http' in server.upstream) {
        headers[d.identityAssertion.header] = await signer.current(caller, server.upstream.http.url, d.identityAssertion.ttlSeconds);
      }
      return withoutInboundToken(headers, caller, server);
    },

    credentialsExpireAt(caller, server) {
      return expiries.get(caller)?.get(server.name);
    },

    jwks: signer.jwks as { keys: object[] },
    jwksHandler: createWardenJwksHandler(signer.jwks),
  };
}

/** RFC 8414 §3: the token endpoint from the issuer's metadata (OpenID Connect discovery as fallback). */
async function discoverTokenEndpoint(issuer: string, fetchImpl?: FetchLike): Promise<string> {
  const { fetch: undiciFetch } = await import('undici');
  const doFetch = fetchImpl ?? (undiciFetch as unknown as FetchLike);
  const url = new URL(issuer);
  const path = url.pathname === '/' ? '' : url.pathname;
  for (const candidate of [`${url.origin}/.well-known/oauth-authorization-server${path}`, `${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`]) {
    try {
      const res = await doFetch(candidate, { method: 'GET', headers: { accept: 'application/json' }, body: undefined as never, signal: AbortSignal.timeout(5000), redirect: 'error' });
      if (res.status !== 200) continue;
      const meta = JSON.parse(await res.text()) as { issuer?: unknown; token_endpoint?: unknown };
      if (meta.issuer === issuer && typeof meta.token_endpoint === 'string') return meta.token_endpoint;
    } catch {
      // try the next location
    }
  }
  throw new DownstreamCredentialError('exchange_failed', 'the authorization server\'s metadata could not be read; try again later', `no usable metadata for ${issuer}`);
}
