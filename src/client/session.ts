/**
 * One MCP server as seen by this client: a valid access token on demand (refreshed before expiry,
 * once across processes), a login when none can be had, step-up on `insufficient_scope`, and an
 * authorized `fetch` for the SDK's Streamable HTTP transport.
 *
 * Order of work on a request (MCP 2025-11-25 Authorization):
 *   1. send with the stored token, refreshing it first if it expires within `refreshSkewMs`;
 *      with no token at all send without one, so the 401 can name resource_metadata and scope (RFC 9728 §5.1; MCP §Scope Selection Strategy);
 *   2. 401 → `auth()` with the challenge's resource_metadata and scope, then retry once;
 *   3. 403 insufficient_scope → step-up with the union of requested and challenged scopes
 *      (SEP-2350), at most `maxStepUps` times per request and never twice for the same union (MCP Security Best Practices: no scope-elevation loops).
 */
import { hostname } from 'node:os';
import { clientSecretBasic } from '../kernel/client-secret-basic.ts';
import {
  auth,
  computeScopeUnion,
  extractWWWAuthenticateParams,
  isStrictScopeSuperset,
  DpopSession,
  OAuthError,
  withDpop,
  type FetchLike,
} from '@modelcontextprotocol/client';
import { createDpopKey, sessionFromStoredKey, type StoredDpopKey } from './dpop.ts';
import { assertSafeAuthorizationUrl, openInBrowser } from './browser.ts';
import { canonicalServerUri } from './canonical-uri.ts';
import { ClientError, isClientError } from './errors.ts';
import { displayUrl, networkFailure, summarize } from './failure.ts';
import { startLoopbackReceiver, type AuthorizationResponse, type LoopbackReceiver } from './loopback.ts';
import { resolveClientHome } from './paths.ts';
import { StoreBackedProvider, type AssertionContext, type GrantMode } from './provider.ts';
import { emptyRecord, TokenStore, type ServerRecord, type StoredTokens } from './token-store.ts';
import type { TokenStoreMode } from './keychain/types.ts';

export interface WardenClientOptions {
  /** The MCP server URL (its canonical form is the RFC 8707 resource and the store key). */
  serverUrl: string | URL;
  /** State folder; default from `resolveClientHome(env)`. */
  home?: string;
  /** Where tokens are kept: `auto` (default: the OS keychain when it works, else a 0600 file), `keychain` or `file`. */
  tokenStore?: TokenStoreMode;
  env?: NodeJS.ProcessEnv;
  clientName?: string;
  /** `client_credentials` for agents (MCP ext-auth oauth-client-credentials); default `authorization_code`. */
  grant?: GrantMode;
  clientId?: string;
  clientSecret?: string;
  privateKeyJwt?: { privateKey: string | Record<string, unknown>; alg: string };
  clientMetadataUrl?: string;
  /** Send RFC 8707 `resource` (default true); false for providers that reject it. */
  sendResource?: boolean;
  /** Explicit scope for the first authorization; otherwise the spec's selection order. */
  scope?: string;
  /** May this client start an interactive login (default true)? */
  interactive?: boolean;
  /** How the user reaches the authorization URL; default: the system browser. */
  openUrl?: (url: URL) => Promise<void>;
  /** Human-facing notices (login URL, corrupt store); default: nowhere. */
  onNotice?: (message: string) => void;
  /** Refresh when the token expires within this many ms (default 60 s). */
  refreshSkewMs?: number;
  /** Step-up attempts per request (default 2). */
  maxStepUps?: number;
  /** How long to wait for the browser to come back (default 5 min). */
  loginTimeoutMs?: number;
  /** How often to say "still waiting" while the browser step runs (default 30 s). */
  progressIntervalMs?: number;
  /** For `grant: 'jwt_bearer'` (RFC 7523 §2.1): the JWT, asked for at every token request. */
  assertion?: (ctx: AssertionContext) => Promise<string>;
  /** Ask for DPoP-bound tokens (RFC 9449) and present them with proofs. */
  dpop?: boolean;
  fetch?: FetchLike;
  now?: () => number;
}

export class WardenClient {
  readonly serverUrl: string;
  readonly store: TokenStore;
  readonly provider: StoreBackedProvider;
  private readonly baseFetch: FetchLike;
  private readonly now: () => number;
  private readonly triedUnions = new Set<string>();
  private inflight: Promise<StoredTokens> | undefined;
  private receiver: LoopbackReceiver | undefined;
  private pendingCallback: Promise<AuthorizationResponse> | undefined;

  constructor(private readonly options: WardenClientOptions) {
    this.serverUrl = canonicalServerUri(options.serverUrl);
    this.store = new TokenStore(options.home ?? resolveClientHome(options.env), {}, {
      mode: options.tokenStore ?? 'auto',
      env: options.env ?? process.env,
      onNotice: (message) => this.notice(message),
    });
    const raw: FetchLike = options.fetch ?? ((url, init) => fetch(url, init));
    // A request that never reached a server says which URL and why (not undici's bare "fetch failed").
    this.baseFetch = async (url, init) => {
      try {
        return await raw(url, init);
      } catch (err) {
        throw networkFailure(url, err) ?? err;
      }
    };
    this.now = options.now ?? Date.now;
    const grant = options.grant ?? 'authorization_code';
    if (grant === 'client_credentials' && !options.clientId) {
      throw new ClientError('usage', 'client credentials need --client-id with --client-secret or --private-key-jwt');
    }
    if (grant === 'jwt_bearer' && (!options.clientId || !options.assertion)) {
      throw new ClientError('usage', 'the jwt-bearer grant needs --client-id and --jwt-bearer-assertion');
    }
    this.provider = new StoreBackedProvider({
      serverUrl: this.serverUrl,
      store: this.store,
      grant,
      clientName: options.clientName ?? defaultClientName(),
      ...(options.clientId !== undefined && { clientId: options.clientId }),
      ...(options.clientSecret !== undefined && { clientSecret: options.clientSecret }),
      ...(options.privateKeyJwt !== undefined && { privateKeyJwt: options.privateKeyJwt }),
      ...(options.clientMetadataUrl !== undefined && { clientMetadataUrl: options.clientMetadataUrl }),
      sendResource: options.sendResource ?? true,
      onAuthorizationUrl: (url) => this.presentAuthorizationUrl(url),
      ...(options.dpop && { dpopSession: () => this.dpopSession() }),
      ...(options.assertion && { assertion: options.assertion }),
      now: this.now,
    });
  }

  private dpop: Promise<DpopSession> | undefined;

  /** The DPoP session of this server, from the stored key or a new one saved for next time. */
  dpopSession(): Promise<DpopSession> {
    this.dpop ??= (async () => {
      const { dpopKey } = await this.record();
      if (dpopKey) return sessionFromStoredKey(dpopKey as StoredDpopKey);
      const { keyPair, stored } = await createDpopKey();
      await this.store.update(this.serverUrl, (record) => {
        record.dpopKey = stored as ServerRecord['dpopKey'];
      });
      return DpopSession.create({ keyPair });
    })();
    return this.dpop;
  }

  get grant(): GrantMode {
    return this.options.grant ?? 'authorization_code';
  }

  /** The stored record; a corrupt store is set aside with a notice and treated as empty (fresh login). */
  async record(): Promise<ServerRecord> {
    try {
      return await this.store.read(this.serverUrl);
    } catch (err) {
      if (!isClientError(err, 'store_corrupt')) throw err;
      const aside = await this.store.quarantine(this.serverUrl).catch(() => undefined);
      this.notice(`${err.message}${aside ? ` (moved to ${aside})` : ''}`);
      return emptyRecord(this.serverUrl);
    }
  }

  private isUsable(tokens: StoredTokens | undefined): boolean {
    if (!tokens) return false;
    return tokens.expires_at === undefined || tokens.expires_at - (this.options.refreshSkewMs ?? 60_000) > this.now();
  }

  /**
   * The token to send now: the stored one if it is not about to expire, else a refreshed one;
   * `undefined` when there is nothing to refresh (the caller sends without and reads the 401).
   */
  async currentAccessToken(): Promise<string | undefined> {
    const { tokens } = await this.record();
    if (tokens && this.isUsable(tokens)) return tokens.access_token;
    if (tokens?.refresh_token || (tokens && this.grant !== 'authorization_code')) {
      return (await this.authorize({ staleAccessToken: tokens.access_token })).access_token;
    }
    return undefined;
  }

  /** A valid access token, logging in if needed and allowed (`mcp-warden token`). */
  async accessToken(): Promise<string> {
    const current = await this.currentAccessToken();
    if (current) return current;
    const hints = await this.probe();
    return (await this.authorize(hints)).access_token;
  }

  /** Runs the authorization flow even if a token is stored (`mcp-warden login`). */
  async login(): Promise<StoredTokens> {
    const hints = await this.probe();
    return this.authorize({ ...hints, forceReauthorization: true, force: true });
  }

  /**
   * Forgets this server's tokens and registration, first revoking the tokens at the AS when it
   * has a revocation endpoint (RFC 7009 §2.1). Returns whether the AS accepted the revocation.
   */
  async logout(): Promise<{ removed: boolean; revoked: boolean }> {
    const record = await this.record();
    let revoked = false;
    const endpoint = (record.discovery as { authorizationServerMetadata?: { revocation_endpoint?: string } } | undefined)?.authorizationServerMetadata?.revocation_endpoint;
    const issuer = record.tokens?.issuer;
    const client = this.options.clientId ? { client_id: this.options.clientId, client_secret: this.options.clientSecret } : issuer ? record.clients[issuer] : undefined;
    if (endpoint && record.tokens && client) {
      revoked = true;
      for (const [token, hint] of [[record.tokens.refresh_token, 'refresh_token'], [record.tokens.access_token, 'access_token']] as const) {
        if (!token) continue;
        const body = new URLSearchParams({ token, token_type_hint: hint });
        const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
        const secret = (client as { client_secret?: string }).client_secret;
        if (secret) headers.authorization = clientSecretBasic(client.client_id, secret);
        else body.set('client_id', client.client_id);
        try {
          const res = await this.baseFetch(endpoint, { method: 'POST', headers, body });
          await res.body?.cancel();
          if (!res.ok) revoked = false;
        } catch {
          revoked = false;
        }
      }
    }
    const removed = await this.store.remove(this.serverUrl);
    return { removed, revoked };
  }

  /**
   * Gets new tokens under the cross-process refresh lock. Another process may have refreshed while
   * we waited: then its tokens are used and the (possibly rotated) refresh token is not spent twice.
   */
  async authorize(request: AuthorizeRequest = {}): Promise<StoredTokens> {
    // One flow per process at a time; callers arriving meanwhile share its result.
    while (this.inflight) {
      const shared = await this.inflight.catch(() => undefined);
      if (shared && !request.force && shared.access_token !== request.staleAccessToken) return shared;
      if (!this.inflight) break;
    }
    const fresh = async (): Promise<StoredTokens | undefined> => {
      if (request.force || request.scope) return undefined;
      const { tokens } = await this.record();
      return tokens && this.isUsable(tokens) && tokens.access_token !== request.staleAccessToken ? tokens : undefined;
    };
    // While another process holds the lock, its new tokens end our wait as soon as they are stored.
    const run = this.store.refreshLock(this.serverUrl, async () => (await fresh()) ?? this.runFlow(request), fresh);
    this.inflight = run;
    try {
      return await run;
    } finally {
      this.inflight = undefined;
    }
  }

  private async runFlow(request: AuthorizeRequest): Promise<StoredTokens> {
    const scope = request.scope ?? this.options.scope;
    const base = {
      serverUrl: this.serverUrl,
      fetchFn: this.authFetch,
      ...(request.resourceMetadataUrl && { resourceMetadataUrl: request.resourceMetadataUrl }),
      ...(scope && { scope }),
    };
    if (request.rediscover || request.resourceMetadataUrl) {
      // A refused token or a fresh challenge: discover again, since the server may have moved to
      // another AS (RFC 9728 authorization_servers changed); credentials are keyed by issuer (SEP-2352).
      const { discovery } = await this.record();
      if (discovery) await this.provider.invalidateCredentials('discovery');
    }
    if (this.grant !== 'authorization_code') {
      await this.withOAuthErrors(() => auth(this.provider, base));
      return this.storedTokens();
    }
    const record = await this.record();
    const interactive = this.options.interactive ?? true;
    const receiver = interactive ? await startLoopbackReceiver(record.redirectPort) : undefined;
    this.receiver = receiver;
    this.pendingCallback = undefined;
    this.provider.currentRedirectUrl = receiver?.redirectUrl ?? `http://127.0.0.1${record.redirectPort ? `:${record.redirectPort}` : ''}/callback`;
    try {
      const result = await this.withOAuthErrors(() => auth(this.provider, { ...base, ...(request.forceReauthorization && { forceReauthorization: true }) }));
      if (result === 'REDIRECT') {
        // Set by presentAuthorizationUrl during auth(); TypeScript cannot see that assignment.
        const pending = this.pendingCallback as Promise<AuthorizationResponse> | undefined;
        if (!pending) throw new ClientError('login_required', `sign-in needed: run mcp-warden login ${this.serverUrl}`);
        const response = await pending.catch((err: unknown) => {
          // The browser came back with an error: say how to start again.
          if (!isClientError(err, 'access_denied')) throw err;
          throw new ClientError('access_denied', `${err.message}. Run mcp-warden login ${this.serverUrl} to try again${/access_denied/.test(err.message) ? ' and choose Allow' : ''}.`, { cause: err });
        });
        await this.withOAuthErrors(() => auth(this.provider, { ...base, authorizationCode: response.code, ...(response.iss !== undefined && { iss: response.iss }) }));
      }
    } finally {
      this.stopProgress?.();
      this.stopProgress = undefined;
      this.receiver = undefined;
      this.pendingCallback = undefined;
      await receiver?.close();
      this.provider.saveCodeVerifier('');
    }
    return this.storedTokens();
  }

  /**
   * The fetch given to the SDK's auth(). It widens the `scope` of a registration request
   * (RFC 7591 §2: the scopes the client may ever request) to the resource's scopes_supported, so
   * a later step-up is not refused by an AS that holds clients to their registered scope; each
   * authorization request still asks only for what the spec's selection gives (least privilege).
   */
  private readonly authFetch: FetchLike = async (input, init) => {
    if (init?.method === 'POST' && typeof init.body === 'string') {
      const { discovery } = await this.record();
      const state = discovery as { resourceMetadata?: { scopes_supported?: string[] }; authorizationServerMetadata?: { registration_endpoint?: string; scopes_supported?: string[] } } | undefined;
      const endpoint = state?.authorizationServerMetadata?.registration_endpoint;
      if (endpoint && String(input) === endpoint) {
        try {
          const body = JSON.parse(init.body) as { scope?: string };
          if (body.scope !== undefined) {
            const offline = state?.authorizationServerMetadata?.scopes_supported?.includes('offline_access') ? 'offline_access' : undefined;
            body.scope = computeScopeUnion(body.scope, state?.resourceMetadata?.scopes_supported?.join(' '), offline) ?? body.scope;
            return this.baseFetch(input, { ...init, body: JSON.stringify(body) });
          }
        } catch {
          // not JSON: send as it is
        }
      }
    }
    return this.baseFetch(input, init);
  };

  private async storedTokens(): Promise<StoredTokens> {
    const { tokens } = await this.record();
    if (!tokens) throw new ClientError('login_required', `no tokens were issued for ${this.serverUrl}`);
    return tokens;
  }

  private async withOAuthErrors<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof ClientError) throw err;
      const { discovery } = await this.record().catch(() => ({ discovery: undefined }));
      const as = discovery?.authorizationServerUrl ? ` ${displayUrl(discovery.authorizationServerUrl)}` : '';
      if (err instanceof OAuthError) {
        // "The server said no": keep the RFC error code visible, and say what to do about it.
        const next = this.grant !== 'authorization_code' && err.code === 'invalid_client'
          ? 'Check --client-id and its secret (or --private-key-jwt key).'
          : nextStepFor(err.code, this.serverUrl);
        throw new ClientError('access_denied', `the authorization server${as} refused: ${err.code}${err.message ? ` (${summarize(err.message)})` : ''}. ${next}`, { cause: err });
      }
      throw new ClientError('protocol_error', `sign-in to ${this.serverUrl} failed${as ? ` at${as}` : ''}: ${summarize((err as Error).message)}. Check the server URL; if it is right, the server's authorization setup is broken (ask its administrator; WARDEN_DEBUG=1 shows details).`, { cause: err });
    }
  }

  /** An unauthenticated request whose 401 names resource_metadata and scope (RFC 9728 §5.1). */
  private async probe(): Promise<AuthorizeRequest> {
    try {
      const res = await this.baseFetch(this.serverUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'ping' }),
      });
      const type = res.headers.get('content-type') ?? '';
      await res.body?.cancel();
      // MCP transports: an endpoint answers POST with 401 (protected), JSON or an event stream;
      // a 404/405/501 or an HTML page means the URL points somewhere else.
      if ([404, 405, 501].includes(res.status) || /^text\/html/i.test(type)) {
        throw new ClientError('not_mcp_endpoint', `${this.serverUrl} is not an MCP endpoint: it answered an MCP request with HTTP ${res.status}${type ? ` (${type.split(';')[0]})` : ''}. Check the URL, including its path (mcp-warden serves MCP at the paths in its config, e.g. /mcp).`);
      }
      return res.status === 401 ? challengeHints(res) : {};
    } catch (err) {
      if (isClientError(err, 'unreachable') || isClientError(err, 'not_mcp_endpoint')) throw err;
      return {};
    }
  }

  private async presentAuthorizationUrl(url: URL): Promise<void> {
    if (!(this.options.interactive ?? true)) throw new ClientError('login_required', `sign-in needed: run mcp-warden login ${this.serverUrl}`);
    assertSafeAuthorizationUrl(url);
    const state = url.searchParams.get('state');
    if (!this.receiver || !state) throw new ClientError('login_required', `sign-in needed: run mcp-warden login ${this.serverUrl}`);
    // Listen before the browser opens: the response may arrive before auth() returns.
    const timeoutMs = this.options.loginTimeoutMs ?? 300_000;
    const pending = this.receiver.waitForCallback(state, timeoutMs);
    pending.catch(() => undefined);
    this.pendingCallback = pending;
    await (this.options.openUrl ?? openInBrowser)(url);
    this.reportProgress(pending, timeoutMs);
  }

  /**
   * Progress lines while the browser step runs, so a person at a terminal (or reading a host's
   * log) knows the command is waiting for them, not hung: one now, then one every
   * `progressIntervalMs` until the browser comes back or the wait times out.
   */
  private reportProgress(pending: Promise<unknown>, timeoutMs: number): void {
    const started = this.now();
    this.notice(`waiting for the sign-in to finish in the browser (up to ${Math.round(timeoutMs / 60_000) || 1} min; Ctrl-C cancels)`);
    const timer = setInterval(() => {
      const seconds = Math.round((this.now() - started) / 1000);
      this.notice(`still waiting for the sign-in in the browser (${seconds} s so far)`);
    }, this.options.progressIntervalMs ?? 30_000);
    timer.unref();
    const stop = () => clearInterval(timer);
    pending.then(stop, stop);
    // A flow that ends another way (an error after the browser opened) stops it too (runFlow).
    this.stopProgress = stop;
  }

  private stopProgress: (() => void) | undefined;

  private notice(message: string): void {
    this.options.onNotice?.(message);
  }

  /**
   * A fetch that sends the bearer token on every request (MCP §Token Requirements, RFC 6750 §2.1: in the header, never in the query) and
   * handles 401 and 403 insufficient_scope as described at the top of this file.
   */
  readonly fetch: FetchLike = async (input, init) => {
    let reauthorized = false;
    let stepUps = 0;
    for (;;) {
      const token = await this.currentAccessToken();
      const headers = new Headers(init?.headers);
      headers.delete('authorization');
      let res: Response;
      if (token && this.options.dpop && /^dpop$/i.test((await this.record()).tokens?.token_type ?? '')) {
        // RFC 9449 §7.1: a DPoP-bound token goes with the DPoP scheme and a fresh proof; the SDK's
        // middleware also answers a use_dpop_nonce challenge once.
        res = await withDpop(await this.dpopSession(), () => token)(this.baseFetch)(input, { ...init, headers });
      } else {
        if (token) headers.set('authorization', `Bearer ${token}`);
        res = await this.baseFetch(input, { ...init, headers });
      }
      if (res.status === 401 && reauthorized) {
        // RFC 6750 §3.1: refused again right after a new token; say why instead of looping.
        const { error, errorDescription } = extractWWWAuthenticateParams(res);
        await res.body?.cancel();
        throw new ClientError('token_rejected', `${this.serverUrl} refused the access token even after a new sign-in (HTTP 401${error ? ` ${error}` : ''}${errorDescription ? `: ${summarize(errorDescription)}` : ''}). The server may not accept tokens from this authorization server or for this resource; try mcp-warden logout ${this.serverUrl} then login, or ask the server's administrator.`);
      }
      if (res.status === 401) {
        reauthorized = true;
        const hints = challengeHints(res);
        await res.body?.cancel();
        await this.authorize({ ...hints, rediscover: true, ...(token !== undefined && { staleAccessToken: token }) });
        continue;
      }
      if (res.status === 403 && this.grant === 'authorization_code') {
        const challenge = extractWWWAuthenticateParams(res);
        if (challenge.error === 'insufficient_scope' && challenge.scope) {
          const record = await this.record();
          const union = computeScopeUnion(record.requestedScope ?? record.tokens?.scope, challenge.scope) ?? challenge.scope;
          // MCP 2025-11-25 §Scope Challenge Handling: bounded per request, and a union already
          // tried is a permanent denial (the user or the AS will not grant it).
          if (stepUps >= (this.options.maxStepUps ?? 2) || this.triedUnions.has(union)) {
            await res.body?.cancel();
            throw new ClientError('insufficient_scope', `${this.serverUrl} needs the scope "${challenge.scope}" for this request, which the sign-in did not grant${record.tokens?.scope ? ` (granted: ${record.tokens.scope})` : ''}. Ask the server's administrator for access, or sign in as another user with mcp-warden login ${this.serverUrl}.`);
          }
          stepUps += 1;
          this.triedUnions.add(union);
          await res.body?.cancel();
          await this.authorize({
            scope: union,
            forceReauthorization: isStrictScopeSuperset(union, record.tokens?.scope),
            ...(challenge.resourceMetadataUrl && { resourceMetadataUrl: challenge.resourceMetadataUrl }),
            ...(token !== undefined && { staleAccessToken: token }),
          });
          continue;
        }
      }
      return res;
    }
  };
}

/**
 * The client_name this CLI registers with (RFC 7591 §2): it says what the software is and which
 * machine it runs on, so a user reading the consent page or a list of clients can tell one
 * install from another, and it cannot be mistaken for another product (MCP Security Best
 * Practices: consent pages must identify the client truthfully).
 */
export function defaultClientName(): string {
  const host = hostname().replace(/[^\w.-]/g, '').slice(0, 63) || 'this computer';
  return `mcp-warden CLI on ${host}`;
}

export interface AuthorizeRequest {
  resourceMetadataUrl?: URL;
  scope?: string;
  forceReauthorization?: boolean;
  /** Run the flow even if a usable token is stored. */
  force?: boolean;
  /** The token that was just refused or is expiring: a stored token equal to it is not reused. */
  staleAccessToken?: string;
  /** Discover the resource and AS metadata again (after a 401: the server may have moved AS). */
  rediscover?: boolean;
}

/** What to do after the authorization server refused with `code` (RFC 6749 §5.2, §4.1.2.1). */
function nextStepFor(code: string, serverUrl: string): string {
  switch (code) {
    case 'invalid_client':
    case 'unauthorized_client':
      return `The registration of this client is not accepted; run mcp-warden logout ${serverUrl}, then mcp-warden login ${serverUrl}.`;
    case 'invalid_scope':
      return 'Ask for scopes this server offers (--scope), or ask its administrator.';
    case 'invalid_grant':
      return `The sign-in expired or was revoked; run mcp-warden login ${serverUrl}.`;
    case 'access_denied':
      return `Run mcp-warden login ${serverUrl} to try again, and choose Allow.`;
    default:
      return `Run mcp-warden login ${serverUrl} to try again; if it persists, ask the server's administrator.`;
  }
}

function challengeHints(res: Response): AuthorizeRequest {
  const { resourceMetadataUrl, scope } = extractWWWAuthenticateParams(res);
  return { ...(resourceMetadataUrl && { resourceMetadataUrl }), ...(scope && { scope }) };
}
