/**
 * The SDK's OAuthClientProvider backed by our token store. The SDK's `auth()` does discovery
 * (RFC 9728, RFC 8414 + OIDC path insertion, 2025-03-26 fallbacks), CIMD or DCR registration,
 * PKCE, RFC 8707 `resource`, RFC 9207 `iss` checks and refresh; this class decides where state
 * lives and adds what the SDK leaves to hosts: refusing an AS without S256, keying registrations
 * by issuer, keeping a refresh token the AS did not rotate, and remembering the requested scope.
 */
import { randomBytes } from 'node:crypto';
import {
  createPrivateKeyJwtAuth,
  type AddClientAuthentication,
  type DpopSession,
  type OAuthClientInformationContext,
  type OAuthClientMetadata,
  type OAuthClientProvider,
  type OAuthDiscoveryState,
  type StoredOAuthClientInformation,
  type StoredOAuthTokens,
} from '@modelcontextprotocol/client';
import { ClientError } from './errors.ts';
import type { ServerRecord, TokenStore } from './token-store.ts';

export type GrantMode = 'authorization_code' | 'client_credentials' | 'jwt_bearer';

/** RFC 7523 §2.1 grant type (workload identity federation, MCP ext-auth SEP-1933). */
export const JWT_BEARER_GRANT = 'urn:ietf:params:oauth:grant-type:jwt-bearer';

export interface ProviderOptions {
  serverUrl: string;
  store: TokenStore;
  grant: GrantMode;
  clientName: string;
  /** Pre-registered client (MCP §Client Registration Approaches: first in priority; static credentials). */
  clientId?: string;
  clientSecret?: string;
  /** private_key_jwt (RFC 7523 §2.2) for client credentials: a PEM or a JWK (JSON). */
  privateKeyJwt?: { privateKey: string | Record<string, unknown>; alg: string };
  /** CIMD URL used as client_id when the AS supports it (MCP §Client ID Metadata Documents). */
  clientMetadataUrl?: string;
  /** `false` leaves RFC 8707 `resource` out, for providers that reject it. */
  sendResource: boolean;
  /**
   * The JWT for the jwt-bearer grant, asked for at every token request: a workload identity token
   * (it rotates), or an ID-JAG obtained from an enterprise IdP for this AS and resource.
   */
  assertion?: (ctx: AssertionContext) => Promise<string>;
  /** Sender-constrained tokens (RFC 9449): the session to sign token requests with, if on. */
  dpopSession?: () => Promise<DpopSession>;
  /** Called with the authorization URL (already checked for a safe scheme by the caller). */
  onAuthorizationUrl: (url: URL) => Promise<void>;
  now: () => number;
}

/** What an assertion source may need: the AS (ID-JAG `audience`) and the resource (RFC 8707). */
export interface AssertionContext {
  issuer: string | undefined;
  resource: string | undefined;
  scope: string | undefined;
}

export class StoreBackedProvider implements OAuthClientProvider {
  /** The RFC 8707 resource the SDK selected for this flow. */
  private resource: string | undefined;
  /** The redirect URI of the listener of the login in progress (RFC 8252 §7.3). */
  currentRedirectUrl: string | undefined;
  /** `state` of the latest authorization request, checked by the loopback listener. */
  lastState: string | undefined;
  /** Scope of the latest authorization request, remembered for the step-up union. */
  lastRequestedScope: string | undefined;
  private verifier: string | undefined;
  addClientAuthentication?: AddClientAuthentication;
  validateResourceURL?: (serverUrl: string | URL, resource?: string) => Promise<URL | undefined>;

  constructor(private readonly options: ProviderOptions) {
    if (options.privateKeyJwt && options.clientId) {
      const { clientId } = options;
      const { privateKey, alg } = options.privateKeyJwt;
      // RFC 7523 §3: iss = sub = client_id; aud = the token endpoint (the SDK passes it in).
      const sign = createPrivateKeyJwtAuth({ issuer: clientId, subject: clientId, privateKey, alg });
      this.addClientAuthentication = sign;
    }
    if (!options.sendResource) this.validateResourceURL = async () => undefined;
  }

  get clientMetadataUrl(): string | undefined {
    return this.options.grant === 'authorization_code' ? this.options.clientMetadataUrl : undefined;
  }

  get redirectUrl(): string | undefined {
    return this.options.grant === 'authorization_code' ? this.currentRedirectUrl : undefined;
  }

  get clientMetadata(): OAuthClientMetadata {
    if (this.options.grant === 'jwt_bearer') {
      return { client_name: this.options.clientName, redirect_uris: [], grant_types: [JWT_BEARER_GRANT], token_endpoint_auth_method: this.options.clientSecret ? 'client_secret_basic' : 'none' };
    }
    if (this.options.grant === 'client_credentials') {
      return {
        client_name: this.options.clientName,
        redirect_uris: [],
        grant_types: ['client_credentials'],
        token_endpoint_auth_method: this.addClientAuthentication ? 'private_key_jwt' : 'client_secret_basic',
      };
    }
    return {
      client_name: this.options.clientName,
      redirect_uris: this.currentRedirectUrl ? [this.currentRedirectUrl] : [],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
      // MCP 2026-07-28 (SEP-837): DCR clients send application_type; a CLI is native.
      application_type: 'native',
    };
  }

  /** Client credentials grant (RFC 6749 §4.4); undefined leaves the authorization code default. */
  async prepareTokenRequest(scope?: string): Promise<URLSearchParams | undefined> {
    let params: URLSearchParams;
    if (this.options.grant === 'client_credentials') params = new URLSearchParams({ grant_type: 'client_credentials' });
    else if (this.options.grant === 'jwt_bearer' && this.options.assertion) {
      const { discovery } = await this.read();
      const issuer = (discovery as { authorizationServerMetadata?: { issuer?: string } } | undefined)?.authorizationServerMetadata?.issuer ?? discovery?.authorizationServerUrl;
      params = new URLSearchParams({ grant_type: JWT_BEARER_GRANT, assertion: await this.options.assertion({ issuer, resource: this.resource, scope }) });
    }
    else return undefined;
    if (scope) params.set('scope', scope);
    return params;
  }

  /** RFC 9449: when on, the SDK signs token requests with this session's key. */
  async dpop(): Promise<DpopSession | undefined> {
    return this.options.dpopSession?.();
  }

  saveResourceUrl(resourceUrl: string): void {
    this.resource = resourceUrl;
  }

  state(): string {
    this.lastState = randomBytes(32).toString('base64url');
    return this.lastState;
  }

  private read(): Promise<ServerRecord> {
    return this.options.store.read(this.options.serverUrl);
  }

  private update(change: (record: ServerRecord) => ServerRecord | void): Promise<ServerRecord> {
    return this.options.store.update(this.options.serverUrl, change);
  }

  async clientInformation(ctx?: OAuthClientInformationContext): Promise<StoredOAuthClientInformation | undefined> {
    // MCP §Client Registration Approaches: pre-registered client information comes first.
    if (this.options.clientId) {
      const info: StoredOAuthClientInformation = { client_id: this.options.clientId };
      if (this.options.clientSecret) info.client_secret = this.options.clientSecret;
      if (ctx?.issuer) info.issuer = ctx.issuer;
      return info;
    }
    const record = await this.read();
    if (!ctx?.issuer) return undefined;
    // SEP-2352: registrations are keyed by issuer; another AS means a new registration.
    return record.clients[ctx.issuer] as StoredOAuthClientInformation | undefined;
  }

  async saveClientInformation(info: StoredOAuthClientInformation, ctx?: OAuthClientInformationContext): Promise<void> {
    if (this.options.clientId) return;
    const issuer = ctx?.issuer ?? info.issuer;
    if (!issuer) return;
    const port = this.currentRedirectUrl ? Number(new URL(this.currentRedirectUrl).port) : undefined;
    await this.update((record) => {
      record.clients[issuer] = { ...info, issuer };
      if (port) record.redirectPort = port;
    });
  }

  async tokens(ctx?: OAuthClientInformationContext): Promise<StoredOAuthTokens | undefined> {
    const { tokens } = await this.read();
    if (!tokens) return undefined;
    if (ctx?.issuer && tokens.issuer && tokens.issuer !== ctx.issuer) return undefined;
    return tokens as StoredOAuthTokens;
  }

  async saveTokens(tokens: StoredOAuthTokens, ctx?: OAuthClientInformationContext): Promise<void> {
    const now = this.options.now();
    await this.update((record) => {
      const previous = record.tokens;
      const next: Record<string, unknown> = { ...tokens };
      if (ctx?.issuer && !next.issuer) next.issuer = ctx.issuer;
      if (typeof tokens.expires_in === 'number') next.expires_at = now + tokens.expires_in * 1000;
      else delete next.expires_at;
      // RFC 6749 §6: an AS that does not rotate keeps the old refresh token valid.
      if (!tokens.refresh_token && previous?.refresh_token && previous.issuer === next.issuer) next.refresh_token = previous.refresh_token;
      record.tokens = next as ServerRecord['tokens'];
      if (this.lastRequestedScope !== undefined) record.requestedScope = this.lastRequestedScope;
    });
  }

  async redirectToAuthorization(authorizationUrl: URL): Promise<void> {
    const scope = authorizationUrl.searchParams.get('scope') ?? '';
    this.lastRequestedScope = scope;
    // The SDK adds prompt=consent whenever offline_access is asked for (OIDC Core §11). Asking for
    // consent the user already gave trains people to click through consent pages, so keep it
    // only for the first sign-in to this server and for a step-up that adds scopes; otherwise
    // the AS decides from the consent it remembers (RFC 6749 §3.1: prompt is the client's hint).
    if (authorizationUrl.searchParams.get('prompt') === 'consent' && !(await this.consentNeeded(scope))) {
      authorizationUrl.searchParams.delete('prompt');
    }
    await this.options.onAuthorizationUrl(authorizationUrl);
  }

  /** First sign-in to this server, or scopes beyond every scope requested before. */
  private async consentNeeded(scope: string): Promise<boolean> {
    const record = await this.read();
    const before = record.requestedScope ?? record.tokens?.scope;
    if (before === undefined) return true;
    const known = new Set(before.split(' ').filter(Boolean));
    return scope.split(' ').some((s) => s !== '' && !known.has(s));
  }

  saveCodeVerifier(codeVerifier: string): void {
    this.verifier = codeVerifier;
  }

  codeVerifier(): string {
    if (!this.verifier) throw new ClientError('protocol_error', 'no PKCE code verifier for this authorization response');
    return this.verifier;
  }

  async invalidateCredentials(scope: 'all' | 'client' | 'tokens' | 'verifier' | 'discovery'): Promise<void> {
    if (scope === 'verifier') {
      this.verifier = undefined;
      return;
    }
    await this.update((record) => {
      if (scope === 'all' || scope === 'client') record.clients = {};
      if (scope === 'all' || scope === 'tokens') delete record.tokens;
      if (scope === 'all' || scope === 'discovery') delete record.discovery;
    });
  }

  async saveDiscoveryState(state: OAuthDiscoveryState): Promise<void> {
    const metadata = state.authorizationServerMetadata;
    // MCP 2025-11-25 §Authorization Code Protection: without S256 in
    // code_challenge_methods_supported, refuse to proceed. The 2025-03-26 fallback (no metadata at
    // all) has nothing to check, so that case goes on with PKCE S256 regardless.
    if (this.options.grant === 'authorization_code' && metadata) {
      const methods = (metadata as { code_challenge_methods_supported?: unknown }).code_challenge_methods_supported;
      if (!Array.isArray(methods) || !methods.includes('S256')) {
        throw new ClientError('pkce_unsupported', `the authorization server ${metadata.issuer} does not advertise PKCE S256 (code_challenge_methods_supported); refusing to proceed`);
      }
    }
    await this.update((record) => {
      record.discovery = state as ServerRecord['discovery'];
    });
  }

  async discoveryState(): Promise<OAuthDiscoveryState | undefined> {
    const { discovery } = await this.read();
    return discovery as OAuthDiscoveryState | undefined;
  }
}
